"""The outbox's transports, built from the settings: MQTT commands to
devices, Contact ID to the central station, e-mail, SMS and Web Push."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import select

from gateway.db.engine import Database
from gateway.db.intercom_models import Call, CallState
from gateway.db.models import utcnow
from gateway.db.push_models import PushSubscription
from gateway.db.security_models import Outbox
from gateway.dispatch.station import RETRY_CAP_S, CentralStation
from gateway.dispatch.watch import StationWatch
from gateway.notify import subscriptions
from gateway.notify.email import EmailMessage, SmtpSender
from gateway.notify.errors import NotificationError
from gateway.notify.sms import HttpSmsSender
from gateway.notify.webpush import PushMessage, Subscription, SubscriptionGone, WebPushSender
from gateway.outbox.enqueue import Channel
from gateway.outbox.sender import ChannelPolicy, SendError
from gateway.secrets_store import resolve_secrets
from gateway.settings import Settings

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 10.0


class MqttCommands:
    """Publishes commands at QoS 1 with the MQTT v5 message expiry set to what
    is left of the command's deadline: a device that reconnects late never
    gets it, and one whose deadline passed before sending is not sent."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client

    async def __call__(self, _key: str, payload: dict[str, Any]) -> None:
        remaining = (datetime.fromisoformat(payload["deadline"]) - utcnow()).total_seconds()
        if remaining < 1:
            raise SendError("deadline passed before it could be sent", permanent=True)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.MessageExpiryInterval = int(remaining)
        body = json.dumps(payload["payload"])
        info = self.client.publish(payload["topic"], body, qos=1, properties=props)
        await asyncio.to_thread(info.wait_for_publish, PUBLISH_TIMEOUT_S)
        if not info.is_published():
            raise SendError("the broker did not acknowledge the command")


class Email:
    def __init__(self, settings: Settings) -> None:
        s = settings
        self.sender = SmtpSender(
            s.smtp_host or "",
            s.smtp_port,
            s.smtp_sender,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            starttls=s.smtp_starttls,
        )

    async def __call__(self, key: str, payload: dict[str, Any]) -> None:
        message = EmailMessage(
            to=payload["to"],
            subject=payload["subject"],
            body=payload["body"],
            message_id=key,
        )
        try:
            await self.sender.send(message)
        except NotificationError as exc:
            raise SendError(str(exc), permanent=exc.permanent) from exc


class Sms:
    def __init__(self, settings: Settings) -> None:
        assert settings.sms_url is not None
        api_key = settings.sms_api_key.get_secret_value() if settings.sms_api_key else None
        self.sender = HttpSmsSender(settings.sms_url, api_key)

    async def __call__(self, key: str, payload: dict[str, Any]) -> None:
        try:
            await self.sender.send(payload["to"], payload["text"], key)
        except NotificationError as exc:
            raise SendError(str(exc), permanent=exc.permanent) from exc


class Push:
    """Web Push to one subscription. What is sent is decided again at sending
    time: a subscription removed meanwhile gets nothing, a call's push goes
    only while the call still rings and lives (TTL) what is left of its ring,
    the call's end only where its ring was sent, others until ``expires_at``.
    A push service that no longer knows the subscription (404/410) gets it
    deleted."""

    def __init__(self, settings: Settings, db: Database) -> None:
        key = resolve_secrets(settings).vapid_private_key
        self.sender = WebPushSender(key, settings.push_subject)
        self.db = db
        self.ring = timedelta(seconds=settings.call_ring_timeout_s)

    async def __call__(self, key: str, payload: dict[str, Any]) -> None:
        target = await asyncio.to_thread(self._target, payload)
        if target is None:
            log.info("push %s: nothing to send (unsubscribed, call over or expired)", key)
            return
        to, ttl = target
        message = PushMessage(
            data=json.dumps(payload["message"], ensure_ascii=False).encode(),
            ttl_s=ttl,
            topic=payload["topic"],
            urgency=payload["urgency"],
        )
        try:
            await self.sender.send(to, message)
        except SubscriptionGone as exc:
            await asyncio.to_thread(self._forget, payload["subscription"])
            raise SendError(str(exc), permanent=True) from exc
        except NotificationError as exc:
            raise SendError(str(exc), permanent=exc.permanent) from exc

    def _target(self, payload: dict[str, Any]) -> tuple[Subscription, int] | None:
        now = utcnow()
        with self.db.session() as session:
            row = session.get(PushSubscription, payload["subscription"])
            if row is None:
                return None
            to = Subscription(row.endpoint, row.p256dh, row.auth)
            if payload.get("ringing_call") is not None:
                call = session.get(Call, payload["ringing_call"])
                if call is None or call.state != CallState.RINGING:
                    return None
                until = call.started_at + self.ring
            elif payload.get("after") is not None:
                # A call's end replaces its ring: only where the ring was sent.
                ring = session.scalars(select(Outbox).where(Outbox.key == payload["after"])).first()
                if ring is None or ring.sent_at is None:
                    return None
                until = datetime.fromisoformat(payload["expires_at"])
            else:
                until = datetime.fromisoformat(payload["expires_at"])
        ttl = int((until - now).total_seconds())
        return (to, ttl) if ttl >= 1 else None

    def _forget(self, sub_id: int) -> None:
        with self.db.transaction() as session:
            subscriptions.forget(session, sub_id)


def policies(
    settings: Settings,
    client: mqtt.Client,
    watch: StationWatch | None = None,
    db: Database | None = None,
) -> dict[Channel, ChannelPolicy]:
    """The configured channels; the security service queues nothing for the
    others (``security_service``). ``watch`` makes the central station's
    failures visible (``gateway.dispatch.watch``). Web Push needs the
    database (``db``, else the watch's) and is always on: its keys are ours."""
    out = {Channel.MQTT: ChannelPolicy(MqttCommands(client), max_attempts=5, max_backoff_s=5)}
    if settings.central_station_host:
        out[Channel.CENTRAL_STATION] = ChannelPolicy(
            CentralStation(settings, watch), max_attempts=None, max_backoff_s=RETRY_CAP_S
        )
    attempts = settings.outbox_max_attempts
    if settings.smtp_host:
        out[Channel.EMAIL] = ChannelPolicy(Email(settings), max_attempts=attempts)
    if settings.sms_url:
        out[Channel.SMS] = ChannelPolicy(Sms(settings), max_attempts=attempts)
    database = db if db is not None else (watch.db if watch is not None else None)
    if database is not None:
        out[Channel.PUSH] = ChannelPolicy(
            Push(settings, database), max_attempts=attempts, max_backoff_s=10
        )
    return out
