"""The alarms role: fires stored deadlines, re-sends unacknowledged cases,
and sends the outbox; and, once a minute, purges the terminated contracts
whose grace period is over (``gateway.db.purge``). One process per site runs
it (``moydom run`` includes it); a second one is safe — rows are claimed
under locks — but not faster.

It wakes on the commit notices ingest and the API publish, and polls every
``alarms_poll_s`` regardless, so a lost notice costs at most one poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from datetime import datetime, timedelta

from sqlalchemy import func, select

from gateway.broker.client import new_client
from gateway.broker.tls import client_tls
from gateway.db.engine import Database
from gateway.db.models import utcnow
from gateway.db.purge import MediaDirs, purge_due
from gateway.db.security_models import AlarmPanel
from gateway.dispatch.watch import StationWatch
from gateway.notices import Notice, paho_send, publisher_for, subscriber_for
from gateway.outbox.sender import OutboxSender
from gateway.outbox.transports import policies
from gateway.secrets_store import resolve_secrets
from gateway.security.panel import security_service
from gateway.security.resend import resend_due
from gateway.settings import Settings

log = logging.getLogger(__name__)


PURGE_EVERY_S = 60.0
"""How often terminated contracts are looked at; a purge is due days after."""


class AlarmsRole:
    def __init__(self, settings: Settings, db: Database, mqtt_password: str) -> None:
        self.settings = settings
        self.db = db
        self._purge_key = resolve_secrets(settings).secret_key
        self._media = MediaDirs(settings.archive_path().resolve(), settings.var_dir.resolve())
        self.security = security_service(settings)
        self._client = new_client(
            f"moydom-alarms-{secrets.token_hex(4)}",
            settings.mqtt_username,
            mqtt_password,
            tls=client_tls(settings),
        )
        root = settings.mqtt_topic_root
        self._notices = publisher_for(db, root, paho_send(self._client))
        self._heard = subscriber_for(db, root, self._client)
        watch = StationWatch(db, self._announce_cases)
        self.outbox = OutboxSender(
            db, policies(settings, self._client, watch), settings.alarms_poll_s
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="alarms", daemon=True)
        self.ready = threading.Event()

    def start(self) -> None:
        self._client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        self._heard.start(self._on_notice)
        self._client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)
        self._heard.stop()
        self._client.disconnect()
        self._client.loop_stop()

    def _announce_cases(self, cases: list[int]) -> None:
        """Cases whose timeline changed outside a step (the station watch): to
        the dispatch streams, through the same commit notice as everything else."""
        self._notices.publish(Notice(cases=cases))

    def _on_notice(self, notice: Notice) -> None:
        if self._loop is not None and (notice.outbox or notice.cases or notice.alerts):
            self._loop.call_soon_threadsafe(self._poke)

    def _poke(self) -> None:
        self.outbox.wake()
        if self._wake is not None:
            self._wake.set()

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        sender = asyncio.create_task(self.outbox.run())
        clock = asyncio.create_task(self._clock())
        purges = asyncio.create_task(self._purges())
        self.ready.set()
        await self._stopping.wait()
        for task in (sender, clock, purges):
            task.cancel()
        await asyncio.gather(sender, clock, purges, return_exceptions=True)

    async def _purges(self) -> None:
        """Terminated contracts past their grace period, purged in a thread of
        their own: a long purge never holds up an alarm's deadline."""
        while True:
            try:
                await asyncio.to_thread(purge_due, self.db, self._media, self._purge_key, utcnow())
            except Exception:
                log.exception("alarms: the purge sweep failed; retrying")
            await asyncio.sleep(PURGE_EVERY_S)

    async def _clock(self) -> None:
        """Deadlines and re-sends, then sleep until the next poll or a wake."""
        assert self._wake is not None
        while True:
            self._wake.clear()
            sleep = self.settings.alarms_poll_s
            try:
                changes, next_at = await asyncio.to_thread(self._due)
                if next_at is not None:
                    sleep = min(sleep, max(0.0, (next_at - utcnow()).total_seconds()))
            except Exception:
                log.exception("alarms: cannot process due deadlines; retrying")
                changes = Notice()
            if changes:
                self._poke()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), sleep)

    def _due(self) -> tuple[Notice, datetime | None]:
        """Fire what is due, announcing each transaction's changes with it;
        return what changed and the next deadline."""
        now = utcnow()
        changes = Notice()
        with self.db.transaction() as session:
            fired = self.security.tick_due(session, now)
            self._notices.within(session, fired)
        with self.db.transaction() as session:
            resent = resend_due(
                session, now, timedelta(seconds=self.settings.dispatch_ack_timeout_s)
            )
            self._notices.within(session, resent)
        changes.merge(fired).merge(resent)
        with self.db.session() as session:
            next_at = session.scalar(select(func.min(AlarmPanel.next_deadline)))
        return changes, next_at
