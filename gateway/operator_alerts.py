"""Operator alerts: conditions an ISP operator must see and act on — a central
station that does not take our alarms, a full disk.

A condition is named by a stable ``key`` (``central-station``,
``disk:/var/archive``). :func:`raise_alert` opens the alert for that key, or,
while one is open, only refreshes its text and ``updated_at``: a condition that
persists for hours is one open alert, not a flood. :func:`clear_alert` closes
it; the row stays, with ``cleared_at``, as history. Open alerts turn
``GET /api/v1/health`` to ``degraded`` and are listed at
``GET /api/v1/admin/operator-alerts`` (docs/operators.md).

Both functions work inside the caller's transaction. A unique index on the
open row of each key stops two processes opening the same alert twice; the
loser's insert fails and its transaction is retried by its caller like any
other conflict.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.models import OperatorAlert


def _open(session: Session, key: str) -> OperatorAlert | None:
    query = select(OperatorAlert).where(
        OperatorAlert.key == key, OperatorAlert.cleared_at.is_(None)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalars(query).first()


def raise_alert(
    session: Session, key: str, text: str, now: datetime, details: dict[str, Any] | None = None
) -> OperatorAlert:
    """Open the alert ``key``, or refresh the one already open (its
    ``raised_at``, the start of the condition, is kept)."""
    alert = _open(session, key)
    if alert is None:
        alert = OperatorAlert(key=key, text=text, details=details or {}, raised_at=now)
        session.add(alert)
    else:
        alert.text = text
        alert.details = details or {}
    alert.updated_at = now
    session.flush()
    return alert


def clear_alert(session: Session, key: str, now: datetime) -> OperatorAlert | None:
    """Close the open alert ``key``; ``None`` if none was open."""
    alert = _open(session, key)
    if alert is not None:
        alert.cleared_at = now
        alert.updated_at = now
    return alert


def open_alert(session: Session, key: str) -> OperatorAlert | None:
    """The open alert ``key``, if any (no lock)."""
    return session.scalars(
        select(OperatorAlert).where(OperatorAlert.key == key, OperatorAlert.cleared_at.is_(None))
    ).first()


def open_keys(session: Session) -> list[str]:
    """Keys of every open alert, sorted: what health reports."""
    query = select(OperatorAlert.key).where(OperatorAlert.cleared_at.is_(None))
    return sorted(session.scalars(query))
