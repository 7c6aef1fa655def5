"""The call timer: a call nobody answered within ``call_ring_timeout_s`` is
missed, and a call that ended gets its clip marked (gateway.intercom.clips).
Runs next to the alarms role (one per site; a second is safe, rows are
claimed under locks). It sleeps until the oldest ringing call is due, wakes
on the notices of calls, and polls every ``alarms_poll_s`` regardless, so a
lost notice costs at most one poll."""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import timedelta

from gateway.broker.client import new_client
from gateway.broker.tls import client_tls
from gateway.db.engine import Database
from gateway.db.models import utcnow
from gateway.intercom.calls import miss_due
from gateway.intercom.clips import mark_call_clips
from gateway.notices import Notice, paho_send, publisher_for, subscriber_for
from gateway.settings import Settings

log = logging.getLogger(__name__)


class CallTimer:
    def __init__(
        self, settings: Settings, db: Database, mqtt_password: str, transports: frozenset[str]
    ) -> None:
        """``transports``: the configured ones of ``email`` and ``sms``."""
        self.db = db
        self.ring_timeout = timedelta(seconds=settings.call_ring_timeout_s)
        self.clip_after = timedelta(seconds=settings.call_clip_after_s)
        self.poll_s = settings.alarms_poll_s
        self.transports = transports
        self._settings = settings
        self._client = new_client(
            f"moydom-calls-{secrets.token_hex(4)}",
            settings.mqtt_username,
            mqtt_password,
            tls=client_tls(settings),
        )
        root = settings.mqtt_topic_root
        self._notices = publisher_for(db, root, paho_send(self._client))
        self._heard = subscriber_for(db, root, self._client)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="call-timer", daemon=True)

    def start(self) -> None:
        self._client.connect_async(self._settings.mqtt_host, self._settings.mqtt_port, keepalive=30)
        self._heard.start(self._on_notice)
        self._client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)
        self._heard.stop()
        self._client.disconnect()
        self._client.loop_stop()

    def _on_notice(self, notice: Notice) -> None:
        if notice.calls:
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            sleep = self.poll_s
            try:
                now = utcnow()
                with self.db.transaction() as session:
                    changes, next_at = miss_due(session, self.ring_timeout, self.transports, now)
                    changes.merge(mark_call_clips(session, self.clip_after, now))
                    if changes:
                        self._notices.within(session, changes)
                if next_at is not None:
                    sleep = min(sleep, max(0.05, (next_at - utcnow()).total_seconds()))
            except Exception:
                log.exception("call timer: cannot mark missed calls; retrying")
            self._wake.wait(sleep)
