"""ASGI middleware for what every response and every WebSocket needs, so no
route can forget it: security headers on HTTP responses, and the ``Origin``
check on WebSocket handshakes.

Request bodies are limited by FastAPI's own ``max_body_size`` (see
``gateway.api.app``), the header timeout by the server (``gateway.api.server``).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""For everything that is not a page: JSON, media, metrics. Nothing in them may run."""

DOCS_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: "
    "https://fastapi.tiangolo.com https://cdn.redoc.ly; font-src https://fonts.gstatic.com; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'"
)
"""FastAPI's ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from its CDN
with an inline start-up script; they show only the OpenAPI document."""

_ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class SecurityHeaders:
    """``nosniff``, no framing, no referrer, and a Content-Security-Policy on every
    HTTP response that did not set its own (the pages set theirs)."""

    def __init__(self, app: ASGIApp, docs_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.docs_paths = tuple(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        csp = DOCS_CSP if path.startswith(self.docs_paths) and self.docs_paths else API_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in {**_ALWAYS, "content-security-policy": csp}.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def origin_allowed(headers: Headers, allowed: Iterable[str]) -> bool:
    """No ``Origin`` (not a browser), the gateway's own (same host and port as the
    ``Host`` the browser sent), or one the operator configured.

    Tokens are not cookies, so a hostile page cannot borrow the user's; this is
    defence in depth against pages that got a token some other way, and
    against future cookie-based sessions."""
    origin = headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if origin in {a.rstrip("/").lower() for a in allowed}:
        return True
    parts = urlsplit(origin)
    host = headers.get("host", "").strip().lower()
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


class WebSocketOrigin:
    """Refuse a WebSocket handshake from a foreign ``Origin`` before any route
    sees it: the server answers the upgrade with 403."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = tuple(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not origin_allowed(Headers(scope=scope), self.allowed):
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1008, "reason": "origin"})
            return
        await self.app(scope, receive, send)
