"""The committer thread: each classified batch in one transaction, in order,
acknowledged only after it commits.

Nothing is acknowledged while the database is away, and the broker sends no
more than the Receive Maximum unacknowledged, so waiting costs bounded
memory. A batch the database refuses for its content (not its availability)
is split, and the one message it refuses is stored aside.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import Histogram
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.models import utcnow
from gateway.ingest.classify import Prepared, Received
from gateway.ingest.ledger import Cleanup, ProbeAnswered, RedeliveryLedger
from gateway.ingest.store import BatchStore
from gateway.notices import Notice, NoticePublisher

log = logging.getLogger(__name__)

BATCH_SIZE = Histogram(
    "moydom_ingest_batch_size", "Messages per ingest commit", buckets=(1, 10, 100, 500, 1000, 5000)
)


@dataclass(frozen=True)
class Job:
    """A batch for the committer: its messages, classified ahead if that worked,
    and the markers its commit deletes."""

    items: list[Received]
    prepared: Prepared | None
    cleanup: Cleanup


class Committer:
    """Commits the writer's jobs one at a time; after each commit, ``acknowledge``
    gets the PUBACKs to send and the probe to follow them."""

    def __init__(
        self,
        db: Database,
        store: BatchStore,
        ledger: RedeliveryLedger,
        *,
        notices: NoticePublisher,
        jobs: queue.Queue[Job],
        stop: threading.Event,
        acknowledge: Callable[[ProbeAnswered], None],
    ) -> None:
        self.db = db
        self.store = store
        self.ledger = ledger
        self._notices = notices
        self._jobs = jobs
        self._stop = stop
        self._acknowledge = acknowledge
        self._conn: Connection | None = None
        """The committer's database connection, kept between batches."""
        self.stored = 0
        self.duplicates = 0

    def run(self) -> None:
        """Commit the classified batches in order, acknowledge each after its commit."""
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            # What a failed batch was to delete goes with the next one.
            cleanup = self.ledger.to_delete(job.cleanup)
            items = job.items
            try:
                committed = self._commit(items, cleanup, job.prepared)
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
            self.ledger.committed()
            BATCH_SIZE.observe(len(items))
            self.stored += len(items)
            answer = self.ledger.acknowledgement(items)
            if answer is not None:
                self._acknowledge(answer)

    def close(self) -> None:
        """Drop the kept connection (only once the thread has ended)."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

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
        self, items: list[Received], cleanup: Cleanup, prepared: Prepared | None = None
    ) -> bool:
        """Commit the batch, however long the database takes to come back.
        Returns False only when the worker is stopping."""
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with self._transaction() as session:
                    result = self.store.write(session, items, cleanup, utcnow(), prepared=prepared)
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
                if cleanup.confirmed:
                    # Rule out the clean-up first (the ledger tries it once
                    # more with the next batch).
                    self.ledger.cleanup_refused(cleanup.confirmed)
                    return self._commit(items, Cleanup([], cleanup.stale_before), prepared)
                if len(items) <= 1:
                    return self._store_aside(items, exc)
                half = len(items) // 2
                return self._commit(items[:half], Cleanup([], cleanup.stale_before)) and (
                    self._commit(items[half:], Cleanup())
                )
            self.ledger.journalled(result.journal_seq)
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
