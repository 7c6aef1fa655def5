"""Liveness and readiness for operators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.api.deps import CtxDep
from gateway.api.schemas import Health
from gateway.broker.dynsec import DynSecError
from gateway.operator_alerts import open_keys

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(ctx: CtxDep) -> JSONResponse:
    """503 when the database or the broker does not answer (which one says
    ``down``). 200 otherwise, ``degraded`` while an operator alert is open
    (``alerts`` lists their keys, e.g. ``central-station``): the API itself
    works, so a load balancer keeps it, but an operator must look."""
    database = "ok"
    alerts: list[str] = []
    try:
        with ctx.db.session() as session:
            session.execute(text("SELECT 1"))
            alerts = open_keys(session)
    except SQLAlchemyError:
        database = "down"
    broker = "ok"
    try:
        ctx.provisioner.dynsec.command("getDefaultACLAccess")
    except DynSecError:
        broker = "down"
    ok = database == "ok" and broker == "ok"
    body = Health(
        status="ok" if ok and not alerts else "degraded",
        database=database,
        broker=broker,
        alerts=alerts,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
