"""Live fan-out of stored events, alerts and dispatch cases to the WebSocket
subscribers of one API process.

Whoever commits (ingest workers, the alarms role, API processes) announces it
on ``<root>/_events`` (ids only). The hub listens there, loads the events and
alerts of contracts that have subscribers, and hands each subscriber its own
contract's rows — the contract id comes from the database row, never from the
notice's say-so alone, so a subscriber can only ever receive rows of its own
contract. Cases go to dispatchers' subscriptions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import secrets
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Row, Select, select

from devices.topics import events_notice_topic
from gateway.api.security_schemas import AlertOut, CaseOut
from gateway.api.shown import load_alerts, load_cases
from gateway.broker.client import new_client
from gateway.db.engine import Database
from gateway.db.models import Device, Event, Home
from gateway.security.effects import Changes

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 1000
DISPATCH = 0
"""The subscription key of dispatchers (no contract has id 0)."""


@dataclass(frozen=True)
class LiveEvent:
    """One event as the API shows it (see ``EventOut``)."""

    id: int
    contract_id: int
    device: str
    device_kind: str
    home: str
    event: str
    body: dict[str, Any]
    received_at: datetime


Live = LiveEvent | AlertOut | CaseOut


class Subscription:
    """A subscriber's queue; ``overflowed`` means it fell behind and must resync.
    ``contract_id`` :data:`DISPATCH` is a dispatcher's (cases of every contract)."""

    def __init__(self, contract_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.contract_id = contract_id
        self.loop = loop
        self.queue: asyncio.Queue[Live] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.overflowed = False

    def offer(self, event: Live) -> None:
        """Called in the event loop's thread."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True


def event_view() -> Select[Event, str, str, str]:
    """Events with their device's id and kind and their home's id, as shown."""
    return (
        select(Event, Device.uid, Device.kind, Home.uid)
        .join(Device, Device.id == Event.device_id)
        .join(Home, Home.id == Event.home_id)
    )


def shown(row: Row[Event, str, str, str]) -> LiveEvent:
    event, device_uid, kind, home_uid = row
    return LiveEvent(
        id=event.id,
        contract_id=event.contract_id,
        device=device_uid,
        device_kind=kind,
        home=home_uid,
        event=event.event,
        body=event.body,
        received_at=event.received_at,
    )


def load_events(db: Database, ids: list[int], contract_ids: set[int]) -> list[LiveEvent]:
    query = event_view().where(Event.id.in_(ids), Event.contract_id.in_(contract_ids))
    with db.session() as session:
        return [shown(row) for row in session.execute(query.order_by(Event.id))]


class EventHub:
    """One MQTT listener and one loader thread per API process."""

    def __init__(
        self,
        db: Database,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        root: str,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.db = db
        self._topic = events_notice_topic(root)
        self._subs: dict[int, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._notices: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._client = new_client(
            f"moydom-live-{secrets.token_hex(4)}", username, password, tls=tls
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._host, self._port = host, port
        self._loader = threading.Thread(target=self._load_loop, name="live-hub", daemon=True)

    def start(self) -> None:
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()
        self._loader.start()

    def stop(self) -> None:
        self._notices.put(None)
        self._client.disconnect()
        self._client.loop_stop()
        self._loader.join(5)

    def announce(self, changes: Changes) -> None:
        """Tell every API process (this one included) what the caller committed."""
        if changes.alerts or changes.cases or changes.outbox:
            self._client.publish(self._topic, json.dumps(changes.notice()), qos=0)

    def subscribe(self, contract_id: int) -> Subscription:
        sub = Subscription(contract_id, asyncio.get_running_loop())
        with self._lock:
            self._subs.setdefault(contract_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.contract_id, set())
            subs.discard(sub)
            if not subs:
                self._subs.pop(sub.contract_id, None)

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if not reason.is_failure:
            client.subscribe(self._topic, qos=0)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            notice = json.loads(msg.payload)
            if not isinstance(notice, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError):
            log.error("unreadable events notice")
            return
        self._notices.put(notice)

    def _load_loop(self) -> None:
        while (notice := self._notices.get()) is not None:
            try:
                self._deliver(notice)
            except Exception:
                log.exception("live hub: could not load what a notice announced")

    def _deliver(self, notice: dict[str, Any]) -> None:
        events: list[list[int]] = notice.get("events", [])
        alerts: list[list[int]] = notice.get("alerts", [])
        cases: list[int] = notice.get("cases", [])
        with self._lock:
            wanted = {c for _, c in events + alerts if c in self._subs}
            dispatch = bool(cases) and DISPATCH in self._subs
        found: list[tuple[int, Live]] = []
        if wanted:
            found += [
                (e.contract_id, e)
                for e in load_events(self.db, [i for i, c in events if c in wanted], wanted)
            ]
            with self.db.session() as session:
                found += load_alerts(session, [i for i, c in alerts if c in wanted], wanted)
        if dispatch:
            with self.db.session() as session:
                found += [(DISPATCH, case) for case in load_cases(session, cases)]
        for contract_id, item in found:
            with self._lock:
                targets = list(self._subs.get(contract_id, ()))
            for sub in targets:
                sub.loop.call_soon_threadsafe(sub.offer, item)
