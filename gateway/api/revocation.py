"""Closing a login's open WebSockets and live sessions the moment its access ends.

The :class:`StreamGuard` middleware keeps every subscriber WebSocket under the
keys its token names (its contract; the owner's or the member's login), and
:func:`follow_access` every live (WebRTC) session likewise; :meth:`OpenStreams.end`
closes those at once — WebSockets with 4401 — for a removed member, a changed
or reset password, a suspended or terminated contract, and announces it
(``Notice.access_ended``) so every other API process does the same on hearing
it. The re-check of every token each ``stream_recheck_s`` stays the backstop
for a notice that is lost. The middleware makes the app's next ``receive`` a
disconnect, so the stream's own loop ends as if the client left, and drops
whatever the app sends after."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.tokens import MEMBER, OWNER, Principal, TokenError, decode
from recorder.live_rtc import LiveSessions

WS_UNAUTHORIZED = 4401
_BEARER = "bearer."

AccessKey = tuple[str, int]
"""Whose access: ``("contract", id)``, ``("owner", contract id)``, ``("member", id)``."""
Entry = tuple[asyncio.AbstractEventLoop, asyncio.Event]


def contract_key(contract_id: int) -> AccessKey:
    return ("contract", contract_id)


def login_key(principal: Principal) -> AccessKey:
    """The owner's login, or one member's."""
    if principal.member_id is not None:
        return ("member", principal.member_id)
    return ("owner", principal.contract_id)


def member_key(member_id: int) -> AccessKey:
    return ("member", member_id)


def owner_key(contract_id: int) -> AccessKey:
    return ("owner", contract_id)


def access_keys(principal: Principal) -> list[AccessKey]:
    """The keys whose end ends this subscriber's streams: its contract's and its login's."""
    return [contract_key(principal.contract_id), login_key(principal)]


class OpenStreams:
    """The open subscriber WebSockets and live sessions of this process, by
    key; thread-safe (routes run in worker threads, streams in the event loop).
    ``announce`` tells the other API processes that a key's access ended."""

    def __init__(self, announce: Callable[[AccessKey], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._open: dict[AccessKey, set[Entry]] = {}
        self._announce = announce

    def add(self, keys: list[AccessKey], entry: Entry) -> None:
        with self._lock:
            for key in keys:
                self._open.setdefault(key, set()).add(entry)

    def discard(self, keys: list[AccessKey], entry: Entry) -> None:
        with self._lock:
            for key in keys:
                entries = self._open.get(key)
                if entries is not None:
                    entries.discard(entry)
                    if not entries:
                        del self._open[key]

    def end(self, key: AccessKey) -> int:
        """Close every stream and live session under ``key`` here, and have the
        other API processes close theirs; how many there were here."""
        ended = self.end_here(key)
        if self._announce is not None:
            self._announce(key)
        return ended

    def end_here(self, key: AccessKey) -> int:
        """Close this process's streams and live sessions under ``key``."""
        with self._lock:
            entries = list(self._open.get(key, ()))
        for loop, event in entries:
            loop.call_soon_threadsafe(event.set)
        return len(entries)


def _token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return str(value[7:].decode("latin-1"))
    for offered in scope.get("subprotocols", []):
        if offered.startswith(_BEARER):
            return str(offered[len(_BEARER) :])
    return None


class StreamGuard:
    """ASGI middleware: registers subscriber WebSockets in ``streams`` and
    closes one (4401) when :meth:`OpenStreams.end` names it."""

    def __init__(self, app: ASGIApp, streams: OpenStreams, secret_key: str) -> None:
        self.app = app
        self.streams = streams
        self.secret_key = secret_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _token(scope) if scope["type"] == "websocket" else None
        try:
            principal = decode(token, self.secret_key) if token else None
        except TokenError:
            principal = None  # the route refuses it
        if principal is None or principal.role not in (OWNER, MEMBER):
            await self.app(scope, receive, send)
            return
        ended = asyncio.Event()
        entry = (asyncio.get_running_loop(), ended)
        keys = access_keys(principal)
        closed = False

        async def guarded_receive() -> Message:
            nonlocal closed
            if not ended.is_set():
                incoming = asyncio.ensure_future(receive())
                ending = asyncio.ensure_future(ended.wait())
                done, _ = await asyncio.wait(
                    {incoming, ending}, return_when=asyncio.FIRST_COMPLETED
                )
                if incoming in done:
                    ending.cancel()
                    return incoming.result()
                incoming.cancel()
            if not closed:
                closed = True
                await send(
                    {"type": "websocket.close", "code": WS_UNAUTHORIZED, "reason": "access ended"}
                )
            return {"type": "websocket.disconnect", "code": WS_UNAUTHORIZED}

        async def guarded_send(message: Message) -> None:
            nonlocal closed
            if closed:
                return  # the client was told already
            if message["type"] == "websocket.close":
                closed = True
            await send(message)

        self.streams.add(keys, entry)
        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            self.streams.discard(keys, entry)


async def follow_access(
    streams: OpenStreams, principal: Principal, sessions: LiveSessions, session_id: str
) -> None:
    """Run for a live session's life (``LiveSessions.follow``): it ends the
    moment its viewer's access does, like the viewer's WebSockets."""
    ended = asyncio.Event()
    entry = (asyncio.get_running_loop(), ended)
    keys = access_keys(principal)
    streams.add(keys, entry)
    try:
        await ended.wait()
        await sessions.terminate(session_id, "access ended")
    finally:
        streams.discard(keys, entry)
