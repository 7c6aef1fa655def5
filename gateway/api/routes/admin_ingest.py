"""Admin: what ingest stored aside, for operators chasing a misbehaving device."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from gateway.api.deps import AdminDep, SessionDep
from gateway.api.routes.events import CURSOR_PATTERN, decode_cursor, encode_cursor
from gateway.api.schemas import RejectedOut, RejectedPage, errors
from gateway.db.models import Device, RejectedMessage

router = APIRouter(prefix="/admin", tags=["admin"], responses=errors(401, 422))


@router.get("/rejected", response_model=RejectedPage)
def list_rejected(
    *,
    session: SessionDep,
    _: AdminDep,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    reason: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
) -> RejectedPage:
    """Rejected device messages, newest first, with topic, raw bytes and reason."""
    query = (
        select(RejectedMessage, Device.uid)
        .outerjoin(Device, Device.id == RejectedMessage.device_id)
        .order_by(RejectedMessage.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        query = query.where(RejectedMessage.id < decode_cursor(cursor))
    if reason is not None:
        query = query.where(RejectedMessage.reason == reason)
    rows = session.execute(query).all()
    items = [
        RejectedOut(
            id=r.id,
            topic=r.topic,
            device=device_uid,
            reason=r.reason,
            detail=r.detail,
            payload_base64=base64.b64encode(r.payload).decode(),
            payload_text=r.payload[:2000].decode("utf-8", errors="replace"),
            received_at=r.received_at,
        )
        for r, device_uid in rows[:limit]
    ]
    more = len(rows) > limit
    return RejectedPage(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)
