"""Notices over PostgreSQL's LISTEN/NOTIFY: ``pg_notify`` inside the
committing transaction, so PostgreSQL delivers it exactly when the rows are
visible and never for a rollback — no window in which a reader is told of
rows it cannot see yet, and no notice a broker outage can drop."""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gateway.notices.model import Notice
from gateway.notices.transport import Listener

log = logging.getLogger(__name__)

CHANNEL = "moydom_notices"
MOST_BYTES = 7900
"""NOTIFY's payload must be shorter than 8,000 bytes."""


class PostgresPublisher:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def within(self, session: Session, notice: Notice) -> None:
        for part in notice.split(MOST_BYTES) if notice else []:
            session.execute(select(func.pg_notify(CHANNEL, part.encode().decode())))

    def publish(self, notice: Notice) -> None:
        if notice:
            with Session(self._engine) as session, session.begin():
                self.within(session, notice)


class PostgresSubscriber:
    """One connection in autocommit mode, LISTENing on its own thread;
    reconnects (after a second) when the database goes away."""

    def __init__(self, engine: Engine) -> None:
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, listener: Listener) -> None:
        """Returns once LISTEN took effect (or after 5 s, still trying)."""
        self._thread = threading.Thread(
            target=self._run, args=(listener,), name="notices", daemon=True
        )
        self._thread.start()
        self._listening.wait(5)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self, listener: Listener) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    while not self._stopping.is_set():
                        for message in conn.notifies(timeout=0.5):
                            if (notice := Notice.decode(message.payload)) is not None:
                                listener(notice)
            except psycopg.Error as exc:
                log.warning("notices: lost the database (%s); listening again in 1 s", exc)
                self._stopping.wait(1.0)
