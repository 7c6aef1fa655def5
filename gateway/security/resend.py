"""Invariant 2's second half: a case no dispatcher acknowledged is sent
again — to the dispatch streams and to the central station — every
``dispatch_ack_timeout_s`` until someone does. The schedule is a column, so
a restart picks it up where it was."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.models import Device, Home
from gateway.db.security_models import AlarmPanel, Case, CaseEntry, CaseStatus
from gateway.outbox.enqueue import contact_id
from gateway.security.effects import Changes
from gateway.security.zones import zone_number


def resend_due(
    session: Session, now: datetime, ack_timeout: timedelta, central_station: bool
) -> Changes:
    changes = Changes()
    query = (
        select(Case)
        .where(Case.next_resend_at <= now, Case.status == CaseStatus.OPEN)
        .order_by(Case.next_resend_at)
        .limit(100)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    for case in session.scalars(query):
        case.resends += 1
        case.next_resend_at = now + ack_timeout
        session.add(
            CaseEntry(
                case_id=case.id,
                at=now,
                kind="resent",
                text=f"not acknowledged: sent again ({case.resends})",
            )
        )
        changes.cases.append(case.id)
        panel = session.get(AlarmPanel, case.home_id)
        if central_station and panel is not None and panel.monitored:
            device_id = session.scalar(select(Device.id).where(Device.uid == case.zone))
            contact_id(
                session,
                f"case-{case.id}-{case.resends}",
                account=panel.account,
                code=case.contact_id,
                qualifier=1,
                zone=zone_number(device_id or 0),
                home=session.get_one(Home, case.home_id).uid,
                at=now,
            )
            changes.outbox = True
    return changes
