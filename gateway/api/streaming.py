"""The WebSocket loop both live streams share: authenticate, then forward a
hub subscription's items, re-checking the credentials every
``stream_recheck_s`` however busy the stream is.

A token is never taken from the URL (URLs end up in logs). Clients that can
set headers send ``Authorization: Bearer …``; browsers, which cannot, offer
two subprotocols, ``moydom`` and ``bearer.<token>``, and the server answers
``moydom`` (``new WebSocket(url, ["moydom", "bearer." + token])``).

Both streams resume: every message carries a ``cursor``, and a client that
reconnects with ``?after=<cursor>`` first gets what it missed, from the
database (docs/security.md, "Streams that resume")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from gateway.api.call_schemas import call_message
from gateway.api.deps import streamed_homes, subscriber_from_token
from gateway.context import AppContext
from gateway.errors import MoydomError
from gateway.intercom.views import CallView
from gateway.live import Live, LiveCase, LiveEvent, TooFarBehind
from gateway.tokens import Principal

WS_BAD_REQUEST = 4400
WS_UNAUTHORIZED = 4401
WS_FELL_BEHIND = 4408


SUBPROTOCOL = "moydom"
BEARER_SUBPROTOCOL = "bearer."


def bearer_of(websocket: WebSocket) -> str | None:
    """``Authorization: Bearer …`` or, for browsers, the ``bearer.<token>`` subprotocol."""
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:]
    for offered in websocket.scope.get("subprotocols", []):
        if offered.startswith(BEARER_SUBPROTOCOL):
            return str(offered[len(BEARER_SUBPROTOCOL) :])
    return None


async def accept_stream(websocket: WebSocket) -> str | None:
    """Accept the handshake (answering ``moydom`` if offered: a browser that offered
    subprotocols drops a connection that names none) and return the bearer token."""
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    return bearer_of(websocket)


def subscriber_of(ctx: AppContext, token: str | None) -> Principal | None:
    """The token's owner or member, or None."""
    if not token:
        return None
    with ctx.db.session() as session:
        try:
            return subscriber_from_token(ctx, session, token)
        except MoydomError:
            return None


def shown_to(ctx: AppContext, principal: Principal) -> Callable[[Live], bool]:
    """Which of the contract's items this subscriber's stream sends: all for
    the owner; for a member, events and alerts of the homes they hold a
    permission in, and calls of the homes where they may answer (intercom).
    Read once: a member whose permissions change has their streams closed
    (gateway.api.revocation) and reconnects under the new ones."""
    with ctx.db.session() as session:
        homes = streamed_homes(session, principal)
    if homes is None:
        return lambda _item: True
    seen, rung = homes

    def shows(item: Live) -> bool:
        return getattr(item, "home", None) in (rung if isinstance(item, CallView) else seen)

    return shows


@dataclass
class Position:
    """The newest id of each kind a connection has sent: its resume cursor,
    written ``<id>.<id>…`` in the stream's order of kinds."""

    ids: dict[str, int]

    def advance(self, kind: str, id_: int) -> None:
        if kind in self.ids:  # a call's ring is live only: it moves no cursor
            self.ids[kind] = max(self.ids[kind], id_)

    def cursor(self) -> str:
        return ".".join(str(i) for i in self.ids.values())

    @classmethod
    def parse(cls, kinds: tuple[str, ...], cursor: str) -> Position | None:
        parts = cursor.split(".")
        if len(parts) != len(kinds) or not all(
            p.isascii() and p.isdigit() and len(p) <= 18 for p in parts
        ):
            return None
        return cls(dict(zip(kinds, map(int, parts), strict=True)))


def key_of(item: Live) -> tuple[str, int]:
    """The item's kind and the id a cursor counts it by."""
    if isinstance(item, LiveCase):
        return "case", item.seq
    if isinstance(item, CallView):
        return "call", item.id
    return ("event" if isinstance(item, LiveEvent) else "alert"), item.id


Replay = Callable[[Position | None], tuple[list[Live], Position]]
"""Given the client's position (None: it gave none), what to send first and
the position that leaves the stream at; raises :class:`TooFarBehind`."""


def requested_position(websocket: WebSocket, kinds: tuple[str, ...]) -> Position | str | None:
    """``?after=<cursor>``: the position given; ``?after=now``: none to replay
    but resuming; no ``after``: None. A string is what is wrong with it."""
    after = websocket.query_params.get("after")
    if after is None or after == "now":
        return None
    return (
        Position.parse(kinds, after)
        or f"after: expected a cursor like {'.'.join('0' * len(kinds))}"
    )


@dataclass
class _Stream:
    """One connection's sending side: stamps each message with the cursor."""

    websocket: WebSocket
    render: Callable[[Live], dict[str, Any] | None]
    shows: Callable[[Live], bool]
    position: Position
    replayed: set[tuple[str, int]]

    @classmethod
    async def start(
        cls,
        websocket: WebSocket,
        render: Callable[[Live], dict[str, Any] | None],
        shows: Callable[[Live], bool],
        replay: Replay,
        requested: Position | None,
    ) -> _Stream | None:
        """Send the replay; None if the client missed too much (closed 4408)."""
        try:
            items, position = await asyncio.to_thread(replay, requested)
        except TooFarBehind:
            await websocket.close(WS_FELL_BEHIND, "missed too much; resync over REST")
            return None
        stream = cls(websocket, render, shows, position, {key_of(item) for item in items})
        for item in items:
            await stream.send(item)
        if "after" in websocket.query_params:
            await websocket.send_json({"type": "position", "cursor": position.cursor()})
        return stream

    async def send(self, item: Live) -> None:
        if not self.shows(item):
            return
        rendered = call_message(item) if isinstance(item, CallView) else self.render(item)
        if rendered is not None:
            self.position.advance(*key_of(item))
            await self.websocket.send_json({**rendered, "cursor": self.position.cursor()})


async def pump(
    websocket: WebSocket,
    ctx: AppContext,
    topic: int,
    *,
    still_allowed: Callable[[], bool],
    render: Callable[[Live], dict[str, Any] | None],
    kinds: tuple[str, ...],
    replay: Replay,
    shows: Callable[[Live], bool] = lambda _item: True,
) -> None:
    """Forward the hub's items for ``topic`` (a contract id, or 0 for dispatch)
    until the client leaves or its credentials stop being good.

    Subscribes first, then replays from the database what the client's
    ``?after=`` cursor says it missed (``replay``), then goes live, dropping
    the live copies of what the replay sent: every row once, none lost in
    between. Every message carries the ``cursor`` to resume from; a resumed
    stream says ``{"type": "position", "cursor": …}`` once the replay is done."""
    assert ctx.hub is not None
    requested = requested_position(websocket, kinds)
    if isinstance(requested, str):
        await websocket.close(WS_BAD_REQUEST, requested)
        return
    sub = ctx.hub.subscribe(topic)
    receiver = asyncio.create_task(websocket.receive_text())
    next_check = time.monotonic() + ctx.settings.stream_recheck_s
    try:
        stream = await _Stream.start(websocket, render, shows, replay, requested)
        if stream is None:
            return
        while True:
            if time.monotonic() >= next_check:
                if not await asyncio.to_thread(still_allowed):
                    await websocket.close(WS_UNAUTHORIZED, "token expired or account disabled")
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
                await websocket.close(WS_FELL_BEHIND, "fell behind; resync over REST")
                return
            if key_of(item := getter.result()) not in stream.replayed:
                await stream.send(item)
    except WebSocketDisconnect:
        pass
    finally:
        receiver.cancel()
        ctx.hub.unsubscribe(sub)
