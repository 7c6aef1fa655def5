"""The subscriber's event history (REST, keyset-paginated) and live stream (WebSocket)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket

from gateway.api.deps import CtxDep, CurrentPrincipal, SessionDep, visible_homes
from gateway.api.pagination import Cursor, keyset, page
from gateway.api.schemas import DEVICE_ID, EventOut, EventPage, errors
from gateway.api.shown import alert_out
from gateway.api.streaming import (
    WS_UNAUTHORIZED,
    Position,
    Replay,
    accept_stream,
    pump,
    shown_to,
    subscriber_of,
)
from gateway.context import AppContext
from gateway.db.models import Device, Event, Home
from gateway.errors import Invalid
from gateway.live import (
    Live,
    LiveEvent,
    alerts_after,
    event_view,
    events_after,
    newest_of_contract,
    shown,
)
from gateway.security.views import AlertView

router = APIRouter(tags=["subscriber"], responses=errors(401))


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid(f"{name} needs a time zone (e.g. 2026-11-25T10:00:00Z)")
    return value


IdFilter = Annotated[str | None, Query(pattern=DEVICE_ID)]


@router.get("/events", response_model=EventPage, responses=errors(422))
def list_events(
    *,
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    home: IdFilter = None,
    device: IdFilter = None,
    event: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EventPage:
    """The caller's events, newest first; pass ``next_cursor`` back for older
    ones. A member sees the homes they hold a permission in."""
    query = keyset(
        event_view().where(Event.contract_id == principal.contract_id), Event.id, cursor, limit
    )
    if (homes := visible_homes(session, principal)) is not None:
        query = query.where(Event.home_id.in_(homes))
    if home is not None:
        query = query.where(Home.uid == home)
    if device is not None:
        query = query.where(Device.uid == device)
    if event is not None:
        query = query.where(Event.event == event)
    if (start := _aware("since", since)) is not None:
        query = query.where(Event.received_at >= start)
    if (end := _aware("until", until)) is not None:
        query = query.where(Event.received_at < end)
    rows, next_cursor = page(session.execute(query).all(), limit, lambda row: row[0].id)
    items = [EventOut.model_validate(shown(row), from_attributes=True) for row in rows]
    return EventPage(items=items, next_cursor=next_cursor)


KINDS = ("event", "alert")


def _replay(ctx: AppContext, contract_id: int) -> Replay:
    def replay(after: Position | None) -> tuple[list[Live], Position]:
        with ctx.db.session() as session:
            if after is None:
                event, alert = newest_of_contract(session, contract_id)
                return [], Position({"event": event, "alert": alert})
            missed: list[Live] = [*events_after(session, contract_id, after.ids["event"])]
            missed += alerts_after(session, contract_id, after.ids["alert"])
            return missed, after

    return replay


def _render(item: Live) -> dict[str, Any] | None:
    if isinstance(item, AlertView):
        return {"type": "alert", "alert": alert_out(item).model_dump(mode="json")}
    if isinstance(item, LiveEvent):
        out = EventOut.model_validate(item, from_attributes=True)
        return {"type": "event", "event": out.model_dump(mode="json")}
    return None


@router.websocket("/stream")
async def stream(websocket: WebSocket, ctx: CtxDep) -> None:
    """The caller's events and alerts as they are stored: messages
    ``{"type": "event", "event": …}`` and ``{"type": "alert", "alert": …}``.

    Authenticate with ``Authorization: Bearer …`` or, from a browser, by offering
    the subprotocols ``moydom`` and ``bearer.<token>``; a token in the URL is
    ignored. A foreign ``Origin`` is refused (403) before this runs.
    A family member is sent the events and alerts of the homes they hold a
    permission in, and the calls of those where they hold «intercom».
    Close codes: 4401 token missing, invalid, expired or contract suspended
    (checked again every ``stream_recheck_s``, 30 s by default); 4408 the
    client fell too far behind — fetch ``GET /events`` and reconnect.

    Resuming: every message has a ``cursor``; reconnect with ``?after=<cursor>``
    (or ``?after=now`` the first time) to be sent, first, every event and alert
    stored after it, then ``{"type": "position", "cursor": …}``, then live ones.
    Close code 4400: a malformed cursor.
    """
    token = await accept_stream(websocket)

    def check() -> bool:
        return subscriber_of(ctx, token) is not None

    principal = await asyncio.to_thread(subscriber_of, ctx, token)
    if principal is None or ctx.hub is None:
        await websocket.close(WS_UNAUTHORIZED, "invalid or expired token")
        return
    await pump(
        websocket,
        ctx,
        principal.contract_id,
        still_allowed=check,
        render=_render,
        kinds=KINDS,
        replay=_replay(ctx, principal.contract_id),
        shows=await asyncio.to_thread(shown_to, ctx, principal),
    )
