"""The WebSocket loop both live streams share: authenticate, then forward a
hub subscription's items, re-checking the credentials every
``stream_recheck_s`` however busy the stream is.

A token is never taken from the URL (URLs end up in logs). Clients that can
set headers send ``Authorization: Bearer …``; browsers, which cannot, offer
two subprotocols, ``moydom`` and ``bearer.<token>``, and the server answers
``moydom`` (``new WebSocket(url, ["moydom", "bearer." + token])``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from gateway.api.deps import principal_from_token
from gateway.context import AppContext
from gateway.errors import MoydomError
from gateway.live import Live
from gateway.tokens import Principal

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
    if not token:
        return None
    with ctx.db.session() as session:
        try:
            return principal_from_token(ctx, session, token)
        except MoydomError:
            return None


async def pump(
    websocket: WebSocket,
    ctx: AppContext,
    topic: int,
    *,
    still_allowed: Callable[[], bool],
    render: Callable[[Live], dict[str, Any] | None],
    first: Callable[[], list[dict[str, Any]]] | None = None,
) -> None:
    """Forward the hub's items for ``topic`` (a contract id, or 0 for dispatch)
    until the client leaves or its credentials stop being good. ``first``
    makes the opening snapshot, read after subscribing so nothing falls
    between the two (an item may come twice; clients key by id)."""
    assert ctx.hub is not None
    sub = ctx.hub.subscribe(topic)
    receiver = asyncio.create_task(websocket.receive_text())
    next_check = time.monotonic() + ctx.settings.stream_recheck_s
    try:
        for message in await asyncio.to_thread(first) if first else []:
            await websocket.send_json(message)
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
            rendered = render(getter.result())
            if rendered is not None:
                await websocket.send_json(rendered)
    except WebSocketDisconnect:
        pass
    finally:
        receiver.cancel()
        ctx.hub.unsubscribe(sub)
