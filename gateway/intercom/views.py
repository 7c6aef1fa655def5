"""Calls as read for showing: plain rows of the domain, shared by REST and the
live stream (the API maps them to its schema)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session, aliased

from gateway.db.intercom_models import Call
from gateway.db.models import Device, Home


@dataclass(frozen=True)
class CallView:
    """A call with its home's and panel's public ids."""

    id: int
    contract_id: int
    home: str
    panel: str
    panel_name: str
    flat: str
    state: str
    started_at: datetime
    answered_at: datetime | None
    answered_by: str | None
    ended_at: datetime | None
    ended_by: str | None
    clip_end: datetime | None
    """The call's clip runs from ``started_at`` to this (None: none marked)."""


_Panel = aliased(Device)


def call_view() -> Select[Call, str, str, str]:
    return (
        select(Call, Home.uid, _Panel.uid, _Panel.name)
        .join(Home, Home.id == Call.home_id)
        .join(_Panel, _Panel.id == Call.device_id)
    )


def call_of(row: Row[Call, str, str, str]) -> CallView:
    call, home, panel, panel_name = row
    return CallView(
        id=call.id,
        contract_id=call.contract_id,
        home=home,
        panel=panel,
        panel_name=panel_name,
        flat=call.flat,
        state=call.state,
        started_at=call.started_at,
        answered_at=call.answered_at,
        answered_by=call.answered_by,
        ended_at=call.ended_at,
        ended_by=call.ended_by,
        clip_end=call.clip_end,
    )


def load_call_views(session: Session, ids: Iterable[int], contract_ids: set[int]) -> list[CallView]:
    """These calls, only of these contracts (the owner comes from the row)."""
    ids = list(ids)
    if not ids:
        return []
    query = call_view().where(Call.id.in_(ids), Call.contract_id.in_(contract_ids))
    return [call_of(row) for row in session.execute(query.order_by(Call.id))]
