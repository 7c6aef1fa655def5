"""Admin: operator alerts — conditions an operator must act on (a central
station not receiving, a full disk), open ones first (``gateway.operator_alerts``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from gateway.api.deps import AdminDep, SessionDep
from gateway.api.routes import admin_health
from gateway.api.schemas import errors
from gateway.db.models import OperatorAlert

router = APIRouter(prefix="/admin", tags=["admin"], responses=errors(401, 422))
router.include_router(admin_health.router)


class OperatorAlertOut(BaseModel):
    id: int
    key: str
    text: str
    details: dict[str, Any]
    raised_at: datetime
    """When the condition began."""
    updated_at: datetime
    """When it was last seen (or cleared)."""
    cleared_at: datetime | None
    open: bool


@router.get("/operator-alerts", response_model=list[OperatorAlertOut])
def list_operator_alerts(
    *,
    session: SessionDep,
    _: AdminDep,
    include_cleared: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OperatorAlertOut]:
    """The open alerts, newest first; with ``include_cleared`` the cleared ones
    follow, newest first."""
    query = select(OperatorAlert)
    if not include_cleared:
        query = query.where(OperatorAlert.cleared_at.is_(None))
    query = query.order_by(OperatorAlert.cleared_at.is_not(None), OperatorAlert.id.desc())
    return [
        OperatorAlertOut(
            id=a.id,
            key=a.key,
            text=a.text,
            details=a.details,
            raised_at=a.raised_at,
            updated_at=a.updated_at,
            cleared_at=a.cleared_at,
            open=a.cleared_at is None,
        )
        for a in session.scalars(query.limit(limit))
    ]
