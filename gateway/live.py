"""Live fan-out of stored events, alerts and dispatch cases to the WebSocket
subscribers of one API process.

Whoever commits (ingest workers, the alarms role, the recorder, API
processes) announces it with a :class:`~gateway.notices.Notice` (ids only).
The hub hears every notice, loads the events and
alerts of contracts that have subscribers, and hands each subscriber its own
contract's rows — the contract id comes from the database row, never from the
notice's say-so alone, so a subscriber can only ever receive rows of its own
contract. Cases go to dispatchers' subscriptions.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from gateway.broker.client import new_client
from gateway.db.engine import Database
from gateway.db.models import Device, Event, Home
from gateway.db.security_models import Alert, Case, CaseEntry, CaseStatus
from gateway.intercom.views import CallView, load_call_views
from gateway.notices import Notice, paho_send, publisher_for, subscriber_for
from gateway.security.views import (
    AlertView,
    CaseView,
    alert_of,
    alert_view,
    load_alert_views,
    load_case_views,
)

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


@dataclass(frozen=True)
class LiveCase:
    """A case as it is now; ``seq`` is its newest timeline entry's id, which
    grows with every change of any case (the dispatch stream's cursor)."""

    seq: int
    case: CaseView


Live = LiveEvent | AlertView | LiveCase | CallView


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


def live_cases(session: Session, ids: Iterable[int]) -> list[LiveCase]:
    """These cases as they are now, in the order of their latest change."""
    cases = load_case_views(session, ids)
    newest = (
        select(CaseEntry.case_id, func.max(CaseEntry.id))
        .where(CaseEntry.case_id.in_([c.id for c in cases]))
        .group_by(CaseEntry.case_id)
    )
    seqs = {case_id: seq for case_id, seq in session.execute(newest)}
    return sorted((LiveCase(seqs.get(c.id, 0), c) for c in cases), key=lambda c: c.seq)


# -- what a stream missed, read back from the database ----------------------
# So a lost notice, a dropped connection or an API restart loses nothing on
# screen; capped: a client away for longer resyncs over REST instead.

REPLAY_MAX = 1000
"""Rows of one kind replayed at most; more missed means "resync over REST"."""


class TooFarBehind(Exception):
    """More than :data:`REPLAY_MAX` rows of a kind were missed."""


T = TypeVar("T")


def _capped(rows: list[T]) -> list[T]:
    if len(rows) > REPLAY_MAX:
        raise TooFarBehind
    return rows


def events_after(session: Session, contract_id: int, after: int) -> list[LiveEvent]:
    query = event_view().where(Event.contract_id == contract_id, Event.id > after)
    rows = session.execute(query.order_by(Event.id).limit(REPLAY_MAX + 1))
    return _capped([shown(row) for row in rows])


def alerts_after(session: Session, contract_id: int, after: int) -> list[AlertView]:
    query = alert_view().where(Alert.contract_id == contract_id, Alert.id > after)
    rows = session.execute(query.order_by(Alert.id).limit(REPLAY_MAX + 1))
    return _capped([alert_of(row) for row in rows])


def newest_of_contract(session: Session, contract_id: int) -> tuple[int, int]:
    """(newest event id, newest alert id) of the contract, 0 for none."""
    event = session.scalar(select(func.max(Event.id)).where(Event.contract_id == contract_id))
    alert = session.scalar(select(func.max(Alert.id)).where(Alert.contract_id == contract_id))
    return event or 0, alert or 0


def cases_after(session: Session, after: int) -> list[LiveCase]:
    """Every case with a timeline entry after ``after``, as it is now."""
    ids = session.scalars(
        select(CaseEntry.case_id)
        .where(CaseEntry.id > after)
        .group_by(CaseEntry.case_id)
        .order_by(func.max(CaseEntry.id))
        .limit(REPLAY_MAX + 1)
    )
    return live_cases(session, _capped(list(ids)))


def open_cases(session: Session) -> list[LiveCase]:
    """Every case not closed, oldest first (the stream's opening snapshot)."""
    ids = session.scalars(select(Case.id).where(Case.status != CaseStatus.CLOSED))
    return sorted(live_cases(session, ids), key=lambda live: live.case.id)


def newest_case_entry(session: Session) -> int:
    return session.scalar(select(func.max(CaseEntry.id))) or 0


class EventHub:
    """One notice subscriber and one loader thread per API process."""

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
        self._subs: dict[int, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._notices: queue.Queue[Notice | None] = queue.Queue()
        self._client = new_client(
            f"moydom-live-{secrets.token_hex(4)}", username, password, tls=tls
        )
        self._publisher = publisher_for(db, root, paho_send(self._client))
        self._subscriber = subscriber_for(db, root, self._client)
        self._host, self._port = host, port
        self._loader = threading.Thread(target=self._load_loop, name="live-hub", daemon=True)
        self._access_watchers: list[Callable[[list[tuple[str, int]]], None]] = []

    def start(self) -> None:
        self._subscriber.start(self._notices.put)
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()
        self._loader.start()

    def stop(self) -> None:
        self._notices.put(None)
        self._subscriber.stop()
        self._client.disconnect()
        self._client.loop_stop()
        self._loader.join(5)

    def announce(self, notice: Notice) -> None:
        """Tell every API process (this one included) what the caller committed."""
        self._publisher.publish(notice)

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

    def on_access_ended(self, watcher: Callable[[list[tuple[str, int]]], None]) -> None:
        """Call ``watcher`` (on the hub's thread) with the logins of every
        notice's ``access_ended``, this process's own included."""
        self._access_watchers.append(watcher)

    def _load_loop(self) -> None:
        while (notice := self._notices.get()) is not None:
            try:
                self._deliver(notice)
            except Exception:
                log.exception("live hub: could not load what a notice announced")

    def _deliver(self, notice: Notice) -> None:
        if notice.access_ended:
            for watcher in self._access_watchers:
                watcher(notice.access_ended)
        events, alerts, cases = notice.events, notice.alerts, notice.cases
        calls = notice.calls
        with self._lock:
            wanted = {c for _, c in events + alerts + calls if c in self._subs}
            dispatch = bool(cases) and DISPATCH in self._subs
        found: list[tuple[int, Live]] = []
        if wanted:
            found += [
                (e.contract_id, e)
                for e in load_events(self.db, [i for i, c in events if c in wanted], wanted)
            ]
            with self.db.session() as session:
                views = load_alert_views(session, [i for i, c in alerts if c in wanted], wanted)
                found += [(view.contract_id, view) for view in views]
                rung = load_call_views(session, [i for i, c in calls if c in wanted], wanted)
                found += [(call.contract_id, call) for call in rung]
        if dispatch:
            with self.db.session() as session:
                found += [(DISPATCH, case) for case in live_cases(session, cases)]
        for contract_id, item in found:
            with self._lock:
                targets = list(self._subs.get(contract_id, ()))
            for sub in targets:
                sub.loop.call_soon_threadsafe(sub.offer, item)
