"""Whether the central station is receiving, made visible (invariant 2).

The link's outcomes are recorded where people look, not only in logs and a
counter: while attempts fail, an operator alert ``central-station`` is open
("central station not receiving: NAK (wrong key or account?) since …"), which
also turns ``/api/v1/health`` to ``degraded``; the case whose alarm is stuck
says the same on its timeline, and later that the station received it. The
first ACK after a failure clears the alert.

One outage is one alert and one line per case: the text stays the same while
the cause does, and only a new cause adds a line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.security_models import Case, CaseEntry, CaseStatus
from gateway.dispatch.sia import CentralStationError
from gateway.operator_alerts import clear_alert, open_alert, raise_alert

log = logging.getLogger(__name__)

ALERT_KEY = "central-station"
"""The operator alert's key (``gateway.operator_alerts``)."""
CASE_ENTRY = "central_station"
"""The kind of a case's timeline lines about its delivery to the station."""
_CASE_KEY = re.compile(r"case-(\d+)-\d+")


def case_key(case_id: int) -> str:
    """The outbox key of a case's alarm to the station: one row per case, so
    deciding it twice sends it once."""
    return f"case-{case_id}-0"


def case_of_key(key: str) -> int | None:
    """The case an outbox key belongs to, if it is a case's alarm."""
    match = _CASE_KEY.fullmatch(key)
    return int(match[1]) if match else None


class StationWatch:
    """Records each attempt's outcome; called by the central-station transport
    from a worker thread. ``announce`` tells the dispatch streams which cases
    changed (the alarms role publishes it as a commit notice)."""

    def __init__(self, db: Database, announce: Callable[[list[int]], None]) -> None:
        self.db = db
        self.announce = announce
        self._maybe_open = True
        """An alert may be open (at start another process may have left one)."""

    def failed(self, key: str, error: CentralStationError, now: datetime) -> None:
        with self.db.transaction() as session:
            alert = open_alert(session, ALERT_KEY)
            since = alert.raised_at if alert is not None else now
            text = (
                f"central station not receiving: {error.summary}"
                f" since {since:%Y-%m-%d %H:%M:%S} UTC"
            )
            details = {"reason": error.reason, "detail": error.detail, "since": since.isoformat()}
            raise_alert(session, ALERT_KEY, text, now, details)
            case_id = case_of_key(key)
            changed = case_id is not None and _note(session, case_id, text, now)
        self._maybe_open = True
        if alert is None:
            log.error("%s", text)
        if changed and case_id is not None:
            self.announce([case_id])

    def delivered(self, key: str, now: datetime) -> None:
        case_id = case_of_key(key)
        if case_id is None and not self._maybe_open:
            return
        with self.db.transaction() as session:
            if self._maybe_open and clear_alert(session, ALERT_KEY, now) is not None:
                log.warning("central station receiving again")
            text = f"central station received it (ACK) at {now:%H:%M:%S} UTC"
            changed = case_id is not None and _note(session, case_id, text, now)
        self._maybe_open = False
        if changed and case_id is not None:
            self.announce([case_id])


def _note(session: Session, case_id: int, text: str, now: datetime) -> bool:
    """Add ``text`` to the case's timeline unless it is already its last word
    on the station, or the case is closed. Returns whether it was added."""
    case = session.get(Case, case_id)
    if case is None or case.status == CaseStatus.CLOSED:
        return False
    last = session.scalars(
        select(CaseEntry.text)
        .where(CaseEntry.case_id == case_id, CaseEntry.kind == CASE_ENTRY)
        .order_by(CaseEntry.id.desc())
        .limit(1)
    ).first()
    if last == text:
        return False
    session.add(CaseEntry(case_id=case_id, at=now, kind=CASE_ENTRY, text=text))
    return True
