"""Invariant 2's dispatch half: a case no dispatcher acknowledged is shown
again on the dispatch console — its streams and its timeline — every
``dispatch_ack_timeout_s`` until someone does. The schedule is a column, so a
restart picks it up where it was.

The central station is a separate loop: its copy of the alarm is one outbox
row, retried until *its receiver* ACKs it (``gateway.dispatch.station``). A
re-send to the console is no new event for the station — Contact ID would
read an identical second report as a second alarm.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.security_models import Case, CaseEntry, CaseStatus
from gateway.notices import Notice


def resend_due(session: Session, now: datetime, ack_timeout: timedelta) -> Notice:
    changes = Notice()
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
                text=f"not acknowledged by a dispatcher: shown again ({case.resends})",
            )
        )
        changes.cases.append(case.id)
    return changes
