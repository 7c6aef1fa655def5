"""Classifying received messages: topic, device, payload, the rows to write.

CPU work in the worker's process, no database writes: the writer thread
classifies batch N+1 (:meth:`Classifier.prepare`) while the committer
commits batch N (gateway.ingest.store).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from devices.edges import STATE_FIELDS, observe
from devices.kinds import DeviceKind
from devices.payloads import DeviceMessage, PayloadError, parse
from devices.topics import BRIDGE, Channel, ParsedTopic
from devices.topics import parse as parse_topic
from gateway.ingest import bulk, replay
from gateway.ingest.bulk import HealthRow
from gateway.ingest.directory import DeviceDirectory, DeviceRef
from gateway.ingest.states import Lookup, State, StateCache
from gateway.security.zones import ZONE_KINDS

REJECTED_PAYLOAD_KEEP = 64 * 1024
_ACTION_CODE = re.compile(rb'("action_code"\s*:\s*)("(?:[^"\\]|\\.)*"|[0-9]+)')
_TOPICS_MAX = 10_000
PAUSE_EVERY = 32


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


@dataclass
class Prepared:
    """One batch, classified: what to write, without the database.

    Built by :meth:`Classifier.prepare` while the previous batch is being
    committed; :meth:`gateway.ingest.store.BatchStore.write` uses it unless a
    redelivery in the batch turns out to be a duplicate, which only the
    database can tell.
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


class Classifier:
    """Classifies the messages of one ingest session's batches."""

    def __init__(
        self, directory: DeviceDirectory, root: str, reported: StateCache, dialect: str
    ) -> None:
        self.directory = directory
        self.root = root
        self.reported = reported
        self.dialect = dialect
        """The database's dialect name, for building statement parameters ahead."""
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
