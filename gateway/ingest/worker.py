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

Threads: the network thread (``IngestLink``) reads and queues messages; the
writer thread forms batches and classifies them; the committer thread writes
each batch in one transaction and then acknowledges it, while the writer
classifies the next.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Histogram
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from devices.topics import all_devices_filter, ingest_watermark_topic
from gateway.db.engine import Database
from gateway.db.models import utcnow
from gateway.ingest.directory import DeviceDirectory
from gateway.ingest.mqtt import Incoming, IngestLink, LinkConfig
from gateway.ingest.replay import Replay, Watermarks, entry
from gateway.ingest.states import StateCache
from gateway.ingest.store import BatchStore, Prepared, Received
from gateway.notices import Notice, publisher_for
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


@dataclass(frozen=True)
class _ProbeAnswered:
    """Queued behind the messages that arrived before the probe's answer."""

    epoch: int
    acked: list[tuple[int, str]] = field(default_factory=list)
    connect_probe: bool = False
    seq: int | None = None
    """The journal number of the newest batch among ``acked``."""


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


@dataclass(frozen=True)
class _Job:
    """A batch for the committer: its messages, classified ahead if that worked,
    and the markers its commit deletes."""

    items: list[Received]
    prepared: Prepared | None
    confirmed: list[tuple[int, str]]
    stale_before: datetime | None


class Inbox:
    """What the network thread received and the writer has not taken yet.

    Bounded by message count: the network thread puts the messages of one
    read at once, after waiting while ``maxsize`` or more are waiting (so it
    holds at most one read more). Probe answers are never held back.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[Received | _ProbeAnswered] = deque()
        self._cond = threading.Condition()

    def put_many(
        self, items: list[Received], stop: threading.Event, idle: Callable[[], None]
    ) -> bool:
        """Wait for room, then queue ``items``; ``idle`` runs every second of
        waiting. False (nothing queued) if ``stop`` is set meanwhile."""
        with self._cond:
            while len(self._items) >= self.maxsize:
                if stop.is_set():
                    return False
                if not self._cond.wait(1.0):
                    idle()
            self._items.extend(items)
            self._cond.notify_all()
        return True

    def put(self, item: _ProbeAnswered) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def take(self, most: int, first_wait: float, linger: float) -> list[Received | _ProbeAnswered]:
        """Whatever arrives within ``linger`` after the first item (waited for up
        to ``first_wait``), at most ``most``."""
        items = self._items
        with self._cond:
            if not items and not self._cond.wait(first_wait) and not items:
                return []
            deadline = time.monotonic() + linger
            batch: list[Received | _ProbeAnswered] = []
            while True:
                take = min(len(items), most - len(batch))
                batch.extend(items.popleft() for _ in range(take))
                if len(batch) >= most:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._cond.notify_all()  # room for the network thread
        return batch


class IngestWorker:
    """Receive on the network thread, classify on the writer thread, store and
    acknowledge on the committer thread."""

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
        # Bounded: Mosquitto 2.0.11 sends far more than our Receive Maximum
        # (15,000 outstanding were seen for 2,000). A full inbox holds back
        # the network thread, and TCP back-pressure holds the rest in the broker.
        self._inbox = Inbox(cfg.receive_maximum)
        self._stop = threading.Event()
        self._epoch = 0
        self._connected: tuple[int, datetime] = (0, utcnow())
        """(epoch, when that connection began), replaced as one."""
        self._fresh_epoch = 0
        """The last connection on which a first delivery (QoS 1, not DUP) was seen."""
        self._watermarks = Watermarks(cfg.session_name)
        self._started = 0
        """The connection whose deliveries the writer takes: its connect probe
        was answered. Until then they are held (a replay is decided first)."""
        self._held: list[Received] = []
        self._replay: Replay | None = None
        self._journal_seq: int | None = None
        """The committer's newest journal number, for the next probe."""
        self._probes: dict[int, _ProbeAnswered] = {}
        self._probe_lock = threading.Lock()
        self.ready = threading.Event()
        self.stored = 0
        self.duplicates = 0
        self._conn: Connection | None = None
        """The committer's database connection, kept between batches."""
        self._cleanup_retry: list[tuple[int, str]] = []
        self._cleanup_retried = False
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
        self._notices = publisher_for(db, cfg.root, self._link.publish)
        # One classified batch may wait while the one before it is committed.
        self._jobs: queue.Queue[_Job] = queue.Queue(maxsize=1)
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._committer = threading.Thread(
            target=self._commit_loop, name="ingest-committer", daemon=True
        )

    # --- network thread -----------------------------------------------------

    def start(self) -> None:
        _freeze_startup_objects()
        self._writer.start()
        self._committer.start()
        self._link.start()

    def _on_connect(self, epoch: int, session_present: bool) -> None:
        self._connected = (epoch, utcnow())
        self._epoch = epoch
        with self._probe_lock:
            self._probes.clear()  # an older connection's probes are never answered
        self._link.unsubscribe(epoch, self.cfg.other_subscription)
        self._link.subscribe(epoch, self.cfg.subscription, qos=1)
        # At QoS 0 the retained watermark is not held back behind the queue,
        # and arrives before the probe's answer.
        self._link.subscribe(epoch, self.cfg.watermark_topic, qos=0)
        self._probe(_ProbeAnswered(epoch, connect_probe=True))
        log.info(
            "ingest %s connected (session present: %s)", self.cfg.session_name, session_present
        )

    def _on_disconnect(self, reason: str) -> None:
        self.ready.clear()
        if not self._stop.is_set():
            log.warning("ingest %s disconnected (%s); reconnecting", self.cfg.session_name, reason)

    def _probe(self, answer: _ProbeAnswered) -> None:
        # The id is registered before the UNSUBSCRIBE goes out, so its answer
        # cannot arrive first; the lock is not held across the send, which
        # may block while the reader thread (which takes it) is busy.
        with self._probe_lock:
            mid = self._link.new_packet_id()
            self._probes[mid] = answer
        if self._link.unsubscribe(answer.epoch, f"{self.cfg.root}/$probe", mid) is None:
            with self._probe_lock:
                self._probes.pop(mid, None)

    def _on_unsuback(self, mid: int) -> None:
        with self._probe_lock:
            answer = self._probes.pop(mid, None)
        if answer is not None:
            self._inbox.put(answer)

    def _on_messages(self, epoch: int, messages: list[Incoming]) -> None:
        # One time of receipt for the messages of one read.
        at = utcnow()
        watermark = self.cfg.watermark_topic
        items = []
        for topic, payload, packet_id, dup in messages:
            if topic == watermark:
                self._watermarks.found(epoch, payload)
            else:
                items.append(Received(topic, payload, packet_id, dup, epoch=epoch, received_at=at))
        self._inbox.put_many(items, self._stop, self._link.ping_if_due)

    # --- writer thread --------------------------------------------------------

    def _next_batch(self) -> list[Received | _ProbeAnswered]:
        """Whatever arrives within the linger time after the first message."""
        return self._inbox.take(self.cfg.batch_max, 0.2, self.cfg.linger_s)

    def _write_loop(self) -> None:
        """Form batches and classify them; the committer thread writes them.

        Classifying (parsing, validating, building the statements'
        parameters) is CPU in this process, committing is mostly waiting for
        the database: batch N+1 is classified while batch N is committed.
        The committer writes the batches in order, one at a time.
        """
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
            answered = False
            for answer in (b for b in batch if isinstance(b, _ProbeAnswered)):
                confirmed.extend(answer.acked)
                if answer.epoch == epoch and answer.seq is not None:
                    self._publish_watermark(answer.seq)
                answered |= answer.connect_probe and answer.epoch == epoch
            if self._started != epoch:
                # Hold the connection's deliveries until its watermark is known.
                self._held = [i for i in self._held if i.epoch == epoch] + items
                if not answered or not self._start(epoch):
                    continue
                items, self._held = self._held, []
            self._mark_replays(items)
            if self._fresh_epoch != epoch and any(i.packet_id and not i.dup for i in items):
                # The broker sends what an earlier connection left unacknowledged
                # (DUP) ahead of any first delivery at QoS 1, also those it
                # holds back for our Receive Maximum: from here on no
                # redelivery can come that a marker of an earlier connection
                # would still have to catch. This batch checks its DUPs
                # first, then deletes those markers in the same commit.
                self._fresh_epoch = epoch
                connected_epoch, connected_at = self._connected
                if connected_epoch == epoch:
                    stale_before = connected_at
            try:
                prepared = self.store.prepare(items, pause=_let_others_run)
            except Exception:
                log.exception("ingest: unexpected error classifying a batch")
                prepared = None  # the committer classifies it again, and logs
            job = _Job(items, prepared, confirmed, stale_before)
            while not self._stop.is_set():
                try:
                    self._jobs.put(job, timeout=0.2)
                    break
                except queue.Full:
                    continue
            confirmed, stale_before = [], None

    def _start(self, epoch: int) -> bool:
        """Take connection ``epoch``'s deliveries from now on, knowing what it
        will replay: read once the committer has nothing in hand, so the
        journal is complete. False if stopping."""
        with self._jobs.all_tasks_done:
            while self._jobs.unfinished_tasks and not self._stop.is_set():
                self._jobs.all_tasks_done.wait(0.2)
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with self.db.session() as session:
                    self._replay = self._watermarks.replay_for(epoch, session)
            except SQLAlchemyError as exc:
                log.warning("ingest: database unavailable (%s); retry in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self._started = epoch
            self.ready.set()
            return True
        return False

    def _mark_replays(self, items: list[Received]) -> None:
        """Mark the copies a restored broker sends again (gateway.ingest.replay)."""
        replay = self._replay
        if replay is None:
            return
        marks = replay.mark([entry(i.topic, i.digest) if i.packet_id else None for i in items])
        for item, copy in zip(items, marks, strict=True):
            item.replayed = copy
        if replay.done:
            self._replay = None
            log.warning(
                "ingest %s: %d messages the broker or devices sent again recognised",
                self.cfg.session_name,
                replay.recognised,
            )

    def _publish_watermark(self, seq: int) -> None:
        """Retained, after the broker confirmed the PUBACKs up to batch ``seq``."""
        if self._link.publish(self.cfg.watermark_topic, str(seq).encode(), retain=True):
            self._watermarks.published = seq

    def _commit_loop(self) -> None:
        """Commit the classified batches in order, acknowledge each after its commit."""
        confirmed: list[tuple[int, str]] = []
        stale_before: datetime | None = None
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            # What a failed batch was to delete goes with the next one.
            confirmed += job.confirmed
            stale_before = max(
                (t for t in (stale_before, job.stale_before) if t is not None), default=None
            )
            items = job.items
            try:
                committed = self._commit(items, confirmed, stale_before, job.prepared)
            except Exception:
                # A bug, not the database: keep the writer alive. The batch is
                # not acknowledged, so the broker redelivers it on reconnect.
                log.exception("ingest: unexpected error writing a batch")
                self.store.reported.forget()
                self._stop.wait(1.0)
                self._jobs.task_done()
                continue
            self._jobs.task_done()
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
        self,
        items: list[Received],
        confirmed: list[tuple[int, str]],
        stale_before: datetime | None,
        prepared: Prepared | None = None,
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
                with self._transaction() as session:
                    result = self.store.write(
                        session, items, confirmed, stale_before, utcnow(), prepared=prepared
                    )
                    if result.new_events or result.security.outbox:
                        # Tell API processes what to stream and the alarms role
                        # what to send, once this commits.
                        notice = Notice(events=result.new_events).merge(result.security)
                        self._notices.within(session, notice)
            except SQLAlchemyError as exc:
                self.store.reported.forget()
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
                    return self._commit(items, [], stale_before, prepared)
                if len(items) <= 1:
                    return self._store_aside(items, exc)
                half = len(items) // 2
                return self._commit(items[:half], [], stale_before) and self._commit(
                    items[half:], [], None
                )
            self._journal_seq = result.journal_seq or self._journal_seq
            self.duplicates += result.duplicates
            if result.duplicates:
                log.info("ingest: %d redelivered messages recognised", result.duplicates)
            return True
        return False

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """The committer's transaction, on a connection it keeps between batches
        (no pool checkout and pre-ping round trip per batch), dropped on any error.

        On SQLite it takes the write lock first: the batch reads what it then
        writes (device states, panels), and pysqlite would otherwise begin
        the transaction only at the first write, after another worker's commit
        could have changed what was read."""
        if self._conn is None:
            self._conn = self.db.engine.connect()
        try:
            with Session(bind=self._conn, expire_on_commit=False) as session, session.begin():
                if self.db.is_sqlite:
                    session.execute(text("BEGIN IMMEDIATE"))
                yield session
        except BaseException:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                conn.close()
            raise

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
        # A packet id is only meaningful on the connection that sent it;
        # older ones come again as DUP and meet their marker. The link drops
        # the PUBACKs if that connection ended meanwhile. QoS 0 (packet id 0)
        # is not acknowledged.
        epoch = self._epoch
        acked = [(i.packet_id, i.digest) for i in items if i.epoch == epoch and i.packet_id]
        if acked and self._link.ack(epoch, [packet_id for packet_id, _ in acked]):
            self._probe(_ProbeAnswered(epoch, acked=acked, seq=self._journal_seq))

    def stop(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + 5
        for thread in (self._writer, self._committer):
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._link.stop()
        if self._conn is not None and not self._committer.is_alive():
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
