"""The ingest worker: a persistent MQTT v5 session whose messages are
acknowledged only after they are committed.

Exactly once, in short (docs/operators.md has the full argument):

- The session is persistent (clean start off, session expiry set), so a dead
  worker's messages wait for it in the broker. Several workers split the load
  through a shared subscription (``ingest_shared_subscription``); one worker
  uses a plain one, because Mosquitto before 2.0.12 (Debian 12 ships 2.0.11)
  does not restore shared subscriptions of offline sessions after a broker
  restart, and drops what is published until the worker is back.
- A message is acknowledged (PUBACK) only after the transaction that stores it
  commits. A crash in between makes the broker redeliver it, with the DUP flag
  and the same packet id, when the session reconnects.
- Each commit also writes a marker (session, packet id, digest of topic and
  payload). A DUP delivery that matches its marker is the same message:
  acknowledged, not stored again.
- Markers must not outlive their use, or a later message that reuses the
  packet id with identical content would be mistaken for a redelivery. After
  acknowledging a batch the worker sends an UNSUBSCRIBE "probe"; the broker
  handles a connection's packets in order, so its UNSUBACK proves the PUBACKs
  before it were processed and those markers are deleted in the next commit.
  At connect, the broker resends in-flight messages before it reads our first
  packet, so once the connect-time probe is answered every marker from before
  this connection is stale and is deleted too.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import Histogram
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from devices.topics import all_devices_filter, events_notice_topic
from gateway.broker.client import new_client
from gateway.db.engine import Database
from gateway.db.models import utcnow
from gateway.ingest.directory import DeviceDirectory
from gateway.ingest.store import BatchStore, Received
from gateway.security.panel import SecurityService

log = logging.getLogger(__name__)

SHARE_GROUP = "moydom-ingest"
BATCH_SIZE = Histogram(
    "moydom_ingest_batch_size", "Messages per ingest commit", buckets=(1, 10, 100, 500, 1000, 5000)
)


@dataclass(frozen=True)
class IngestConfig:
    host: str
    port: int
    username: str
    password: str
    root: str
    worker: str
    session_expiry_s: int = 7 * 24 * 3600
    receive_maximum: int = 2000
    batch_max: int = 1000
    linger_s: float = 0.02
    shared: bool = False

    @property
    def session_name(self) -> str:
        return f"moydom-ingest-{self.worker}"

    @property
    def subscription(self) -> str:
        plain = all_devices_filter(self.root)
        return f"$share/{SHARE_GROUP}/{plain}" if self.shared else plain

    @property
    def other_subscription(self) -> str:
        """The form not in use, dropped at connect so a switch cannot double-deliver."""
        plain = all_devices_filter(self.root)
        return plain if self.shared else f"$share/{SHARE_GROUP}/{plain}"


@dataclass(frozen=True)
class _ProbeAnswered:
    """Queued behind the messages that arrived before the probe's answer."""

    epoch: int
    acked: list[tuple[int, str]] = field(default_factory=list)
    connect_probe: bool = False
    connected_at: datetime | None = None


class IngestWorker:
    """Receive on the network thread, store and acknowledge on the writer thread."""

    def __init__(
        self, cfg: IngestConfig, db: Database, security: SecurityService | None = None
    ) -> None:
        self.cfg = cfg
        self.db = db
        self.store = BatchStore(cfg.session_name, DeviceDirectory(db), cfg.root, security)
        # Bounded: Mosquitto 2.0.11 sends far more than our Receive Maximum
        # (15,000 outstanding were seen for 2,000). A full inbox blocks paho's
        # network thread, and TCP back-pressure holds the rest in the broker.
        self._inbox: queue.Queue[Received | _ProbeAnswered] = queue.Queue(
            maxsize=cfg.receive_maximum
        )
        self._stop = threading.Event()
        self._epoch = 0
        self._connected_at: datetime | None = None
        self._probes: dict[int, _ProbeAnswered] = {}
        self._probe_lock = threading.Lock()
        self.ready = threading.Event()
        self.stored = 0
        self.duplicates = 0
        self._cleanup_retry: list[tuple[int, str]] = []
        self._cleanup_retried = False
        self._client = new_client(cfg.session_name, cfg.username, cfg.password, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_unsubscribe = self._on_unsubscribe
        self._client.on_disconnect = self._on_disconnect
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)

    # --- network thread -----------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        props.ReceiveMaximum = self.cfg.receive_maximum
        self._writer.start()
        self._client.connect_async(
            self.cfg.host, self.cfg.port, keepalive=30, clean_start=False, properties=props
        )
        self._client.loop_start()

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            log.error("ingest: broker refused the session: %s", reason)
            return
        self._epoch += 1
        self._connected_at = utcnow()
        client.unsubscribe(self.cfg.other_subscription)
        client.subscribe(self.cfg.subscription, qos=1)
        self._probe(
            _ProbeAnswered(self._epoch, connect_probe=True, connected_at=self._connected_at)
        )
        log.info(
            "ingest %s connected (session present: %s)",
            self.cfg.session_name,
            flags.session_present,
        )

    def _on_disconnect(self, *_args: Any) -> None:
        self.ready.clear()
        if not self._stop.is_set():
            log.warning("ingest %s disconnected; paho reconnects", self.cfg.session_name)

    def _probe(self, answer: _ProbeAnswered) -> None:
        with self._probe_lock:
            result, mid = self._client.unsubscribe(f"{self.cfg.root}/$probe")
            if result == mqtt.MQTT_ERR_SUCCESS and mid is not None:
                self._probes[mid] = answer

    def _on_unsubscribe(self, _c: Any, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        with self._probe_lock:
            answer = self._probes.pop(mid, None)
        if answer is not None:
            self._inbox.put(answer)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(
            Received(
                topic=msg.topic,
                payload=bytes(msg.payload),
                packet_id=msg.mid,
                dup=bool(msg.dup),
                epoch=self._epoch,
                received_at=utcnow(),
            )
        )

    # --- writer thread --------------------------------------------------------

    def _next_batch(self) -> list[Received | _ProbeAnswered]:
        """Whatever arrives within the linger time after the first message."""
        try:
            batch = [self._inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.cfg.linger_s
        while len(batch) < self.cfg.batch_max:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._inbox.get(timeout=remaining)
                    if remaining > 0
                    else self._inbox.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        confirmed: list[tuple[int, str]] = []
        stale_before: datetime | None = None
        while not self._stop.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            epoch = self._epoch
            # Messages of a connection that has since dropped were never
            # acknowledged: the broker sends them again (DUP) on this one.
            # Storing the old copies too could put a message and its
            # redelivery into one batch, before any marker exists.
            items = [b for b in batch if isinstance(b, Received) and b.epoch == epoch]
            for answer in (b for b in batch if isinstance(b, _ProbeAnswered)):
                confirmed.extend(answer.acked)
                if answer.connect_probe and answer.epoch == epoch:
                    stale_before = answer.connected_at
                    self.ready.set()
            try:
                committed = self._commit(items, confirmed, stale_before)
            except Exception:
                # A bug, not the database: keep the writer alive. The batch is
                # not acknowledged, so the broker redelivers it on reconnect.
                log.exception("ingest: unexpected error writing a batch")
                self._stop.wait(1.0)
                continue
            if not committed:
                return  # stopping
            confirmed, stale_before = [], None
            if self._cleanup_retry and not self._cleanup_retried:
                confirmed, self._cleanup_retried = list(self._cleanup_retry), True
            else:
                self._cleanup_retry, self._cleanup_retried = [], False
            BATCH_SIZE.observe(len(items))
            self.stored += len(items)
            self._acknowledge(items)

    def _database_down(self, exc: SQLAlchemyError) -> bool:
        """Is this the database's availability (wait) or the batch's content (split)?"""
        if isinstance(exc, OperationalError) and "locked" in str(exc):
            return True  # SQLite: another writer holds the lock
        try:
            with self.db.session() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return True
        return False

    def _commit(
        self, items: list[Received], confirmed: list[tuple[int, str]], stale_before: datetime | None
    ) -> bool:
        """Commit the batch, however long the database takes to come back.

        Nothing is acknowledged meanwhile, and the broker sends no more than
        the receive maximum unacknowledged, so waiting costs bounded memory.
        A batch the database refuses for its content (not its availability)
        is split, and the one message it refuses is stored aside. Returns
        False only when the worker is stopping.
        """
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with self.db.transaction() as session:
                    result = self.store.write(session, items, confirmed, stale_before, utcnow())
            except SQLAlchemyError as exc:
                if self._database_down(exc):
                    log.warning("ingest: database unavailable (%s); retry in %.1fs", exc, backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                if confirmed:
                    # Rule out the clean-up first, and try it once more with
                    # the next batch; what still fails is removed by the next
                    # connection's probe.
                    if not self._cleanup_retry:
                        self._cleanup_retry = list(confirmed)
                    return self._commit(items, [], stale_before)
                if len(items) <= 1:
                    return self._store_aside(items, exc)
                half = len(items) // 2
                return self._commit(items[:half], [], stale_before) and self._commit(
                    items[half:], [], None
                )
            self.duplicates += result.duplicates
            if result.duplicates:
                log.info("ingest: %d redelivered messages recognised", result.duplicates)
            if result.new_events or result.security.outbox:
                # Tell API processes what to stream and the alarms role what
                # to send; losing this notice loses nothing stored (clients
                # catch up with the cursor, the alarms role polls too).
                notice = json.dumps({"events": result.new_events, **result.security.notice()})
                self._client.publish(events_notice_topic(self.cfg.root), notice, qos=0)
            return True
        return False

    def _store_aside(self, items: list[Received], exc: SQLAlchemyError) -> bool:
        log.error("ingest: the database refused a message; storing it aside: %s", exc)
        detail = str(getattr(exc, "orig", None) or exc)[:500]
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with self.db.transaction() as session:
                    self.store.reject_all(session, items, detail)
                return True
            except SQLAlchemyError:
                log.exception("ingest: could not store aside either; retrying")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        return False

    def _acknowledge(self, items: list[Received]) -> None:
        epoch = self._epoch
        acked = []
        for item in items:
            # A packet id is only meaningful on the connection that sent it;
            # older ones come again as DUP and meet their marker.
            if item.epoch == epoch:
                self._client.ack(item.packet_id, 1)
                acked.append((item.packet_id, item.digest))
        if acked:
            self._probe(_ProbeAnswered(epoch, acked=acked))

    def stop(self) -> None:
        self._stop.set()
        self._writer.join(5)
        self._client.disconnect()
        self._client.loop_stop()
