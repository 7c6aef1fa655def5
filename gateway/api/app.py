"""The FastAPI application: routers, error shape, metrics, and the limits and
headers every request gets (docs/security.md)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.api import metrics, pages
from gateway.api.audit_trail import AuditTrail
from gateway.api.errors import domain_error
from gateway.api.middleware import SecurityHeaders, WebSocketOrigin
from gateway.api.revocation import OpenStreams, StreamGuard
from gateway.api.routes import (
    admin_alerts,
    admin_buildings,
    admin_contracts,
    admin_devices,
    admin_ingest,
    admin_security,
    alerts,
    archive,
    audit,
    auth,
    call_media,
    calls,
    commands,
    dispatch,
    events,
    health,
    live,
    me,
    members,
    passes,
    password,
    push,
    security,
)
from gateway.context import AppContext
from gateway.errors import MoydomError
from gateway.notices import Notice

log = logging.getLogger(__name__)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def _open_streams(ctx: AppContext) -> OpenStreams:
    """The app's registry of open streams and live sessions, joined through
    the hub to every other API process's: an access ended in one ends in all."""
    hub = ctx.hub
    if hub is None:
        return OpenStreams()
    streams = OpenStreams(announce=lambda key: hub.announce(Notice(access_ended=[key])))

    def ended(keys: list[tuple[str, int]]) -> None:
        for kind, row in keys:
            streams.end_here((kind, row))

    hub.on_access_ended(ended)
    return streams


def create_app(ctx: AppContext) -> FastAPI:
    app = FastAPI(
        title="moydom",
        version="0.1.0",
        description="Home-services gateway API: contracts, devices, events, alarms, cameras.",
        max_body_size=ctx.settings.http_max_body_bytes,  # 413 before a larger body is read
    )
    app.state.ctx = ctx
    app.state.streams = _open_streams(ctx)
    api = APIRouter(prefix="/api/v1")
    for module in (
        health,
        auth,
        me,
        events,
        alerts,
        security,
        dispatch,
        live,
        archive,
        admin_contracts,
        admin_devices,
        admin_ingest,
        admin_security,
        admin_alerts,
        calls,
        call_media,
        admin_buildings,
        commands,
        password,
        members,
        audit,
        passes,
        push,
    ):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(pages.router)
    app.include_router(metrics.router)
    docs = [path for path in (app.docs_url, app.redoc_url) if path]
    app.add_middleware(SecurityHeaders, docs_paths=docs)
    app.add_middleware(WebSocketOrigin, allowed=ctx.settings.allowed_origins)
    app.add_middleware(AuditTrail)
    app.add_middleware(StreamGuard, streams=app.state.streams, secret_key=ctx.secrets.secret_key)
    app.add_exception_handler(MoydomError, domain_error)
    app.add_exception_handler(Exception, _unexpected)
    return app
