"""Prometheus metrics on the API port, behind a bearer token.

Process and ingest metrics tell an outsider how busy the gateway is and when
it restarted, so they are not for anyone who reaches the API port: the
scraper sends ``MOYDOM_METRICS_TOKEN`` (or, while that is unset, the admin
token). A process can also serve them unauthenticated on a port of its own
(``MOYDOM_METRICS_PORT``), to be kept on the monitoring network.

The API's ``/metrics`` adds the site's gauges read from the database at
scrape time (``gateway.health.gauges``); docs/monitoring.md lists them all.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from gateway.api.deps import BearerDep, CtxDep
from gateway.errors import InvalidCredentials
from gateway.health.gauges import SiteCollector

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request, ctx: CtxDep, creds: BearerDep) -> Response:
    configured = ctx.settings.metrics_token
    expected = configured.get_secret_value() if configured else ctx.secrets.admin_token
    if creds is None or not hmac.compare_digest(creds.credentials.encode(), expected.encode()):
        raise InvalidCredentials("metrics token required")
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    site = CollectorRegistry(auto_describe=False)
    site.register(SiteCollector(REGISTRY, ctx.db))
    return Response(encoder(site), media_type=content_type)
