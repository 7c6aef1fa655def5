"""What a commit announces to the other roles: ids only, never content, so a
reader always loads what it shows from the database (and checks its owner
there). One model, encoded and decoded only here."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)


class Notice(BaseModel):
    """Ids a transaction stored that others must hear of after it commits.

    Unknown fields are ignored, so a role of a newer release (commands and
    calls are coming) does not break an older reader during an upgrade.
    """

    model_config = ConfigDict(extra="ignore")

    events: list[tuple[int, int]] = Field(default_factory=list)
    """(event id, contract id) for the subscribers' live stream."""
    alerts: list[tuple[int, int]] = Field(default_factory=list)
    """(alert id, contract id) for the subscribers' live stream."""
    cases: list[int] = Field(default_factory=list)
    """Dispatch cases opened or changed, for the dispatch streams."""
    outbox: bool = False
    """Outbox rows were queued: the alarms role should send now."""
    calls: list[tuple[int, int]] = Field(default_factory=list)
    """(call id, contract id): intercom calls that started or changed state,
    for the subscribers' live stream (ring, «отвечено», ended)."""
    commands: list[tuple[int, int]] = Field(default_factory=list)
    """(command id, contract id): gate and door commands created or settled
    (their history events, in ``events``, are what streams show); the
    command sweep wakes on them to schedule deadlines."""
    access_ended: list[tuple[str, int]] = Field(default_factory=list)
    """Logins whose access just ended (``("contract", id)``, ``("owner", id)``,
    ``("member", id)``): every API process closes their streams and live
    sessions at once, not at its next re-check."""

    def __bool__(self) -> bool:
        return bool(
            self.events
            or self.alerts
            or self.cases
            or self.outbox
            or self.calls
            or self.commands
            or self.access_ended
        )

    def merge(self, other: Notice) -> Notice:
        """Add ``other``'s ids to this one (returned, for chaining)."""
        self.events += other.events
        self.alerts += other.alerts
        self.cases += other.cases
        self.outbox = self.outbox or other.outbox
        self.calls += other.calls
        self.commands += other.commands
        self.access_ended += other.access_ended
        return self

    def encode(self) -> bytes:
        return self.model_dump_json(exclude_defaults=True).encode()

    @classmethod
    def decode(cls, payload: bytes | bytearray | str) -> Notice | None:
        """The notice, or None (logged) for a payload that is not one."""
        try:
            return cls.model_validate_json(payload)
        except ValidationError:
            log.error("unreadable commit notice (%d bytes)", len(payload))
            return None

    def split(self, most_bytes: int) -> list[Notice]:
        """Notices of at most ``most_bytes`` encoded that together say the same
        (PostgreSQL's NOTIFY takes under 8,000 bytes)."""
        if len(self.encode()) <= most_bytes:
            return [self]
        ids: list[tuple[str, Any]] = [("events", i) for i in self.events]
        ids += [("alerts", i) for i in self.alerts] + [("cases", i) for i in self.cases]
        ids += [("calls", i) for i in self.calls]
        ids += [("commands", i) for i in self.commands]
        ids += [("access_ended", i) for i in self.access_ended]
        if len(ids) <= 1:
            raise ValueError("one id does not fit a notice")
        half = len(ids) // 2
        return _of(ids[:half], self.outbox).split(most_bytes) + _of(ids[half:]).split(most_bytes)


def _of(ids: list[tuple[str, Any]], outbox: bool = False) -> Notice:
    return Notice(
        events=[i for kind, i in ids if kind == "events"],
        alerts=[i for kind, i in ids if kind == "alerts"],
        cases=[i for kind, i in ids if kind == "cases"],
        calls=[i for kind, i in ids if kind == "calls"],
        commands=[i for kind, i in ids if kind == "commands"],
        access_ended=[i for kind, i in ids if kind == "access_ended"],
        outbox=outbox,
    )
