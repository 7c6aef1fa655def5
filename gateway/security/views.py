"""Alerts and cases as read for showing: plain rows of the domain, shared by REST
and the live streams. The API maps them to its schemas (``gateway.api.shown``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from gateway.db.models import Device, Home
from gateway.db.security_models import Alert, Case, CaseEntry


@dataclass(frozen=True)
class AlertView:
    """An alert with its home's and device's public ids."""

    id: int
    contract_id: int
    home: str
    device: str | None
    category: str
    kind: str
    text: str
    body: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class CaseEntryView:
    at: datetime
    kind: str
    text: str
    author: str | None


@dataclass(frozen=True)
class CaseView:
    """A dispatch case with its address, zone name and timeline."""

    id: int
    home: str
    address: str
    alarm: str
    contact_id: int
    zone: str | None
    zone_name: str | None
    silent: bool
    status: str
    opened_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    resolution: str | None
    resends: int
    timeline: list[CaseEntryView]


def alert_view() -> Select[Alert, str, str | None]:
    return (
        select(Alert, Home.uid, Device.uid)
        .join(Home, Home.id == Alert.home_id)
        .outerjoin(Device, Device.id == Alert.device_id)
    )


def alert_of(row: Row[Alert, str, str | None]) -> AlertView:
    alert, home, device = row
    return AlertView(
        id=alert.id,
        contract_id=alert.contract_id,
        home=home,
        device=device,
        category=alert.category,
        kind=alert.kind,
        text=alert.text,
        body=alert.body,
        at=alert.at,
    )


def load_alert_views(session: Session, ids: list[int], contracts: set[int]) -> list[AlertView]:
    """The alerts of these ids, only of these contracts."""
    query = alert_view().where(Alert.id.in_(ids), Alert.contract_id.in_(contracts))
    return [alert_of(row) for row in session.execute(query.order_by(Alert.id))]


def case_view(session: Session, case: Case) -> CaseView:
    home = session.get_one(Home, case.home_id)
    zone = session.scalar(select(Device.name).where(Device.uid == case.zone)) if case.zone else None
    entries = session.scalars(
        select(CaseEntry).where(CaseEntry.case_id == case.id).order_by(CaseEntry.id)
    )
    return CaseView(
        id=case.id,
        home=home.uid,
        address=home.address,
        alarm=case.alarm,
        contact_id=case.contact_id,
        zone=case.zone,
        zone_name=zone,
        silent=case.silent,
        status=case.status,
        opened_at=case.opened_at,
        acknowledged_at=case.acknowledged_at,
        closed_at=case.closed_at,
        resolution=case.resolution,
        resends=case.resends,
        timeline=[
            CaseEntryView(at=e.at, kind=e.kind, text=e.text, author=e.author) for e in entries
        ],
    )


def load_case_views(session: Session, ids: Iterable[int]) -> list[CaseView]:
    cases = session.scalars(select(Case).where(Case.id.in_(list(ids))).order_by(Case.id))
    return [case_view(session, case) for case in cases]
