"""Subscriber alerts and the notifications each one fans out to, by the
contract's preferences per category (alarm, leak, trouble, security,
intercom, gate) and channel (app, email, sms, push). E-mail, SMS and push
say it in Russian (``gateway.notify.texts``); push goes to every browser the
owner — or a member allowed in the home — subscribed, one outbox row each."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from gateway.db.security_models import Alert, NotificationPrefs
from gateway.notices import Notice
from gateway.notify import subscriptions, texts
from gateway.outbox.enqueue import Channel, enqueue
from gateway.security.home import HomeView

CATEGORIES: Final = ("alarm", "leak", "trouble", "security", "intercom", "gate")
CHANNELS: Final = ("app", "email", "sms", "push")
DEFAULT_CHANNELS: Final[dict[str, list[str]]] = {
    "alarm": ["app", "email", "sms", "push"],
    "leak": ["app", "email", "sms", "push"],
    "trouble": ["app", "email"],
    "security": ["app"],
    "intercom": ["app", "push"],
    "gate": ["app", "push"],
}
ALWAYS: Final = frozenset({"app", "push"})
"""Channels that need no transport configured (push keys are the gateway's own)."""
PUSH_TTL: Final[dict[str, timedelta]] = {
    "alarm": timedelta(hours=6),
    "leak": timedelta(hours=6),
    "gate": timedelta(minutes=10),
}
"""How long an undelivered push stays worth showing; others an hour. A call's
push lives only while the call rings (the outbox transport checks)."""
CALL_OVER: Final[dict[str, str]] = {
    "answered": "Вызов домофона принят",
    "declined": "Вызов домофона отклонён",
    "ended": "Вызов домофона завершён",
}
_RING_KEY = re.compile(r"call-(\d+)-ring")
_TOPIC = re.compile(r"[^A-Za-z0-9_-]")


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
        """Store the alert; queue its e-mail, SMS and pushes; mark it for the stream."""
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
        zone = texts.home_zone(self.session, self.home.home_id)
        title = texts.title(category, kind, text, body, zone=zone, zone_name=self._zone_name)
        push: dict[str, Any] = {"kind": _push_kind(category, kind), "alert": alert.id}
        if category == "intercom" and isinstance(body.get("call"), int):
            push["call"] = body["call"]  # a missed call's push replaces its ringing one
        if self._fan_out(f"alert-{alert.id}", category, title, at, push):
            self.changes.alerts.append((alert.id, alert.contract_id))

    def tell(self, key: str, category: str, text: str, at: datetime) -> bool:
        """Queue ``text`` (Russian) by the contract's channels for ``category``
        (outbox keys ``<key>-email``, ``<key>-sms``, ``<key>-push-<subscription>``:
        deciding twice sends once); True if the app is one of its channels.
        ``call-<id>-ring`` is a ringing call: its push lives while it rings."""
        ring = _RING_KEY.fullmatch(key)
        push: dict[str, Any] = (
            {"kind": "call", "call": int(ring.group(1))} if ring else {"kind": category}
        )
        return self._fan_out(key, category, text, at, push, ringing=ring is not None)

    def call_over(self, call_id: int, state: str, at: datetime) -> None:
        """A call stopped ringing (``answered``, ``declined``, ``ended``): each
        browser its ringing push reached gets a quiet one with the same topic,
        which replaces that notification (or, still queued at the push
        service, the undelivered ring). Push only; the transport sends it only
        where the ring was sent (outbox key ``call-<id>-ring-push-<sub>``)."""
        if "push" not in channels_for(self._preferences(), "intercom"):
            return
        targets = subscriptions.recipients(self.session, self.home.contract_id, self.home.home_id)
        topic = f"call-{call_id}"
        message = {
            "kind": "call_end",
            "call": call_id,
            "title": CALL_OVER.get(state, CALL_OVER["ended"]),
            "body": self.home.address,
            "url": "/app/history",
            "home": self.home.uid,
            "topic": topic,
        }
        for target in targets:
            payload = {
                "message": message,
                "topic": topic,
                "urgency": "high",
                "ringing_call": None,
                "ended_call": call_id,
                "after": f"call-{call_id}-ring-push-{target.id}",
                "expires_at": (at + timedelta(minutes=10)).isoformat(),
                "subscription": target.id,
            }
            key = f"call-{call_id}-over-push-{target.id}"
            enqueue(self.session, key, Channel.PUSH, payload, self.now)
            self.changes.outbox = True

    def _zone_name(self, uid: str | None) -> str | None:
        device = self.home.device(uid)
        return device.name if device is not None else None

    def _fan_out(
        self,
        key: str,
        category: str,
        title: str,
        at: datetime,
        push: dict[str, Any],
        *,
        ringing: bool = False,
    ) -> bool:
        prefs = self._preferences()
        channels = [c for c in channels_for(prefs, category) if c in ALWAYS or c in self.transports]
        zone = texts.home_zone(self.session, self.home.home_id)
        address = self.home.address
        if "email" in channels and prefs is not None and prefs.email:
            message = {
                "to": prefs.email,
                "subject": texts.subject(title, address),
                "body": texts.email_body(title, address, at, zone),
            }
            enqueue(self.session, f"{key}-email", Channel.EMAIL, message, self.now)
            self.changes.outbox = True
        if "sms" in channels and prefs is not None and prefs.phone:
            sms = {"to": prefs.phone, "text": texts.sms(title, address, at, zone)}
            enqueue(self.session, f"{key}-sms", Channel.SMS, sms, self.now)
            self.changes.outbox = True
        if "push" in channels:
            self._push(
                key=key,
                category=category,
                title=title,
                at=at,
                ids=push,
                when=texts.local(at, zone),
                ringing=ringing,
            )
        return "app" in channels

    def _push(
        self,
        *,
        key: str,
        category: str,
        title: str,
        at: datetime,
        ids: dict[str, Any],
        when: str,
        ringing: bool,
    ) -> None:
        """One outbox row per subscribed browser; the message is what the
        notification shows (title, address, time) and the ids to open. Pushes
        of one call share its topic, so the newest replaces the older."""
        targets = subscriptions.recipients(self.session, self.home.contract_id, self.home.home_id)
        if not targets:
            return
        call = ids.get("call")
        topic = f"call-{call}" if call is not None else _TOPIC.sub("", key)[:32]
        message = {
            **ids,
            "title": title,
            "body": f"{self.home.address}, {when}",
            "url": "/app/" if ringing else "/app/history",
            "home": self.home.uid,
            "topic": topic,
        }
        urgent = ringing or category in ("alarm", "leak")
        row: dict[str, Any] = {
            "message": message,
            "topic": topic,
            "urgency": "high" if urgent else "normal",
            "ringing_call": call if ringing else None,
            "expires_at": (at + PUSH_TTL.get(category, timedelta(hours=1))).isoformat(),
        }
        for target in targets:
            payload = {**row, "subscription": target.id}
            enqueue(self.session, f"{key}-push-{target.id}", Channel.PUSH, payload, self.now)
        self.changes.outbox = True


def _push_kind(category: str, kind: str) -> str:
    """What the service worker shows it as: ``alarm``, ``gate``, ``call`` or the category."""
    if category in ("alarm", "leak") and kind == "alarm":
        return "alarm"
    if kind.startswith("command_"):
        return "gate"
    return category
