"""How uvicorn serves the API: which proxies it believes, how long a client
may take to send its headers, how large a WebSocket message may be.

Uvicorn's own options where it has them. It has none for the headers: its
keep-alive timer starts only after a response and stops at the next byte, so
a client trickling a header line now and then held a connection for ever.
``HeaderDeadline`` closes a connection whose request headers are not
complete within ``http_header_timeout_s`` of its first byte (or of the
connection, for the first request).
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.api.app import create_app
from gateway.context import AppContext

log = logging.getLogger(__name__)

WS_MAX_MESSAGE_BYTES = 64 * 1024
"""Clients send the streams nothing they need; uvicorn's default is 16 MiB."""


class HeaderDeadline(HttpToolsProtocol):
    """Uvicorn's HTTP protocol with a deadline on each request's headers."""

    header_timeout_s = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info(
                "closing a connection whose request headers took over %ss", self.header_timeout_s
            )
            self.transport.close()


def header_deadline(timeout_s: float) -> type[HeaderDeadline]:
    """``HeaderDeadline`` with this timeout (uvicorn takes a protocol class)."""
    return type("HeaderDeadline", (HeaderDeadline,), {"header_timeout_s": timeout_s})


def server_config(
    ctx: AppContext, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """The uvicorn configuration of the API (``host``/``port`` override the settings)."""
    settings = ctx.settings
    proxies = [str(network) for network in settings.trusted_proxies]
    return uvicorn.Config(
        create_app(ctx),
        host=settings.http_host if host is None else host,
        port=settings.http_port if port is None else port,
        log_level="info",
        access_log=False,
        lifespan="off",
        # Uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise;
        # the login throttle counts per client address, so only named proxies.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
        http=header_deadline(settings.http_header_timeout_s),
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        server_header=False,
    )
