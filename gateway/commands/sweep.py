"""The command sweep: a command no controller answered by its deadline (and
``command_expiry_grace_s``) becomes ``expired``. Runs next to the alarms
role, one per site (a second is safe: the UPDATE only matches a command
still ``sent``). It sleeps until the next deadline, wakes on the notices of
new commands, and polls every ``alarms_poll_s`` regardless."""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import timedelta

from gateway.broker.client import new_client
from gateway.broker.tls import client_tls
from gateway.commands.records import expire_due
from gateway.db.engine import Database
from gateway.db.models import utcnow
from gateway.notices import Notice, paho_send, publisher_for, subscriber_for
from gateway.settings import Settings

log = logging.getLogger(__name__)


class CommandSweep:
    def __init__(
        self, settings: Settings, db: Database, mqtt_password: str, transports: frozenset[str]
    ) -> None:
        """``transports``: the configured ones of ``email`` and ``sms`` (for
        the alert an expired command is)."""
        self.db = db
        self.transports = transports
        self.grace = timedelta(seconds=settings.command_expiry_grace_s)
        self.poll_s = settings.alarms_poll_s
        self._settings = settings
        self._client = new_client(
            f"moydom-commands-sweep-{secrets.token_hex(4)}",
            settings.mqtt_username,
            mqtt_password,
            tls=client_tls(settings),
        )
        root = settings.mqtt_topic_root
        self._notices = publisher_for(db, root, paho_send(self._client))
        self._heard = subscriber_for(db, root, self._client)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="command-sweep", daemon=True)

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
        if notice.commands:
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            sleep = self.poll_s
            try:
                with self.db.transaction() as session:
                    changes, next_at = expire_due(session, self.grace, utcnow(), self.transports)
                    if changes:
                        self._notices.within(session, changes)
                if next_at is not None:
                    sleep = min(sleep, max(0.02, (next_at - utcnow()).total_seconds()))
            except Exception:
                log.exception("command sweep: cannot expire commands; retrying")
            self._wake.wait(sleep)
