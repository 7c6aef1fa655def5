"""One batch of received messages into the database, in one transaction.

Pure database work, no MQTT: given what arrived, write the events, the
rejected messages, the device health and the redelivery markers; return what
to acknowledge. The worker owns the broker side.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from prometheus_client import Counter
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from devices.kinds import DeviceKind
from devices.payloads import DeviceMessage, PayloadError, parse
from devices.topics import BRIDGE, Channel
from devices.topics import parse as parse_topic
from gateway.db.models import DeviceHealth, IngestMarker, RejectedMessage
from gateway.ingest import bulk
from gateway.ingest.directory import DeviceDirectory, DeviceRef
from gateway.recording.clips import mark_clips
from gateway.security.effects import Changes
from gateway.security.panel import SecurityService, ZoneMessage
from gateway.security.zones import ZONE_KINDS, ZoneDevice

MESSAGES = Counter("moydom_ingest_messages_total", "Device messages handled by ingest", ["result"])
REJECTED = Counter("moydom_ingest_rejected_total", "Device messages stored aside", ["reason"])
REJECTED_PAYLOAD_KEEP = 64 * 1024
_ACTION_CODE = re.compile(rb'("action_code"\s*:\s*)("(?:[^"\\]|\\.)*"|[0-9]+)')


@dataclass(frozen=True)
class Received:
    """A message as the worker received it from the broker."""

    topic: str
    payload: bytes
    packet_id: int
    dup: bool
    epoch: int
    received_at: datetime

    @cached_property
    def digest(self) -> str:
        """Computed once: the writer and the acknowledgement both need it."""
        return hashlib.sha256(self.topic.encode() + b"\0" + self.payload).hexdigest()[:32]


@dataclass
class BatchResult:
    stored: int = 0
    rejected: int = 0
    duplicates: int = 0
    ignored: int = 0
    new_events: list[tuple[int, int]] = field(default_factory=list)
    """(event id, contract id) of what this batch stored, for the live stream."""
    security: Changes = field(default_factory=Changes)
    """What the batch changed at alarm panels: alerts, cases, outbox rows."""


def _health_row(device_id: int, msg: DeviceMessage, at: datetime, row: dict[str, Any]) -> None:
    row["device_id"] = device_id
    row["last_seen_at"] = at
    if msg.online is not None:
        row["online"] = msg.online
    elif "online" not in row:
        row["online"] = True  # it just spoke
    for name, value in msg.health.model_dump().items():
        if value is not None:
            row[name] = value


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


class BatchStore:
    """Writes batches for one ingest session (one worker's MQTT session)."""

    def __init__(
        self,
        session_name: str,
        directory: DeviceDirectory,
        root: str,
        security: SecurityService | None = None,
    ) -> None:
        self.session_name = session_name
        self.directory = directory
        self.root = root
        self.security = security

    def _classify(self, item: Received) -> tuple[DeviceRef, DeviceMessage] | Rejection | None:
        """The device and parsed message, or why it is rejected (None: not ours)."""
        where = parse_topic(self.root, item.topic)
        if where is None:
            return Rejection("bad_topic", "topic is outside the device layout")
        if where.channel is Channel.SET:
            return None  # the gateway's own commands to devices
        channel = where.channel
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

    def write(
        self,
        session: Session,
        items: list[Received],
        confirmed: list[tuple[int, str]],
        stale_before: datetime | None,
        now: datetime,
    ) -> BatchResult:
        """Write a batch; ``confirmed`` markers (acks the broker has processed)
        and markers older than ``stale_before`` are deleted in the same commit."""
        result = BatchResult()
        known = self._known_markers(session, items)
        events: list[dict[str, Any]] = []
        markers: dict[int, str] = {}
        rejected: list[dict[str, Any]] = []
        health: dict[int, dict[str, Any]] = {}
        zone_messages: list[ZoneMessage] = []
        calls: list[tuple[int, datetime]] = []
        for item in items:
            digest = item.digest
            if item.dup and known.get(item.packet_id) == digest:
                result.duplicates += 1
                continue
            outcome = self._classify(item)
            if outcome is None:
                result.ignored += 1
                continue
            if isinstance(outcome, Rejection):
                rejected.append(outcome.row(item))
                REJECTED.labels(outcome.reason).inc()
            else:
                device, msg = outcome
                events.append(
                    {
                        "contract_id": device.contract_id,
                        "home_id": device.home_id,
                        "device_id": device.id,
                        "event": msg.event,
                        "body": msg.body,
                        "received_at": item.received_at,
                    }
                )
                _health_row(device.id, msg, item.received_at, health.setdefault(device.id, {}))
                if msg.body.get("event") == "call" and device.kind is DeviceKind.INTERCOM:
                    calls.append((device.home_id, item.received_at))
                if device.kind in ZONE_KINDS:
                    zone = ZoneDevice(device.id, device.uid, device.name, device.kind)
                    zone_messages.append(ZoneMessage(device.home_id, zone, msg, item.received_at))
            markers[item.packet_id] = digest
        bulk.delete_markers(session, self.session_name, confirmed)
        if stale_before is not None:
            session.execute(
                delete(IngestMarker).where(
                    IngestMarker.session == self.session_name,
                    IngestMarker.written_at < stale_before,
                )
            )
        result.new_events = bulk.insert_events(session, events)
        if rejected:
            session.execute(insert(RejectedMessage), rejected)
        bulk.upsert(session, DeviceHealth, list(health.values()), ["device_id"])
        bulk.upsert_markers(session, self.session_name, markers, now)
        if self.security is not None:
            before, after = self.security.clip_window
            for home_id, at in calls:
                mark_clips(session, home_id, "intercom", at, before=before, after=after)
        if self.security is not None and zone_messages:
            # After the writes above: on SQLite the transaction then already
            # holds the write lock while the panels are read and updated.
            result.security = self.security.apply_messages(session, zone_messages, now)
        result.stored, result.rejected = len(events), len(rejected)
        MESSAGES.labels("stored").inc(result.stored)
        MESSAGES.labels("rejected").inc(result.rejected)
        MESSAGES.labels("duplicate").inc(result.duplicates)
        return result
