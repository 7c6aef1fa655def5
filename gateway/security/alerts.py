"""Subscriber alerts and the notifications each one fans out to, by the
contract's preferences per category (alarm, leak, trouble, security,
intercom, gate) and channel (app, email, sms)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from gateway.db.security_models import Alert, NotificationPrefs
from gateway.notices import Notice
from gateway.outbox.enqueue import Channel, enqueue
from gateway.security.home import HomeView

CATEGORIES: Final = ("alarm", "leak", "trouble", "security", "intercom", "gate")
CHANNELS: Final = ("app", "email", "sms")
DEFAULT_CHANNELS: Final[dict[str, list[str]]] = {
    "alarm": ["app", "email", "sms"],
    "leak": ["app", "email", "sms"],
    "trouble": ["app", "email"],
    "security": ["app"],
    "intercom": ["app"],
    "gate": ["app"],
}


def channels_for(prefs: NotificationPrefs | None, category: str) -> list[str]:
    if prefs is not None and category in prefs.channels:
        return prefs.channels[category]
    return DEFAULT_CHANNELS.get(category, ["app"])


class AlertWriter:
    def __init__(
        self,
        session: Session,
        home: HomeView,
        changes: Notice,
        now: datetime,
        transports: frozenset[str],
    ) -> None:
        """``transports``: the configured ones of ``email`` and ``sms``."""
        self.transports = transports
        self.session = session
        self.home = home
        self.changes = changes
        self.now = now
        self._prefs: NotificationPrefs | None = None
        self._prefs_loaded = False

    def _preferences(self) -> NotificationPrefs | None:
        if not self._prefs_loaded:
            self._prefs = self.session.get(NotificationPrefs, self.home.contract_id)
            self._prefs_loaded = True
        return self._prefs

    def add(
        self,
        category: str,
        kind: str,
        text: str,
        body: dict[str, Any],
        *,
        at: datetime,
        device_id: int | None = None,
    ) -> None:
        """Store the alert; queue its e-mail and SMS; mark it for the stream."""
        alert = Alert(
            contract_id=self.home.contract_id,
            home_id=self.home.home_id,
            device_id=device_id,
            category=category,
            kind=kind,
            text=text,
            body=body,
            at=at,
        )
        self.session.add(alert)
        self.session.flush()
        if self.tell(f"alert-{alert.id}", category, text, at):
            self.changes.alerts.append((alert.id, alert.contract_id))

    def tell(self, key: str, category: str, text: str, at: datetime) -> bool:
        """Queue ``text``'s e-mail and SMS by the contract's channels for
        ``category`` (outbox keys ``<key>-email``, ``<key>-sms``: deciding twice
        sends once); True if the app is one of its channels."""
        prefs = self._preferences()
        channels = [c for c in channels_for(prefs, category) if c == "app" or c in self.transports]
        subject = f"{text} — {self.home.address}"
        if "email" in channels and prefs is not None and prefs.email:
            message = {
                "to": prefs.email,
                "subject": subject,
                "body": f"{text}\n{at:%Y-%m-%d %H:%M:%S} UTC\n{self.home.address}\n",
            }
            enqueue(self.session, f"{key}-email", Channel.EMAIL, message, self.now)
            self.changes.outbox = True
        if "sms" in channels and prefs is not None and prefs.phone:
            sms = {"to": prefs.phone, "text": subject[:300]}
            enqueue(self.session, f"{key}-sms", Channel.SMS, sms, self.now)
            self.changes.outbox = True
        return "app" in channels
