"""Alerts and cases as the API shows them, shared by REST and the live streams."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from gateway.api.security_schemas import AlertOut, CaseEntryOut, CaseOut
from gateway.db.models import Device, Home
from gateway.db.security_models import Alert, Case, CaseEntry


def alert_view() -> Select[Alert, str, str | None]:
    return (
        select(Alert, Home.uid, Device.uid)
        .join(Home, Home.id == Alert.home_id)
        .outerjoin(Device, Device.id == Alert.device_id)
    )


def shown_alert(row: Row[Alert, str, str | None]) -> AlertOut:
    alert, home, device = row
    return AlertOut(
        id=alert.id,
        home=home,
        device=device,
        category=alert.category,
        kind=alert.kind,
        text=alert.text,
        body=alert.body,
        at=alert.at,
    )


def load_alerts(
    session: Session, ids: list[int], contracts: set[int]
) -> list[tuple[int, AlertOut]]:
    """(contract id, alert) for these ids, only of these contracts."""
    query = alert_view().where(Alert.id.in_(ids), Alert.contract_id.in_(contracts))
    return [
        (row[0].contract_id, shown_alert(row)) for row in session.execute(query.order_by(Alert.id))
    ]


def case_out(session: Session, case: Case) -> CaseOut:
    home = session.get_one(Home, case.home_id)
    zone = session.scalar(select(Device.name).where(Device.uid == case.zone)) if case.zone else None
    entries = session.scalars(
        select(CaseEntry).where(CaseEntry.case_id == case.id).order_by(CaseEntry.id)
    )
    return CaseOut(
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
            CaseEntryOut(at=e.at, kind=e.kind, text=e.text, author=e.author) for e in entries
        ],
    )


def load_cases(session: Session, ids: Iterable[int]) -> list[CaseOut]:
    cases = session.scalars(select(Case).where(Case.id.in_(list(ids))).order_by(Case.id))
    return [case_out(session, case) for case in cases]
