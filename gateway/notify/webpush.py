"""Web Push (RFC 8030) with message encryption (RFC 8291, aes128gcm) and
VAPID (RFC 8292), through pywebpush and py-vapid.

One attempt per call; the outbox retries. The VAPID token is signed per
message for the endpoint's origin (its ``aud``) and lives 12 hours at most,
as RFC 8292 asks (no more than 24 h)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02, b64urlencode  # type: ignore[import-untyped]
from pywebpush import WebPusher  # type: ignore[import-untyped]

from gateway.notify.errors import NotificationError

TOKEN_LIFETIME_S = 12 * 3600
_DETAIL_CHARS = 200

Urgency = Literal["very-low", "low", "normal", "high"]


class SubscriptionGone(NotificationError):
    """The push service no longer knows the subscription (404 or 410): forget it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=True)


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class PushMessage:
    data: bytes
    ttl_s: int
    topic: str
    """RFC 8030 §5.4: a newer message with the same topic replaces an undelivered one."""
    urgency: Urgency


def application_server_key(private_key: str) -> str:
    """The public key browsers subscribe with: the uncompressed P-256 point, base64url."""
    public = Vapid02.from_raw(private_key.encode()).public_key
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return str(b64urlencode(point))


class WebPushSender:
    """Sends ``PushMessage``s signed as ``subject`` (a mailto: or https: contact)."""

    def __init__(self, private_key: str, subject: str, *, timeout_s: float = 10.0) -> None:
        self._vapid = Vapid02.from_raw(private_key.encode())
        self._subject = subject
        self._timeout_s = timeout_s

    async def send(self, to: Subscription, message: PushMessage) -> None:
        """Hand ``message`` to ``to``'s push service, or raise ``NotificationError``."""
        await asyncio.to_thread(self._send_blocking, to, message)

    def _send_blocking(self, to: Subscription, message: PushMessage) -> None:
        origin = urlsplit(to.endpoint)
        claims = {
            "aud": f"{origin.scheme}://{origin.netloc}",
            "exp": int(time.time()) + TOKEN_LIFETIME_S,
            "sub": self._subject,
        }
        headers = dict(self._vapid.sign(claims))
        headers["Topic"] = message.topic
        headers["Urgency"] = message.urgency
        info = {"endpoint": to.endpoint, "keys": {"p256dh": to.p256dh, "auth": to.auth}}
        try:
            response = WebPusher(info).send(
                message.data,
                headers=headers,
                ttl=max(0, message.ttl_s),
                content_encoding="aes128gcm",
                timeout=self._timeout_s,
            )
        except requests.RequestException as exc:
            reason = f"push service unreachable: {str(exc) or type(exc).__name__}"
            raise NotificationError(reason, permanent=False) from exc
        except (ValueError, TypeError) as exc:  # keys that do not decode or encrypt
            raise NotificationError(f"cannot encrypt: {exc}", permanent=True) from exc
        assert isinstance(response, requests.Response)
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"push service answered {status}: {response.text[:_DETAIL_CHARS]}"
        if status in (404, 410):
            raise SubscriptionGone(detail)
        permanent = 400 <= status < 500 and status not in {401, 403, 408, 429}
        raise NotificationError(detail, permanent)
