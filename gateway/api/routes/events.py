"""The subscriber's event history (REST, keyset-paginated) and live stream (WebSocket)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from gateway.api.deps import CtxDep, CurrentPrincipal, SessionDep, principal_from_token
from gateway.api.schemas import DEVICE_ID, EventOut, EventPage, errors
from gateway.db.models import Device, Event, Home
from gateway.errors import MoydomError
from gateway.live import event_view, shown
from gateway.tokens import Principal

router = APIRouter(tags=["subscriber"], responses=errors(401))

CURSOR_PATTERN = r"^[0-9]{1,18}$"
WS_UNAUTHORIZED = 4401
WS_FELL_BEHIND = 4408


class BadQuery(MoydomError):
    status_code = 422


def encode_cursor(event_id: int) -> str:
    """The id of the last item shown: the next page starts below it (keyset)."""
    return str(event_id)


def decode_cursor(cursor: str) -> int:
    return int(cursor)  # the pattern guarantees digits that fit a BIGINT


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise BadQuery(f"{name} needs a time zone (e.g. 2026-11-25T10:00:00Z)")
    return value


IdFilter = Annotated[str | None, Query(pattern=DEVICE_ID)]


@router.get("/events", response_model=EventPage, responses=errors(422))
def list_events(
    *,
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    home: IdFilter = None,
    device: IdFilter = None,
    event: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EventPage:
    """The caller's events, newest first; pass ``next_cursor`` back for older ones."""
    query = (
        event_view()
        .where(Event.contract_id == principal.contract_id)
        .order_by(Event.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(Event.id < decode_cursor(cursor))
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
    rows = session.execute(query).all()
    items = [EventOut.model_validate(shown(row), from_attributes=True) for row in rows[:limit]]
    more = len(rows) > limit
    return EventPage(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


def _token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:]
    return websocket.query_params.get("access_token")


def _authenticate(ctx: Any, token: str | None) -> Principal | None:
    if not token:
        return None
    with ctx.db.session() as session:
        try:
            principal: Principal = principal_from_token(ctx, session, token)
        except MoydomError:
            return None
    return principal


@router.websocket("/stream")
async def stream(websocket: WebSocket, ctx: CtxDep) -> None:
    """The caller's events as they are stored.

    Authenticate with ``Authorization: Bearer …`` or ``?access_token=…``.
    Close codes: 4401 token missing, invalid, expired or contract suspended
    (checked again every ``stream_recheck_s``, 30 s by default); 4408 the
    client fell too far behind — fetch ``GET /events`` and reconnect.
    """
    await websocket.accept()
    token = _token(websocket)
    principal = await asyncio.to_thread(_authenticate, ctx, token)
    if principal is None or ctx.hub is None:
        await websocket.close(WS_UNAUTHORIZED, "invalid or expired token")
        return
    sub = ctx.hub.subscribe(principal.contract_id)
    receiver = asyncio.create_task(websocket.receive_text())
    next_check = time.monotonic() + ctx.settings.stream_recheck_s
    try:
        while True:
            if time.monotonic() >= next_check:
                # However busy the stream, a token that expired or a contract
                # suspended since the last check ends it.
                if await asyncio.to_thread(_authenticate, ctx, token) is None:
                    await websocket.close(WS_UNAUTHORIZED, "token expired or contract suspended")
                    return
                next_check = time.monotonic() + ctx.settings.stream_recheck_s
            getter = asyncio.create_task(sub.queue.get())
            done, _ = await asyncio.wait(
                {getter, receiver},
                timeout=max(0.0, next_check - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if getter not in done:
                getter.cancel()
            if receiver in done:
                receiver.result()  # raises WebSocketDisconnect when the client left
                receiver = asyncio.create_task(websocket.receive_text())
            if getter not in done:
                continue
            if sub.overflowed:
                await websocket.close(WS_FELL_BEHIND, "fell behind; resync with GET /events")
                return
            out = EventOut.model_validate(getter.result(), from_attributes=True)
            await websocket.send_json({"type": "event", "event": out.model_dump(mode="json")})
    except WebSocketDisconnect:
        pass
    finally:
        receiver.cancel()
        ctx.hub.unsubscribe(sub)
