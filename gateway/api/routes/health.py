"""Liveness and readiness for operators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.api.deps import CtxDep
from gateway.api.schemas import Health
from gateway.broker.dynsec import DynSecError

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(ctx: CtxDep) -> JSONResponse:
    """200 when the database and the broker answer, 503 (with which one) otherwise."""
    database = "ok"
    try:
        with ctx.db.session() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        database = "down"
    broker = "ok"
    try:
        ctx.provisioner.dynsec.command("getDefaultACLAccess")
    except DynSecError:
        broker = "down"
    ok = database == "ok" and broker == "ok"
    body = Health(status="ok" if ok else "degraded", database=database, broker=broker)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
