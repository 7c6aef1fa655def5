"""One batch of received messages into the database, in one transaction.

Pure database work, no MQTT: given what arrived (classified ahead by
gateway.ingest.classify, or here), write the events, the rejected messages,
the device health and states, the redelivery markers and the journal, and
run the batch's hooks (alarm panels, intercom calls, command answers). Which
markers to delete is the ledger's (gateway.ingest.ledger); the worker owns
the broker side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import insert
from sqlalchemy.orm import Session

from devices.payloads import DeviceMessage
from gateway.commands.records import settle_answers
from gateway.db.models import RejectedMessage
from gateway.ingest import bulk, markers, replay, states
from gateway.ingest.classify import Classifier, Prepared, Received, Rejection
from gateway.ingest.directory import DeviceDirectory, DeviceRef
from gateway.ingest.ledger import Cleanup
from gateway.ingest.states import Lookup, StateCache
from gateway.intercom.calls import record as record_calls
from gateway.notices import Notice
from gateway.recording.clips import mark_clips
from gateway.security.panel import SecurityService, ZoneMessage
from gateway.security.zones import ZoneDevice

MESSAGES = Counter("moydom_ingest_messages_total", "Device messages handled by ingest", ["result"])
REJECTED = Counter("moydom_ingest_rejected_total", "Device messages stored aside", ["reason"])
JOURNAL_KEEP = timedelta(minutes=10)
"""How long a batch stays in the journal: far longer than a snapshot's age
(the broker saves every second), with room for a slow restart."""
JOURNAL_PRUNE_EVERY = timedelta(seconds=5)


@dataclass
class BatchResult:
    stored: int = 0
    rejected: int = 0
    duplicates: int = 0
    ignored: int = 0
    new_events: list[tuple[int, int]] = field(default_factory=list)
    """(event id, contract id) of what this batch stored, for the live stream."""
    journal_seq: int | None = None
    """The batch's number in the session's journal, if it journalled anything."""
    security: Notice = field(default_factory=Notice)
    """What the batch changed at alarm panels: alerts, cases, outbox rows."""


class BatchStore:
    """Writes batches for one ingest session (one worker's MQTT session)."""

    def __init__(
        self,
        session_name: str,
        directory: DeviceDirectory,
        root: str,
        security: SecurityService | None = None,
        *,
        reported: StateCache,
        exclusive: bool = True,
        dialect: str = "postgresql",
    ) -> None:
        self.session_name = session_name
        self.classifier = Classifier(directory, root, reported, dialect)
        self.reported = reported
        self.exclusive = exclusive
        """Alone on its subscription: no other worker writes its devices' states."""
        self._journal_seq: int | None = None
        self._pruned_at: datetime | None = None
        self.security = security

    def prepare(
        self,
        items: list[Received],
        known: dict[int, str] | None = None,
        pause: Callable[[], None] | None = None,
        reported: Lookup | None = None,
    ) -> Prepared:
        """Classify the batch (gateway.ingest.classify); ``known``: the session's
        markers for its DUP packet ids."""
        return self.classifier.prepare(items, known, pause, reported)

    def reject_all(self, session: Session, items: list[Received], detail: str) -> None:
        """Store items aside that the database refused to take as events."""
        rows = [Rejection("store_error", detail).row(i) for i in items]
        session.execute(insert(RejectedMessage), rows)
        REJECTED.labels("store_error").inc(len(rows))

    def write(
        self,
        session: Session,
        items: list[Received],
        cleanup: Cleanup,
        now: datetime,
        *,
        prepared: Prepared | None = None,
    ) -> BatchResult:
        """Write a batch, and delete the markers ``cleanup`` names in the same
        commit. ``prepared``: :meth:`prepare`'s work for these items, if done ahead."""
        known = markers.known(session, self.session_name, [i.packet_id for i in items if i.dup])
        batch = self._classified(session, items, known, prepared)
        result = BatchResult(duplicates=batch.duplicates, ignored=batch.ignored)
        markers.delete_confirmed(session, self.session_name, cleanup.confirmed)
        if cleanup.stale_before is not None:
            markers.delete_stale(session, self.session_name, cleanup.stale_before)
        result.new_events = bulk.insert_events(session, batch.events, batch.events_param)
        if batch.rejected:
            session.execute(insert(RejectedMessage), batch.rejected)
        bulk.upsert_health(session, list(batch.health.values()))
        states.write(
            session,
            {d: s for d, s in batch.states_after.items() if s != batch.states_before.get(d)},
            now,
        )
        # A marker is dated by when its message was received, not committed:
        # the stale-marker rule deletes the markers of messages received on
        # earlier connections, also those committed after this one began.
        marked_at = max((i.received_at for i in items), default=now)
        markers.upsert(session, self.session_name, batch.markers, marked_at)
        result.journal_seq = self._journal(session, batch.journal, now)
        if self.security is not None:
            before, after = self.security.clip_window
            for home_id, at in batch.calls:
                mark_clips(session, home_id, "intercom", at, before=before, after=after)
            if batch.zone_candidates:
                result.security = self._alarm_panels(session, batch.zone_candidates, now)
        transports = self.security.transports if self.security is not None else frozenset()
        result.security.merge(record_calls(session, batch.events, transports, now))
        result.security.merge(settle_answers(session, batch.events, now, transports))
        result.stored, result.rejected = len(batch.events), len(batch.rejected)
        for reason in batch.reasons:
            REJECTED.labels(reason).inc()
        MESSAGES.labels("stored").inc(result.stored)
        MESSAGES.labels("rejected").inc(result.rejected)
        MESSAGES.labels("duplicate").inc(result.duplicates)
        return result

    def _classified(
        self,
        session: Session,
        items: list[Received],
        known: dict[int, str],
        prepared: Prepared | None,
    ) -> Prepared:
        """The batch classified against what its devices reported before it.

        ``prepared`` stands unless the prediction was dropped since (a failed
        commit), a redelivery in it is a duplicate, or — with other workers
        on the subscription — the rows, read and locked, say otherwise."""
        if prepared is None or prepared.generation != self.reported.generation:
            prepared = self.prepare(items, known)
        elif any(i.dup and known.get(i.packet_id) == i.digest for i in items if i.dup):
            before = prepared.states_before
            prepared = self.prepare(
                items,
                known,
                reported=lambda d: before[d] if d in before else self.reported.lookup(d),
            )
        if self.exclusive or not prepared.states_before:
            return prepared
        truth = states.read(session, prepared.states_before)
        if truth == prepared.states_before:
            return prepared
        return self.prepare(
            items,
            known,
            reported=lambda d: truth[d] if d in truth else states.read(session, [d])[d],
        )

    def _journal(self, session: Session, digests: list[str], now: datetime) -> int | None:
        """Journal the batch's deliveries; prune old batches now and then."""
        if not digests:
            return None
        if self._journal_seq is None:
            self._journal_seq = replay.last_seq(session, self.session_name)
        self._journal_seq += 1  # a batch that fails to commit leaves a gap: harmless
        replay.append(session, self.session_name, self._journal_seq, digests, now)
        if self._pruned_at is None or now - self._pruned_at > JOURNAL_PRUNE_EVERY:
            replay.prune(session, self.session_name, now - JOURNAL_KEEP)
            self._pruned_at = now
        return self._journal_seq

    def _alarm_panels(
        self,
        session: Session,
        candidates: list[tuple[DeviceRef, DeviceMessage, datetime]],
        now: datetime,
    ) -> Notice:
        """The zone messages of homes with a panel, to their panels.

        After the writes: on SQLite the transaction then already holds the
        write lock while the panels are read and updated. One indexed lookup
        finds the homes that have a panel; a batch from homes without one
        costs nothing more.
        """
        assert self.security is not None
        panels = self.security.homes_with_panels(session, {d.home_id for d, _, _ in candidates})
        if not panels:
            return Notice()
        messages = [
            ZoneMessage(d.home_id, ZoneDevice(d.id, d.uid, d.name, d.kind), msg, at)
            for d, msg, at in candidates
            if d.home_id in panels
        ]
        return self.security.apply_messages(session, messages, now)
