"""The ingest worker: a persistent MQTT v5 session whose messages are
acknowledged only after they are committed.

Exactly once, in short (docs/ingest.md has the full argument):

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
  The broker sends what earlier connections left unacknowledged (DUP) ahead of
  any first delivery at QoS 1, so the batch holding a connection's first
  fresh QoS 1 delivery also deletes every marker from before the connection.
  (Not the connect-time probe's answer: after a broker restart Mosquitto holds
  restored in-flight messages back to our Receive Maximum and sends the rest
  after it.)

The rules live in one class, :class:`gateway.ingest.ledger.RedeliveryLedger`.
Threads: the network thread (``IngestLink``) reads and queues messages
(gateway.ingest.inbox); the writer thread forms batches and classifies them
(gateway.ingest.classify); the committer thread (gateway.ingest.committer)
writes each batch in one transaction (gateway.ingest.store) and then
acknowledges it, while the writer classifies the next.
"""

from __future__ import annotations

import gc
import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from devices.topics import all_devices_filter, ingest_watermark_topic
from gateway.db.engine import Database
from gateway.db.models import utcnow
from gateway.ingest.classify import Received
from gateway.ingest.committer import Committer, Job
from gateway.ingest.directory import DeviceDirectory
from gateway.ingest.inbox import Inbox
from gateway.ingest.ledger import ProbeAnswered, RedeliveryLedger
from gateway.ingest.mqtt import Incoming, IngestLink, LinkConfig
from gateway.ingest.states import StateCache
from gateway.ingest.store import BatchStore
from gateway.notices import publisher_for
from gateway.security.panel import SecurityService

__all__ = ["Inbox", "IngestConfig", "IngestWorker"]

log = logging.getLogger(__name__)

SHARE_GROUP = "moydom-ingest"


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
    tls: ssl.SSLContext | None = None

    @property
    def session_name(self) -> str:
        return f"moydom-ingest-{self.worker}"

    @property
    def subscription(self) -> str:
        plain = all_devices_filter(self.root)
        return f"$share/{SHARE_GROUP}/{plain}" if self.shared else plain

    @property
    def watermark_topic(self) -> str:
        return ingest_watermark_topic(self.root, self.session_name)

    @property
    def other_subscription(self) -> str:
        """The form not in use, dropped at connect so a switch cannot double-deliver."""
        plain = all_devices_filter(self.root)
        return plain if self.shared else f"$share/{SHARE_GROUP}/{plain}"


_frozen = threading.Lock()


def _freeze_startup_objects() -> None:
    """Once per process: move what it holds by now out of the collector's sight.

    Modules, ORM mappers, schemas and the configuration live as long as the
    process. Every full collection walked them again: with ingest's
    allocation rate that was four collections of some 200,000 objects,
    0.15 s each, per 50,000 messages, about 12 µs per message
    (bench/ingest). Garbage is collected first, so only live objects are
    frozen; only the first worker of a process does it.
    """
    if _frozen.acquire(blocking=False):
        gc.collect()
        gc.freeze()


def _let_others_run() -> None:
    """Release the GIL for a moment.

    The writer thread classifies batches (pure CPU) while the committer
    thread waits for the database. Each answer from the database wakes the
    committer, which then needs the GIL; a CPU-bound thread would keep it
    for up to the interpreter's switch interval (5 ms), several times per
    batch.
    """
    time.sleep(0)


class IngestWorker:
    """Receive on the network thread, classify on the writer thread, store and
    acknowledge on the committer thread; the ledger keeps their exactly-once state."""

    def __init__(
        self, cfg: IngestConfig, db: Database, security: SecurityService | None = None
    ) -> None:
        self.cfg = cfg
        self.db = db
        self.store = BatchStore(
            cfg.session_name,
            DeviceDirectory(db),
            cfg.root,
            security,
            reported=StateCache(db),
            exclusive=not cfg.shared,
            dialect=db.engine.dialect.name,
        )
        self.ledger = RedeliveryLedger(cfg.session_name)
        # Bounded: Mosquitto 2.0.11 sends far more than our Receive Maximum
        # (15,000 outstanding were seen for 2,000). A full inbox holds back
        # the network thread, and TCP back-pressure holds the rest in the broker.
        self._inbox = Inbox(cfg.receive_maximum)
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._link = IngestLink(
            LinkConfig(
                host=cfg.host,
                port=cfg.port,
                client_id=cfg.session_name,
                username=cfg.username,
                password=cfg.password,
                session_expiry_s=cfg.session_expiry_s,
                receive_maximum=cfg.receive_maximum,
                tls=cfg.tls,
            ),
            on_connect=self._on_connect,
            on_messages=self._on_messages,
            on_unsuback=self._on_unsuback,
            on_disconnect=self._on_disconnect,
        )
        # One classified batch may wait while the one before it is committed.
        self._jobs: queue.Queue[Job] = queue.Queue(maxsize=1)
        self._committing = Committer(
            db,
            self.store,
            self.ledger,
            notices=publisher_for(db, cfg.root, self._link.publish),
            jobs=self._jobs,
            stop=self._stop,
            acknowledge=self._acknowledge,
        )
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._committer = threading.Thread(
            target=self._committing.run, name="ingest-committer", daemon=True
        )

    @property
    def stored(self) -> int:
        return self._committing.stored

    @property
    def duplicates(self) -> int:
        return self._committing.duplicates

    @property
    def _epoch(self) -> int:
        """The current connection's number (tests/test_service_account.py reads it)."""
        return self.ledger.epoch

    def start(self) -> None:
        _freeze_startup_objects()
        self._writer.start()
        self._committer.start()
        self._link.start()

    # --- network thread -------------------------------------------------------

    def _on_connect(self, epoch: int, session_present: bool) -> None:
        connect_probe = self.ledger.connected(epoch, utcnow())
        self._link.unsubscribe(epoch, self.cfg.other_subscription)
        self._link.subscribe(epoch, self.cfg.subscription, qos=1)
        # At QoS 0 the retained watermark is not held back behind the queue,
        # and arrives before the probe's answer.
        self._link.subscribe(epoch, self.cfg.watermark_topic, qos=0)
        self._probe(connect_probe)
        log.info(
            "ingest %s connected (session present: %s)", self.cfg.session_name, session_present
        )

    def _on_disconnect(self, reason: str) -> None:
        self.ready.clear()
        if not self._stop.is_set():
            log.warning("ingest %s disconnected (%s); reconnecting", self.cfg.session_name, reason)

    def _probe(self, answer: ProbeAnswered) -> None:
        """An UNSUBSCRIBE whose UNSUBACK proves the broker processed what was sent
        before it; registered before it goes out, so its answer cannot come first."""
        mid = self._link.new_packet_id()
        self.ledger.probe_sent(mid, answer)
        if self._link.unsubscribe(answer.epoch, f"{self.cfg.root}/$probe", mid) is None:
            self.ledger.probe_lost(mid)

    def _on_unsuback(self, mid: int) -> None:
        answer = self.ledger.probe_answered(mid)
        if answer is not None:
            self._inbox.put(answer)

    def _on_messages(self, epoch: int, messages: list[Incoming]) -> None:
        # One time of receipt for the messages of one read.
        at = utcnow()
        watermark = self.cfg.watermark_topic
        items = []
        for topic, payload, packet_id, dup in messages:
            if topic == watermark:
                self.ledger.watermarks.found(epoch, payload)
            else:
                items.append(Received(topic, payload, packet_id, dup, epoch=epoch, received_at=at))
        self._inbox.put_many(items, self._stop, self._link.ping_if_due)

    # --- writer thread --------------------------------------------------------

    def _write_loop(self) -> None:
        """Form batches and classify them; the committer thread writes them.

        Classifying (parsing, validating, building the statements'
        parameters) is CPU in this process, committing is mostly waiting for
        the database: batch N+1 is classified while batch N is committed.
        The committer writes the batches in order, one at a time.
        """
        ledger = self.ledger
        while not self._stop.is_set():
            batch = self._inbox.take(self.cfg.batch_max, 0.2, self.cfg.linger_s)
            if not batch:
                continue
            intake = ledger.intake(batch)
            for seq in intake.watermarks:
                self._publish_watermark(seq)
            items = intake.items
            if intake.start is not None:
                started = self._start(intake.start)
                if started is None:
                    continue  # stopping
                items = started
            elif intake.held:
                continue  # until the connection's watermark is known
            recognised = ledger.mark(items)
            if recognised is not None:
                log.warning(
                    "ingest %s: %d messages the broker or devices sent again recognised",
                    self.cfg.session_name,
                    recognised,
                )
            try:
                prepared = self.store.prepare(items, pause=_let_others_run)
            except Exception:
                log.exception("ingest: unexpected error classifying a batch")
                prepared = None  # the committer classifies it again, and logs
            job = Job(items, prepared, ledger.cleanup())
            while not self._stop.is_set():
                try:
                    self._jobs.put(job, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def _start(self, epoch: int) -> list[Received] | None:
        """Take connection ``epoch``'s deliveries from now on, knowing what it
        will replay: read once the committer has nothing in hand, so the
        journal is complete. The deliveries held until now; None if stopping."""
        with self._jobs.all_tasks_done:
            while self._jobs.unfinished_tasks and not self._stop.is_set():
                self._jobs.all_tasks_done.wait(0.2)
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with self.db.session() as session:
                    replay = self.ledger.watermarks.replay_for(epoch, session)
            except SQLAlchemyError as exc:
                log.warning("ingest: database unavailable (%s); retry in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            held = self.ledger.start(epoch, replay)
            self.ready.set()
            return held
        return None

    def _publish_watermark(self, seq: int) -> None:
        """Retained, after the broker confirmed the PUBACKs up to batch ``seq``."""
        if self._link.publish(self.cfg.watermark_topic, str(seq).encode(), retain=True):
            self.ledger.watermarks.published = seq

    # --- committer thread -----------------------------------------------------

    def _acknowledge(self, answer: ProbeAnswered) -> None:
        # The link drops the PUBACKs if that connection ended meanwhile; its
        # messages come again as DUP and meet their markers.
        if self._link.ack(answer.epoch, [packet_id for packet_id, _ in answer.acked]):
            self._probe(answer)

    def stop(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + 5
        for thread in (self._writer, self._committer):
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._link.stop()
        if not self._committer.is_alive():
            self._committing.close()
