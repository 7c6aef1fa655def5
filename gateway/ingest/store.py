"""One batch of received messages into the database, in one transaction.

Pure database work, no MQTT: given what arrived, write the events, the
rejected messages, the device health and the redelivery markers; return what
to acknowledge. The worker owns the broker side.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from devices.edges import STATE_FIELDS, observe
from devices.kinds import DeviceKind
from devices.payloads import DeviceMessage, PayloadError, parse
from devices.topics import BRIDGE, Channel, ParsedTopic
from devices.topics import parse as parse_topic
from gateway.commands.records import settle_answers
from gateway.db.models import IngestMarker, RejectedMessage
from gateway.ingest import bulk, replay, states
from gateway.ingest.bulk import HealthRow
from gateway.ingest.directory import DeviceDirectory, DeviceRef
from gateway.ingest.states import Lookup, State, StateCache
from gateway.intercom.calls import record as record_calls
from gateway.notices import Notice
from gateway.recording.clips import mark_clips
from gateway.security.panel import SecurityService, ZoneMessage
from gateway.security.zones import ZONE_KINDS, ZoneDevice

MESSAGES = Counter("moydom_ingest_messages_total", "Device messages handled by ingest", ["result"])
REJECTED = Counter("moydom_ingest_rejected_total", "Device messages stored aside", ["reason"])
REJECTED_PAYLOAD_KEEP = 64 * 1024
_ACTION_CODE = re.compile(rb'("action_code"\s*:\s*)("(?:[^"\\]|\\.)*"|[0-9]+)')


class Received:
    """A message as the worker received it from the broker.

    ``packet_id`` 0: a QoS 0 delivery, which is neither acknowledged nor
    redelivered, so it gets no marker. ``digest`` (of topic and payload) is
    computed once: the writer and the acknowledgement both need it.
    ``replayed``: a copy a restored broker sent again (gateway.ingest.replay).
    """

    __slots__ = (
        "digest",
        "dup",
        "epoch",
        "packet_id",
        "payload",
        "received_at",
        "replayed",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        payload: bytes,
        packet_id: int,
        dup: bool,
        *,
        epoch: int,
        received_at: datetime,
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.packet_id = packet_id
        self.dup = dup
        self.epoch = epoch
        self.received_at = received_at
        self.replayed = False
        self.digest = hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()[:32]

    def __repr__(self) -> str:
        return f"Received({self.topic!r}, packet {self.packet_id}, dup {self.dup})"


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


def _health_row(
    device_id: int, msg: DeviceMessage, at: datetime, rows: dict[int, HealthRow]
) -> None:
    """Fold one accepted message into its device's health row for this batch."""
    row = rows.get(device_id)
    if row is None:
        row = rows[device_id] = [device_id, None, at, None, None, None, None]
    row[2] = at
    if msg.online is not None:
        row[1] = msg.online
    elif row[1] is None:
        row[1] = True  # it just spoke
    health = msg.health
    if health.battery is not None:
        row[3] = health.battery
    if health.battery_low is not None:
        row[4] = health.battery_low
    if health.voltage is not None:
        row[5] = health.voltage
    if health.linkquality is not None:
        row[6] = health.linkquality


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str
    device_id: int | None = None

    def row(self, item: Received) -> dict[str, Any]:
        return {
            "topic": item.topic[:1024],
            # A malformed keypad message may still carry the PIN someone typed.
            "payload": _ACTION_CODE.sub(rb'\1"***"', item.payload[:REJECTED_PAYLOAD_KEEP]),
            "reason": self.reason,
            # PostgreSQL text refuses NUL, and details quote the input.
            "detail": self.detail[:1000].replace("\x00", "\\0"),
            "device_id": self.device_id,
            "received_at": item.received_at,
        }


_TOPICS_MAX = 10_000
JOURNAL_KEEP = timedelta(minutes=10)
"""How long a batch stays in the journal: far longer than a snapshot's age
(the broker saves every second), with room for a slow restart."""
JOURNAL_PRUNE_EVERY = timedelta(seconds=5)
PAUSE_EVERY = 32


@dataclass
class Prepared:
    """One batch, classified: what to write, without the database.

    Built by :meth:`BatchStore.prepare` while the previous batch is being
    committed; :meth:`BatchStore.write` uses it unless a redelivery in the
    batch turns out to be a duplicate, which only the database can tell.
    """

    events: list[bulk.EventRow] = field(default_factory=list)
    events_param: tuple[str, Any] | None = None
    """The events as :func:`bulk.insert_events` sends them, built ahead."""
    markers: dict[int, str] = field(default_factory=dict)
    journal: list[str] = field(default_factory=list)
    """Journal entries of the QoS 1 deliveries, in order (gateway.ingest.replay)."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    health: dict[int, HealthRow] = field(default_factory=dict)
    zone_candidates: list[tuple[DeviceRef, DeviceMessage, datetime]] = field(default_factory=list)
    calls: list[tuple[int, datetime]] = field(default_factory=list)
    states_before: dict[int, State] = field(default_factory=dict)
    """The reported state each device with state fields had when the batch
    began, as classifying assumed it; checked against the rows at commit."""
    states_after: dict[int, State] = field(default_factory=dict)
    generation: int = 0
    """The prediction's generation it was classified with (StateCache)."""
    duplicates: int = 0
    ignored: int = 0

    def observe(
        self, device: DeviceRef, msg: DeviceMessage, at: datetime, lookup: Lookup
    ) -> DeviceMessage:
        """The message as news, against what the device reported before it."""
        if device.kind not in STATE_FIELDS or msg.online is not None:
            return msg
        previous = self.states_after.get(device.id)
        if previous is None:
            previous = self.states_before[device.id] = lookup(device.id)
        msg, self.states_after[device.id] = observe(device.kind, previous, msg, at)
        return msg


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
        self.dialect = dialect
        """The database's dialect name, for building statement parameters ahead."""
        self.directory = directory
        self.reported = reported
        self.exclusive = exclusive
        """Alone on its subscription: no other worker writes its devices' states."""
        self._journal_seq: int | None = None
        self._pruned_at: datetime | None = None
        self.root = root
        self.security = security
        self._topics: dict[str, ParsedTopic | None] = {}
        """parse_topic's answers (a pure function of the topic), bounded."""

    def _where(self, topic: str) -> ParsedTopic | None:
        try:
            return self._topics[topic]
        except KeyError:
            pass
        if len(self._topics) >= _TOPICS_MAX:
            self._topics.clear()  # a flood of made-up topics costs a re-parse
        where = self._topics[topic] = parse_topic(self.root, topic)
        return where

    def _classify(self, item: Received) -> tuple[DeviceRef, DeviceMessage] | Rejection | None:
        """The device and parsed message, or why it is rejected (None: not ours)."""
        where = self._where(item.topic)
        if where is None:
            return Rejection("bad_topic", "topic is outside the device layout")
        channel = where.channel
        if channel is Channel.SET:
            return None  # the gateway's own commands to devices
        if channel is Channel.BRIDGE:
            if where.device != "state":
                return None  # a bridge's logs, info, device lists: not events
            # ``bridge/state`` is the bridge's availability (and last will).
            where = replace(where, device=BRIDGE)
            channel = Channel.AVAILABILITY
        device = self.directory.lookup(where.home, where.device)
        if device is None:
            return Rejection(
                "unknown_device", f"no live device {where.device} in home {where.home}"
            )
        try:
            return device, parse(device.kind, channel, item.payload)
        except PayloadError as exc:
            return Rejection(exc.reason, str(exc), device.id)

    def reject_all(self, session: Session, items: list[Received], detail: str) -> None:
        """Store items aside that the database refused to take as events."""
        rows = [Rejection("store_error", detail).row(i) for i in items]
        session.execute(insert(RejectedMessage), rows)
        REJECTED.labels("store_error").inc(len(rows))

    def _known_markers(self, session: Session, items: list[Received]) -> dict[int, str]:
        ids = [i.packet_id for i in items if i.dup]
        if not ids:
            return {}
        rows = session.execute(
            select(IngestMarker.packet_id, IngestMarker.digest).where(
                IngestMarker.session == self.session_name, IngestMarker.packet_id.in_(ids)
            )
        )
        return {packet_id: digest for packet_id, digest in rows}

    def prepare(
        self,
        items: list[Received],
        known: dict[int, str] | None = None,
        pause: Callable[[], None] | None = None,
        reported: Lookup | None = None,
    ) -> Prepared:
        """Classify each message: event, rejection, ignored, or (``known``: the
        session's markers for the batch's DUP packet ids) duplicate.
        ``pause`` is called every :data:`PAUSE_EVERY` messages. ``reported``:
        what each device reported before the batch (default: the prediction)."""
        out = Prepared(generation=self.reported.generation)
        lookup = reported or self.reported.lookup
        for n, item in enumerate(items, 1):
            if pause is not None and n % PAUSE_EVERY == 0:
                pause()
            if item.packet_id:  # copies too: the journal follows what the broker sends
                out.journal.append(replay.entry(item.topic, item.digest))
            if item.replayed or (known and item.dup and known.get(item.packet_id) == item.digest):
                out.duplicates += 1
                continue
            outcome = self._classify(item)
            if outcome is None:
                out.ignored += 1
                continue
            if isinstance(outcome, Rejection):
                out.rejected.append(outcome.row(item))
                out.reasons.append(outcome.reason)
            else:
                device, msg = outcome
                at = item.received_at
                msg = out.observe(device, msg, at, lookup)
                out.events.append(
                    (device.contract_id, device.home_id, device.id, msg.event, msg.body, at)
                )
                _health_row(device.id, msg, at, out.health)
                kind = device.kind
                if kind in ZONE_KINDS:
                    out.zone_candidates.append((device, msg, at))
                elif kind is DeviceKind.INTERCOM and msg.body.get("event") == "call":
                    out.calls.append((device.home_id, at))
            if item.packet_id:  # QoS 0 is never redelivered
                out.markers[item.packet_id] = item.digest
        if out.events:
            out.events_param = bulk.events_param(self.dialect, out.events)
        self.reported.update(out.states_after)
        return out

    def write(
        self,
        session: Session,
        items: list[Received],
        confirmed: list[tuple[int, str]],
        stale_before: datetime | None,
        now: datetime,
        *,
        prepared: Prepared | None = None,
    ) -> BatchResult:
        """Write a batch; ``confirmed`` markers (acks the broker has processed)
        and markers older than ``stale_before`` are deleted in the same commit.
        ``prepared``: :meth:`prepare`'s work for these items, if done ahead."""
        known = self._known_markers(session, items)
        batch = self._classified(session, items, known, prepared)
        result = BatchResult(duplicates=batch.duplicates, ignored=batch.ignored)
        bulk.delete_markers(session, self.session_name, confirmed)
        if stale_before is not None:
            session.execute(
                delete(IngestMarker).where(
                    IngestMarker.session == self.session_name,
                    IngestMarker.written_at < stale_before,
                )
            )
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
        bulk.upsert_markers(session, self.session_name, batch.markers, marked_at)
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
