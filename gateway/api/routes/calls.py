"""Intercom calls of the caller's homes: the history, and answering, declining,
hanging up and opening the panel's door during the call. Every route goes
through the call's contract; another contract's call is a plain 404
(answering or opening it too), and nothing is published for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from gateway.api.call_schemas import CallAnswer, CallOut, CallPage, CallState, call_out
from gateway.api.command_schemas import CommandOut
from gateway.api.deps import CtxDep, CurrentPrincipal, RowId, SessionDep, visible_homes
from gateway.api.pagination import Cursor, keyset, page
from gateway.api.routes.commands import deliver
from gateway.api.schemas import DEVICE_ID, errors
from gateway.commands.records import Outgoing
from gateway.context import AppContext
from gateway.db.intercom_models import Call
from gateway.db.models import Home, utcnow
from gateway.errors import NotFound, Unavailable
from gateway.intercom import calls
from gateway.intercom.door import open_for_call
from gateway.intercom.views import call_of, call_view, load_call_views
from gateway.notices import Notice
from gateway.recording.exports import pieces
from gateway.tokens import Principal
from recorder.export import ExportError, export

MP4 = "video/mp4"
router = APIRouter(prefix="/calls", tags=["subscriber"], responses=errors(401, 404))


@router.get("", response_model=CallPage, responses=errors(422))
def list_calls(
    *,
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    home: Annotated[str | None, Query(pattern=DEVICE_ID)] = None,
    state: CallState | None = None,
) -> CallPage:
    """The intercom calls of the caller's homes, newest first: the home's call
    history. A member sees the homes they hold a permission in."""
    query = keyset(
        call_view().where(Call.contract_id == principal.contract_id), Call.id, cursor, limit
    )
    if (homes := visible_homes(session, principal)) is not None:
        query = query.where(Call.home_id.in_(homes))
    if home is not None:
        query = query.where(Home.uid == home)
    if state is not None:
        query = query.where(Call.state == state)
    rows, next_cursor = page(session.execute(query).all(), limit, lambda row: row[0].id)
    return CallPage(items=[call_out(call_of(row)) for row in rows], next_cursor=next_cursor)


@router.get("/{call_id}", response_model=CallOut)
def get_call(call_id: RowId, principal: CurrentPrincipal, session: SessionDep) -> CallOut:
    calls.owned(session, principal.contract_id, call_id)
    return _shown(session, principal, call_id)


def _shown(session: Session, principal: Principal, call_id: int) -> CallOut:
    return call_out(load_call_views(session, [call_id], {principal.contract_id})[0])


def _act(
    ctx: AppContext,
    principal: Principal,
    call_id: int,
    act: Callable[[Session, Call], Notice],
) -> CallOut:
    """Change the call in one transaction, announce it to every member's
    stream once committed, then show it."""
    with ctx.db.transaction() as session:
        changes = act(session, calls.owned(session, principal.contract_id, call_id))
    if ctx.hub is not None:
        ctx.hub.announce(changes)
    with ctx.db.session() as session:
        return _shown(session, principal, call_id)


@router.get(
    "/{call_id}/clip.mp4",
    response_class=FileResponse,
    responses={**errors(422), 200: {"content": {MP4: {}}}, 206: {"content": {MP4: {}}}},
)
def clip(
    call_id: RowId, principal: CurrentPrincipal, session: SessionDep, ctx: CtxDep
) -> FileResponse:
    """The call's video, from the ringing to ``call_clip_after_s`` after it
    ended, as one MP4 (no re-encode; ``Range`` for seeking). 404 until the
    call ended, for a panel without a camera, or when nothing was recorded."""
    call = calls.owned(session, principal.contract_id, call_id)
    if call.clip_end is None:
        raise NotFound(f"call {call_id} has no clip")
    archive = ctx.settings.archive_path().resolve()
    found = pieces(session, archive, call.device_id, call.started_at, call.clip_end)
    if not found:
        raise NotFound(f"nothing was recorded of call {call_id}")
    cache = ctx.settings.var_dir.resolve() / "playback"
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"call-{call.id}-{len(found)}.mp4"
    if not out.exists():
        try:
            export(found, call.started_at, call.clip_end, out)
        except ExportError as exc:
            raise NotFound(f"cannot play call {call_id}'s clip: {exc}") from exc
    return FileResponse(out, media_type=MP4)


@router.post("/{call_id}/answer", response_model=CallOut, responses=errors(409, 422))
def answer(
    call_id: RowId,
    principal: CurrentPrincipal,
    ctx: CtxDep,
    body: Annotated[CallAnswer | None, Body()] = None,
) -> CallOut:
    """Take a ringing call. The first member to answer gets it; the others'
    streams say «отвечено» and stop ringing, and their answer is a 409."""
    member = body.member if body is not None and body.member else principal.who
    timeout = timedelta(seconds=ctx.settings.call_ring_timeout_s)
    return _act(ctx, principal, call_id, lambda s, c: calls.answer(s, c, member, timeout, utcnow()))


@router.post("/{call_id}/decline", response_model=CallOut, responses=errors(409))
def decline(call_id: RowId, principal: CurrentPrincipal, ctx: CtxDep) -> CallOut:
    """Refuse a ringing call: it stops ringing for every member."""
    return _act(ctx, principal, call_id, lambda s, c: calls.decline(s, c, utcnow()))


@router.post("/{call_id}/hangup", response_model=CallOut, responses=errors(409))
def hang_up(call_id: RowId, principal: CurrentPrincipal, ctx: CtxDep) -> CallOut:
    """End an answered call."""
    return _act(ctx, principal, call_id, lambda s, c: calls.hang_up(s, c, utcnow()))


@router.post(
    "/{call_id}/open",
    status_code=201,
    response_model=CommandOut,
    responses=errors(409, 422, 503),
)
async def open_door(call_id: RowId, principal: CurrentPrincipal, ctx: CtxDep) -> CommandOut:
    """«Открыть»: open the calling panel's door while the call rings or is
    answered — also a shared entrance's, which the flat's residents can open
    only this way. An ``open`` command of the command path (deadline, once),
    recorded in the called home with the caller; the answer is the command as
    for ``POST …/devices/{id}/commands``. 409 once the call is over."""
    if ctx.commands is None:
        raise Unavailable("commands cannot be sent from this process")
    out, home = await asyncio.to_thread(_open, ctx, principal, call_id)
    return await deliver(ctx, principal, home, out)


def _open(ctx: AppContext, principal: Principal, call_id: int) -> tuple[Outgoing, str]:
    ttl = timedelta(seconds=ctx.settings.command_deadline_s)
    timeout = timedelta(seconds=ctx.settings.call_ring_timeout_s)
    with ctx.db.transaction() as session:
        call = calls.owned(session, principal.contract_id, call_id)
        out, changes = open_for_call(
            session,
            call,
            principal.who,
            ttl,
            timeout,
            root=ctx.settings.mqtt_topic_root,
            now=utcnow(),
        )
        home = session.get_one(Home, call.home_id).uid
    if ctx.hub is not None:
        ctx.hub.announce(changes)
    return out, home
