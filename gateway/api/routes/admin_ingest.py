"""Admin: what ingest stored aside, for operators chasing a misbehaving device."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from gateway.api.deps import AdminDep, SessionDep
from gateway.api.pagination import Cursor, keyset, page
from gateway.api.schemas import RejectedOut, RejectedPage, errors
from gateway.db.models import Device, RejectedMessage

router = APIRouter(prefix="/admin", tags=["admin"], responses=errors(401, 422))


@router.get("/rejected", response_model=RejectedPage)
def list_rejected(
    *,
    session: SessionDep,
    _: AdminDep,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    reason: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
) -> RejectedPage:
    """Rejected device messages, newest first, with topic, raw bytes and reason."""
    query = keyset(
        select(RejectedMessage, Device.uid).outerjoin(
            Device, Device.id == RejectedMessage.device_id
        ),
        RejectedMessage.id,
        cursor,
        limit,
    )
    if reason is not None:
        query = query.where(RejectedMessage.reason == reason)
    rows, next_cursor = page(session.execute(query).all(), limit, lambda row: row[0].id)
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
        for r, device_uid in rows
    ]
    return RejectedPage(items=items, next_cursor=next_cursor)
