"""Bodies of the Web Push API: the browser's ``PushSubscription.toJSON()``."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from gateway.api.schemas import Request

B64Url = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+={0,2}$", max_length=128)]


def _decoded(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


class PushKeys(BaseModel):
    """The browser's keys (RFC 8291): its P-256 public key and the auth secret."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    p256dh: B64Url
    auth: B64Url

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        raw = _decoded(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("p256dh must be an uncompressed P-256 point (65 bytes)")
        return value

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(_decoded(value)) != 16:
            raise ValueError("auth must be a 16-byte secret")
        return value


class PushSubscribe(Request):
    """As ``JSON.stringify(subscription)`` gives it; the endpoint must be
    https (http only to loopback, when the gateway is set up for tests)."""

    endpoint: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    expirationTime: float | None = Field(default=None, ge=0)  # noqa: N815 - the browser's name
    keys: PushKeys


class PushSubscriptionOut(BaseModel):
    id: int
    endpoint: str
    created_at: datetime


class PushKey(BaseModel):
    application_server_key: str
    """The VAPID public key, base64url: ``pushManager.subscribe``'s ``applicationServerKey``."""
