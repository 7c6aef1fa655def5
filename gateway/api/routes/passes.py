"""Guest passes. The owner creates, lists and revokes them
(``/passes``; a member may not — :data:`gateway.api.deps.MEMBER_RULES`).
The guest holds only the link's token: ``/guest/{token}`` shows the pass and
``/guest/{token}/devices/{id}/open`` opens one of its gates through the
command path. The token is no bearer token: every other route refuses it
(401), and an unknown, expired, used-up or revoked one is the same 404."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import audit
from gateway.api.deps import AddressDep, CtxDep, CurrentPrincipal, RowId, SessionDep
from gateway.api.pass_schemas import (
    GuestOpened,
    GuestTokenPath,
    GuestView,
    PassCreated,
    PassDeviceOut,
    PassIn,
    PassList,
    PassOut,
)
from gateway.api.routes.commands import deliver
from gateway.api.schemas import DeviceIdPath, errors
from gateway.commands.records import Outgoing
from gateway.context import AppContext
from gateway.db.models import Contract, utcnow
from gateway.db.people_models import GuestPass
from gateway.errors import Unavailable
from gateway.people import passes
from gateway.tokens import MEMBER, Principal

router = APIRouter(tags=["guest passes"], responses=errors(401, 404))
guest = APIRouter(prefix="/guest/{token}", tags=["guest"], responses=errors(404, 422))


def _actor(principal: Principal, address: str) -> audit.Actor:
    return audit.Actor(MEMBER if principal.member_id else "owner", principal.who, address)


def _devices(session: Session, pass_id: int) -> list[PassDeviceOut]:
    return [
        PassDeviceOut(id=d.uid, home=d.home, kind=d.kind, name=d.name)
        for d in passes.devices_of(session, pass_id)
    ]


def _out(session: Session, row: GuestPass) -> PassOut:
    return PassOut(
        id=row.id,
        name=row.name,
        devices=_devices(session, row.id),
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        max_uses=row.max_uses,
        uses=row.uses,
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.post("/passes", status_code=201, response_model=PassCreated, responses=errors(403, 422))
def create_pass(
    body: PassIn, principal: CurrentPrincipal, ctx: CtxDep, address: AddressDep
) -> PassCreated:
    """A pass for chosen gates and doors; its token is shown only in this answer."""
    with ctx.db.transaction() as session:
        row, token = passes.create(
            session,
            principal.contract_id,
            principal.who,
            name=body.name,
            device_uids=body.devices,
            valid_from=body.valid_from,
            valid_to=body.valid_to,
            max_uses=body.max_uses,
            now=utcnow(),
            actor=_actor(principal, address),
        )
        out = _out(session, row)
    return PassCreated(**out.model_dump(), token=token, link=f"/api/v1/guest/{token}")


@router.get("/passes", response_model=PassList, responses=errors(403))
def list_passes(principal: CurrentPrincipal, session: SessionDep) -> PassList:
    """The contract's passes, newest first (tokens are never shown again)."""
    rows = session.scalars(
        select(GuestPass)
        .where(GuestPass.contract_id == principal.contract_id)
        .order_by(GuestPass.id.desc())
        .limit(500)
    ).all()
    return PassList(items=[_out(session, row) for row in rows])


@router.delete("/passes/{pass_id}", status_code=204, responses=errors(403, 422))
def revoke_pass(
    pass_id: RowId, principal: CurrentPrincipal, ctx: CtxDep, address: AddressDep
) -> Response:
    """Revoke at once: the next use of its link is refused."""
    with ctx.db.transaction() as session:
        passes.revoke(session, principal.contract_id, pass_id, utcnow(), _actor(principal, address))
    return Response(status_code=204)


@guest.get("", response_model=GuestView)
def guest_view(token: GuestTokenPath, session: SessionDep) -> GuestView:
    """Which gates the pass opens, its window and the uses left."""
    row = passes.valid(session, token, utcnow())
    return GuestView(
        name=row.name,
        devices=_devices(session, row.id),
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        uses_left=row.max_uses - row.uses,
    )


@guest.post("/devices/{device_id}/open", response_model=GuestOpened, responses=errors(503))
async def guest_open(
    token: GuestTokenPath, device_id: DeviceIdPath, ctx: CtxDep, address: AddressDep
) -> GuestOpened:
    """Open one of the pass's gates or doors: one use, counted when the command
    is sent whatever its outcome; the answer waits for the outcome like the
    owner's command does."""
    if ctx.commands is None:
        raise Unavailable("commands cannot be sent from this process")
    principal, home, out_uid, left = await asyncio.to_thread(_use, ctx, token, device_id, address)
    shown = await deliver(ctx, principal, home, out_uid)
    return GuestOpened(
        command_id=shown.id, status=shown.status, result=shown.result, uses_left=left
    )


def _use(
    ctx: AppContext, token: str, device_id: str, address: str
) -> tuple[Principal, str, Outgoing, int]:
    with ctx.db.transaction() as session:
        out, notice, row = passes.use(
            session,
            token,
            device_id,
            ttl=timedelta(seconds=ctx.settings.command_deadline_s),
            root=ctx.settings.mqtt_topic_root,
            now=utcnow(),
            address=address,
        )
        contract = session.get_one(Contract, row.contract_id)
        principal = Principal(
            contract_id=contract.id,
            contract_number=contract.number,
            login=passes.caller_of(row.id),
        )
        home = next(d.home for d in passes.devices_of(session, row.id) if d.uid == device_id)
        left = row.max_uses - row.uses
    if ctx.hub is not None:
        ctx.hub.announce(notice)
    return principal, home, out, left


router.include_router(guest)
