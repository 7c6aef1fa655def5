"""Dependencies every route uses: the context, a DB session, who is calling,
ownership and a member's permissions — so no route re-writes the admin,
owner or permission check.

A subscriber token is the owner's or a member's. Both must carry their
login's current epoch (a password change ends every earlier token), and a
member must still exist. For a member, :func:`current_principal` also checks
the permission the route needs (:data:`MEMBER_RULES`, by endpoint): in the
home named by the path's ``home_id``, or the home of its ``device_id``,
call or export. A route not listed there is open to a member only when they
hold every permission in every home of the contract (:data:`FULL`) — new
routes are safe before anyone lists them. A route may instead declare what it
needs with one of the per-permission dependencies (:data:`CamerasAllowed`,
:data:`ArmAllowed`, :data:`IntercomAllowed`, :data:`GatesAllowed`); the
table is then not consulted for it. Code that authenticates a token outside a
route (:func:`principal_from_token`: the streams, live view, signed media)
treats a member like the owner only if they hold everything (:data:`FULL`)."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterator
from typing import Annotated, Any, Final

from fastapi import Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from devices.kinds import DeviceKind
from gateway.api.revocation import OpenStreams
from gateway.api.schemas import DeviceIdPath, HomeIdPath
from gateway.context import AppContext
from gateway.db.intercom_models import Call
from gateway.db.media_models import Export
from gateway.db.models import Contract, Device, Home
from gateway.db.people_models import Member
from gateway.db.security_models import Dispatcher
from gateway.errors import Forbidden, InvalidCredentials, NotFound
from gateway.people.permissions import Permission, for_kind, held
from gateway.tokens import DISPATCHER, MEMBER, OWNER, Principal, TokenError, decode

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


def subscriber_from_token(ctx: AppContext, session: Session, token: str) -> Principal:
    """Decode an owner's or member's token and check it is still good: the
    contract active, the member still there, the login's epoch unchanged."""
    try:
        principal = decode(token, ctx.secrets.secret_key)
    except TokenError as exc:
        raise InvalidCredentials("invalid or expired token") from exc
    if principal.role not in (OWNER, MEMBER):
        raise InvalidCredentials("not a subscriber's token")
    contract = session.get(Contract, principal.contract_id)
    if contract is None or contract.number != principal.contract_number or not contract.active:
        raise InvalidCredentials("contract is not active")
    if principal.role == MEMBER:
        member = None if principal.member_id is None else session.get(Member, principal.member_id)
        if member is None or member.contract_id != contract.id or member.login != principal.login:
            raise InvalidCredentials("no longer a member of this contract")
        epoch = member.token_epoch
    else:
        epoch = contract.token_epoch
    if principal.epoch != epoch:
        raise InvalidCredentials("token ended by a password change")
    return principal


def holds_everything(session: Session, principal: Principal) -> bool:
    """The owner, or a member with every permission in every home of the contract."""
    if principal.member_id is None:
        return True
    grants = held(session, principal.member_id)
    homes = session.scalars(select(Home.id).where(Home.contract_id == principal.contract_id))
    return all(grants.get(home, set()) >= ALL_PERMISSIONS for home in homes)


def visible_homes(session: Session, principal: Principal) -> set[int] | None:
    """The homes whose history (events, alerts, calls) the caller sees: None
    for the owner (every home of the contract); for a member, the homes where
    they hold any permission."""
    if principal.member_id is None:
        return None
    return {home for home, granted in held(session, principal.member_id).items() if granted}


def streamed_homes(session: Session, principal: Principal) -> tuple[set[str], set[str]] | None:
    """What of the contract's live stream the caller is shown: None for the
    owner (all of it); for a member, the homes (public ids) whose events and
    alerts they see — those they hold a permission in, as in the histories —
    and those whose intercom calls ring them (``intercom`` held there)."""
    if principal.member_id is None:
        return None
    grants = held(session, principal.member_id)
    uids = {
        home: uid
        for home, uid in session.execute(select(Home.id, Home.uid).where(Home.id.in_(grants)))
    }
    seen: set[str] = set()
    rung: set[str] = set()
    for home, granted in grants.items():
        if granted and home in uids:
            seen.add(uids[home])
            if Permission.INTERCOM.value in granted:
                rung.add(uids[home])
    return seen, rung


def principal_from_token(ctx: AppContext, session: Session, token: str) -> Principal:
    """A subscriber token for code that checks only the contract (streams, live
    view, signed media): a member is let through only if they may do everything."""
    principal = subscriber_from_token(ctx, session, token)
    if not holds_everything(session, principal):
        raise Forbidden("this member may not use this; ask the contract's owner")
    return principal


ALL_PERMISSIONS: Final = frozenset(p.value for p in Permission)


class Rule:
    """What a member needs for a route (:data:`MEMBER_RULES`)."""

    ANY: Final = "any"
    """Any member (the route itself shows them only their own)."""
    OWNER: Final = "owner"
    """The owner only: contract settings, members, the audit trail."""
    FULL: Final = "full"
    """Every permission in every home: contract-wide routes."""
    DEVICE: Final = "device"
    """The permission the path's device's kind needs (``permissions.for_kind``)."""
    COMMANDS: Final = "commands"
    """Gates or intercom in the path's home (its command history)."""


FULL: Final = Rule.FULL

MEMBER_RULES: Final[dict[str, str]] = {
    "me.me": Rule.ANY,
    "me.my_devices": Rule.ANY,
    "me.my_device": Rule.DEVICE,
    # Histories: a member sees the homes they hold a permission in (the
    # routes filter with visible_homes).
    "events.list_events": Rule.ANY,
    "alerts.list_alerts": Rule.ANY,
    "calls.list_calls": Rule.ANY,
    "password.change_password": Rule.ANY,
    "audit.my_audit": Rule.OWNER,
    "members.list_members": Rule.OWNER,
    "members.invite_member": Rule.OWNER,
    "members.get_member": Rule.OWNER,
    "members.change_member": Rule.OWNER,
    "members.remove_member": Rule.OWNER,
    "alerts.get_notifications": Rule.OWNER,
    "alerts.put_notifications": Rule.OWNER,
    "security.get_panel": Permission.ARM,
    "security.arm": Permission.ARM,
    "security.disarm": Permission.ARM,
    "security.list_users": Rule.OWNER,
    "security.add_user": Rule.OWNER,
    "security.delete_user": Rule.OWNER,
    "archive.timeline": Permission.CAMERAS,
    "archive.playback": Permission.CAMERAS,
    "archive.start_export": Permission.CAMERAS,
    "archive.get_export": Permission.CAMERAS,
    "live.whep_end": Permission.CAMERAS,
    "calls.get_call": Permission.INTERCOM,
    "calls.clip": Permission.INTERCOM,
    "calls.answer": Permission.INTERCOM,
    "calls.decline": Permission.INTERCOM,
    "calls.hang_up": Permission.INTERCOM,
    "calls.open_door": Permission.INTERCOM,
    "call_media.call_whep_options": Permission.INTERCOM,
    "call_media.call_whep_offer": Permission.INTERCOM,
    "call_media.call_whep_end": Permission.INTERCOM,
    "commands.send_command": Rule.DEVICE,
    "commands.get_command": Rule.COMMANDS,
    "commands.list_commands": Rule.COMMANDS,
    # Guest passes: only the owner creates, lists and revokes them (a member
    # who may open the gates still may not hand them out to others).
    "passes.create_pass": Rule.OWNER,
    "passes.list_passes": Rule.OWNER,
    "passes.revoke_pass": Rule.OWNER,
}
"""Endpoint (``<module>.<function>`` of ``gateway.api.routes``) -> what a
member needs: a :class:`Permission` in the home the path names, or a
:class:`Rule`. Unlisted: :data:`FULL`."""

GUEST_ROUTES: Final = frozenset({"passes.guest_view", "passes.guest_open"})
"""Routes a guest pass's link reaches: authenticated by the pass's token in
the path (``gateway.people.passes``), never by a bearer token, and answering
an unknown, expired, used-up or revoked token with the same 404. A pass's
token is no JWT, so every other route refuses it with 401."""


def endpoint_key(conn: HTTPConnection) -> str | None:
    route = conn.scope.get("route")
    endpoint = getattr(route, "endpoint", None)
    if endpoint is None:
        return None
    return f"{endpoint.__module__.rpartition('.')[2]}.{endpoint.__name__}"


_UID = re.compile(r"[0-9a-z-]{1,32}")
_JOB = re.compile(r"[0-9A-Za-z_-]{1,64}")


def _path_home(
    session: Session, contract_id: int, params: dict[str, Any]
) -> tuple[int, str | None] | None:
    """The home the path names (and the kind of its device, if it names one),
    or None when it names none of the contract's, or is malformed (the route
    then answers 404 or 422: path parameters are validated after this runs)."""
    for name, pattern in (("device_id", _UID), ("home_id", _UID), ("job", _JOB)):
        if name in params and not pattern.fullmatch(str(params[name])):
            return None
    if "device_id" in params:
        row = session.execute(
            select(Device.home_id, Device.kind).where(
                Device.uid == params["device_id"], Device.contract_id == contract_id
            )
        ).first()
        return None if row is None else (row[0], row[1])
    if "home_id" in params:
        home = session.scalars(
            select(Home.id).where(Home.uid == params["home_id"], Home.contract_id == contract_id)
        ).first()
        return None if home is None else (home, None)
    call = str(params.get("call_id", ""))
    if call.isascii() and call.isdigit() and len(call) <= 18:
        home = session.scalars(
            select(Call.home_id).where(Call.id == int(call), Call.contract_id == contract_id)
        ).first()
        return None if home is None else (home, None)
    if "job" in params:
        home = session.scalars(
            select(Device.home_id)
            .join(Export, Export.device_id == Device.id)
            .where(Export.id == params["job"], Export.contract_id == contract_id)
        ).first()
        return None if home is None else (home, None)
    return None


def check_member(session: Session, principal: Principal, need: str, params: dict[str, Any]) -> None:
    """Raise ``Forbidden`` unless the member may do what ``need`` says here."""
    if principal.member_id is None or need == Rule.ANY:
        return
    if need == Rule.OWNER:
        raise Forbidden("only the contract's owner may do this")
    if need == Rule.FULL:
        if not holds_everything(session, principal):
            raise Forbidden("this member may not use this; ask the contract's owner")
        return
    place = _path_home(session, principal.contract_id, params)
    grants = held(session, principal.member_id)
    if place is None:
        # Nothing of the contract's named (or malformed): the route answers 404
        # or 422 — to a member who may do this somewhere; the rest get 403.
        wanted = {
            Rule.DEVICE: ALL_PERMISSIONS,
            Rule.COMMANDS: {Permission.GATES.value, Permission.INTERCOM.value},
        }.get(need, {need})
        if any(perms & wanted for perms in grants.values()):
            return
        raise Forbidden(f"this member may not use {need}")
    home, kind = place
    if need == Rule.DEVICE:
        need = for_kind(kind) if kind is not None else FULL
    allowed = grants.get(home, set())
    if need == Rule.COMMANDS:
        if allowed & {Permission.GATES.value, Permission.INTERCOM.value}:
            return
    elif need in allowed:
        return
    raise Forbidden(f"this member may not use {need} in this home")


class PermissionCheck:
    """A dependency: the caller, if they may do ``permission`` in the home the
    path names (``home_id``, or ``device_id``'s home); the owner always may."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(
        self, conn: HTTPConnection, ctx: CtxDep, session: SessionDep, creds: BearerDep
    ) -> Principal:
        if creds is None:
            raise InvalidCredentials("bearer token required")
        principal = subscriber_from_token(ctx, session, creds.credentials)
        check_member(session, principal, self.permission.value, dict(conn.path_params))
        conn.scope["moydom.principal"] = principal
        return principal


def _declares_permission(conn: HTTPConnection) -> bool:
    """Whether the route has a :class:`PermissionCheck` among its dependencies."""
    dependant = getattr(conn.scope.get("route"), "dependant", None)
    pending = [dependant] if dependant is not None else []
    while pending:
        current = pending.pop()
        if isinstance(current.call, PermissionCheck):
            return True
        pending.extend(current.dependencies)
    return False


def current_principal(
    conn: HTTPConnection, ctx: CtxDep, session: SessionDep, creds: BearerDep
) -> Principal:
    """The caller (owner or member); for a member, the route's rule checked."""
    if creds is None:
        raise InvalidCredentials("bearer token required")
    principal = subscriber_from_token(ctx, session, creds.credentials)
    if principal.member_id is not None and not _declares_permission(conn):
        need = MEMBER_RULES.get(endpoint_key(conn) or "", FULL)
        check_member(session, principal, need, dict(conn.path_params))
    conn.scope["moydom.principal"] = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CamerasAllowed = Annotated[Principal, Depends(PermissionCheck(Permission.CAMERAS))]
ArmAllowed = Annotated[Principal, Depends(PermissionCheck(Permission.ARM))]
IntercomAllowed = Annotated[Principal, Depends(PermissionCheck(Permission.INTERCOM))]
GatesAllowed = Annotated[Principal, Depends(PermissionCheck(Permission.GATES))]


def owner_principal(ctx: CtxDep, session: SessionDep, creds: BearerDep) -> Principal:
    """The contract's owner; a member's token is a 403."""
    if creds is None:
        raise InvalidCredentials("bearer token required")
    principal = subscriber_from_token(ctx, session, creds.credentials)
    if principal.member_id is not None:
        raise Forbidden("only the contract's owner may do this")
    return principal


OwnerPrincipal = Annotated[Principal, Depends(owner_principal)]


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


def client_address(conn: HTTPConnection) -> str:
    """The client's address (behind a trusted proxy, what it forwarded)."""
    return conn.client.host if conn.client else "unknown"


AddressDep = Annotated[str, Depends(client_address)]


def get_streams(conn: HTTPConnection) -> OpenStreams:
    """This process's open subscriber WebSockets, to close when access ends."""
    streams: OpenStreams = conn.app.state.streams
    return streams


StreamsDep = Annotated[OpenStreams, Depends(get_streams)]
