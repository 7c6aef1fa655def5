"""Opening a gate, barrier or intercom door of the caller's home, and the
record of every such command. Ownership is checked in the query that finds
the device: another contract's device, another home's, or one that cannot be
opened is the same 404, and nothing is published for it."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from gateway.api.command_schemas import (
    CommandIdPath,
    CommandIn,
    CommandOut,
    CommandPage,
    command_out,
)
from gateway.api.deps import CtxDep, CurrentPrincipal, OwnedHome, SessionDep
from gateway.api.pagination import Cursor, keyset, page
from gateway.api.schemas import DeviceIdPath, HomeIdPath, errors
from gateway.commands import records
from gateway.commands.records import Outgoing
from gateway.commands.sender import NotSent
from gateway.commands.views import command_of, command_view, owned_command
from gateway.context import AppContext
from gateway.db.command_models import Command, CommandStatus
from gateway.db.models import utcnow
from gateway.errors import Unavailable
from gateway.live import LiveEvent, Subscription
from gateway.security.panel import security_service
from gateway.tokens import Principal

router = APIRouter(prefix="/homes/{home_id}", tags=["subscriber"], responses=errors(401, 404))


@router.post(
    "/devices/{device_id}/commands",
    status_code=201,
    response_model=CommandOut,
    responses=errors(422, 503),
)
async def send_command(
    home_id: HomeIdPath,
    device_id: DeviceIdPath,
    body: CommandIn,
    principal: CurrentPrincipal,
    ctx: CtxDep,
) -> CommandOut:
    """Open a gate, barrier or intercom door. The command is recorded, then
    published to the controller with its deadline; the answer waits up to
    ``MOYDOM_COMMAND_WAIT_S`` for the outcome and otherwise says ``sent`` — the
    outcome then arrives on the stream and at ``GET …/commands/{id}``."""
    if ctx.commands is None:
        raise Unavailable("commands cannot be sent from this process")
    ttl = timedelta(seconds=body.deadline_s or ctx.settings.command_deadline_s)
    out = await asyncio.to_thread(_create, ctx, principal, home_id, device_id, ttl)
    return await deliver(ctx, principal, home_id, out)


@router.get("/commands/{command_id}", response_model=CommandOut, responses=errors(422))
def get_command(
    home_id: HomeIdPath, command_id: CommandIdPath, principal: CurrentPrincipal, session: SessionDep
) -> CommandOut:
    """One command as it stands: who sent it, when, its deadline and outcome."""
    return command_out(owned_command(session, principal.contract_id, home_id, command_id))


@router.get("/commands", response_model=CommandPage, responses=errors(422))
def list_commands(
    *,
    home: OwnedHome,
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CommandPage:
    """Every command of the home, newest first (the history of who opened
    what); another contract's home is a 404, like an unknown one."""
    query = command_view().where(
        Command.contract_id == principal.contract_id, Command.home_id == home.id
    )
    rows, next_cursor = page(
        session.execute(keyset(query, Command.id, cursor, limit)).all(),
        limit,
        lambda row: row[0].id,
    )
    items = [command_out(command_of(row)) for row in rows]
    return CommandPage(items=items, next_cursor=next_cursor)


def _create(
    ctx: AppContext, principal: Principal, home_id: str, device_id: str, ttl: timedelta
) -> Outgoing:
    with ctx.db.transaction() as session:
        device = records.openable(session, principal.contract_id, home_id, device_id)
        out, changes = records.create(
            session,
            device,
            principal.who,
            ttl,
            root=ctx.settings.mqtt_topic_root,
            now=utcnow(),
        )
    if ctx.hub is not None:
        ctx.hub.announce(changes)
    return out


async def deliver(ctx: AppContext, principal: Principal, home_id: str, out: Outgoing) -> CommandOut:
    """Publish a recorded command (announced by its creator) and wait up to
    ``command_wait_s`` for its outcome; the command as it then stands. Shared
    by every route that opens something (here, and a call's door)."""
    sub = ctx.hub.subscribe(principal.contract_id) if ctx.hub is not None else None
    try:
        await asyncio.to_thread(_send, ctx, out)
        await _outcome(ctx, sub, principal.contract_id, out.uid)
    finally:
        if sub is not None and ctx.hub is not None:
            ctx.hub.unsubscribe(sub)
    return await asyncio.to_thread(_shown, ctx, principal, home_id, out.uid)


def _send(ctx: AppContext, out: Outgoing) -> None:
    """Publish; a command the broker did not take is ``failed`` at once."""
    assert ctx.commands is not None
    try:
        ctx.commands.send(out.topic, out.payload, out.deadline, utcnow())
    except NotSent as exc:
        transports = security_service(ctx.settings).transports
        with ctx.db.transaction() as session:
            changes = records.fail(
                session, out.command_id, f"not sent: {exc}", utcnow(), transports
            )
        if ctx.hub is not None:
            ctx.hub.announce(changes)


async def _outcome(ctx: AppContext, sub: Subscription | None, contract_id: int, uid: str) -> None:
    """Until the command is settled or ``command_wait_s`` passed: woken by its
    history event on the live hub, checking the row now and then regardless."""
    until = time.monotonic() + ctx.settings.command_wait_s
    while (left := until - time.monotonic()) > 0:
        if sub is not None:
            try:
                item = await asyncio.wait_for(sub.queue.get(), timeout=min(left, 0.25))
            except TimeoutError:
                item = None
            if _settles(item, uid):
                return
            if item is not None:
                continue
        else:
            await asyncio.sleep(min(left, 0.1))
        if await asyncio.to_thread(_status, ctx, contract_id, uid) != CommandStatus.SENT:
            return


def _settles(item: object, uid: str) -> bool:
    return (
        isinstance(item, LiveEvent)
        and item.event == records.HISTORY_EVENT
        and item.body.get("command_id") == uid
        and item.body.get("status") != CommandStatus.SENT
    )


def _status(ctx: AppContext, contract_id: int, uid: str) -> str | None:
    with ctx.db.session() as session:
        return session.scalar(
            select(Command.status).where(Command.uid == uid, Command.contract_id == contract_id)
        )


def _shown(ctx: AppContext, principal: Principal, home_id: str, uid: str) -> CommandOut:
    with ctx.db.session() as session:
        return command_out(owned_command(session, principal.contract_id, home_id, uid))
