"""Dependencies every route uses: the context, a DB session, who is calling,
and ownership — so no route re-writes the admin or owner check."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from devices.kinds import DeviceKind
from gateway.api.schemas import DeviceIdPath, HomeIdPath
from gateway.context import AppContext
from gateway.db.models import Contract, Device, Home
from gateway.db.security_models import Dispatcher
from gateway.errors import InvalidCredentials, NotFound
from gateway.tokens import DISPATCHER, OWNER, Principal, TokenError, decode

_bearer = HTTPBearer(auto_error=False)


def get_ctx(conn: HTTPConnection) -> AppContext:
    """For HTTP requests and WebSockets alike."""
    ctx: AppContext = conn.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def get_session(ctx: CtxDep) -> Iterator[Session]:
    with ctx.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
"""A row's number in a path: larger ones are a 422, not the database's overflow."""
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require_admin(ctx: CtxDep, creds: BearerDep) -> None:
    """The billing system's bearer token (``MOYDOM_ADMIN_TOKEN``)."""
    expected = ctx.secrets.admin_token.encode()
    if creds is None or not hmac.compare_digest(creds.credentials.encode(), expected):
        raise InvalidCredentials("admin token required")


AdminDep = Annotated[None, Depends(require_admin)]


def _decoded(ctx: AppContext, token: str, role: str) -> Principal:
    """A valid, unexpired token of ``role`` (a subscriber's is no dispatcher's)."""
    try:
        principal = decode(token, ctx.secrets.secret_key)
    except TokenError as exc:
        raise InvalidCredentials("invalid or expired token") from exc
    if principal.role != role:
        raise InvalidCredentials(f"not a {role}'s token")
    return principal


def principal_from_token(ctx: AppContext, session: Session, token: str) -> Principal:
    """Decode a subscriber token and check the contract is still active."""
    principal = _decoded(ctx, token, OWNER)
    contract = session.get(Contract, principal.contract_id)
    if contract is None or contract.number != principal.contract_number or not contract.active:
        raise InvalidCredentials("contract is not active")
    return principal


def current_principal(ctx: CtxDep, session: SessionDep, creds: BearerDep) -> Principal:
    if creds is None:
        raise InvalidCredentials("bearer token required")
    return principal_from_token(ctx, session, creds.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def owned_device(
    device_id: DeviceIdPath, principal: CurrentPrincipal, session: SessionDep, ctx: CtxDep
) -> Device:
    """The caller's own live device; another contract's id is a plain 404."""
    return ctx.provisioner.get_device(session, principal.contract_id, device_id)


OwnedDevice = Annotated[Device, Depends(owned_device)]


def camera_of(ctx: AppContext, session: Session, contract_id: int, device_id: str) -> Device:
    """The contract's own live camera: another contract's id, or a device that
    is no camera, is a plain 404. For the dependencies and for re-checks
    outside a request (a live session's)."""
    device = ctx.provisioner.get_device(session, contract_id, device_id)
    if device.kind != DeviceKind.CAMERA:
        raise NotFound(f"no camera {device.uid}")
    return device


def owned_camera(
    device_id: DeviceIdPath, principal: CurrentPrincipal, session: SessionDep, ctx: CtxDep
) -> Device:
    return camera_of(ctx, session, principal.contract_id, device_id)


OwnedCamera = Annotated[Device, Depends(owned_camera)]


def owned_home(home_id: HomeIdPath, principal: CurrentPrincipal, session: SessionDep) -> Home:
    """The caller's own home; another contract's id is a plain 404."""
    home = session.scalars(
        select(Home).where(Home.uid == home_id, Home.contract_id == principal.contract_id)
    ).first()
    if home is None:
        raise NotFound(f"no home {home_id}")
    return home


OwnedHome = Annotated[Home, Depends(owned_home)]


def dispatcher_from_token(ctx: AppContext, session: Session, token: str) -> Dispatcher:
    """Decode a dispatcher's token and check the account is still active."""
    principal = _decoded(ctx, token, DISPATCHER)
    dispatcher = session.get(Dispatcher, principal.contract_id)
    if (
        dispatcher is None
        or principal.contract_number != f"dispatcher:{dispatcher.login}"
        or not dispatcher.active
    ):
        raise InvalidCredentials("dispatcher account is not active")
    return dispatcher


def current_dispatcher(ctx: CtxDep, session: SessionDep, creds: BearerDep) -> Dispatcher:
    if creds is None:
        raise InvalidCredentials("bearer token required")
    return dispatcher_from_token(ctx, session, creds.credentials)


CurrentDispatcher = Annotated[Dispatcher, Depends(current_dispatcher)]
