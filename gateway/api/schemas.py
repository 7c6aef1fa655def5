"""Request and response bodies. Requests forbid unknown fields, so a typo in a
billing integration is a 422, not a silently ignored field."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from gateway.db.models import DEFAULT_TIME_ZONE, Contract, Home, PurgeReport

CONTRACT_NUMBER = r"^[0-9A-Za-z-]{1,32}$"
DEVICE_ID = r"^[0-9a-z-]{1,32}$"
ContractNumber = Annotated[str, StringConstraints(pattern=CONTRACT_NUMBER)]
# Path parameters are validated like bodies: nothing malformed reaches a query.
NumberPath = Annotated[str, Path(pattern=CONTRACT_NUMBER)]
DeviceIdPath = Annotated[str, Path(pattern=DEVICE_ID)]
HomeIdPath = Annotated[str, Path(pattern=DEVICE_ID)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
PHONE = r"^\+[0-9]{10,15}$"
EMAIL = r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){1,8}$"
Phone = Annotated[str, StringConstraints(pattern=PHONE)]
"""E.164 with its plus: ``+79130000001``."""
Email = Annotated[str, StringConstraints(pattern=EMAIL, max_length=254)]
"""ASCII only: the same in Python's, pydantic's and JSON Schema's regex dialects."""
Login = Annotated[
    str, StringConstraints(pattern=rf"^[0-9A-Za-z-]{{1,32}}$|{PHONE}|{EMAIL}", max_length=254)
]
"""A contract number (the owner), or a member's phone or e-mail: never alike."""
_WS = r" \t\n\r\f\v\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
"""Whitespace spelled out: ``\\s`` means different things to Python, pydantic's
Rust regex and JSON Schema (U+0085, U+FEFF), and the OpenAPI must say
exactly what the server accepts."""
# Something printable, and no control characters (PostgreSQL refuses NUL).
Address = Annotated[
    str,
    StringConstraints(
        pattern=rf"^[^\x00-\x1f\x7f]*[^{_WS}\x00-\x1f\x7f][^\x00-\x1f\x7f]*$", max_length=500
    ),
]
_LEVEL = rf"[^/#+\x00-\x1f\x7f]*[^/#+{_WS}\x00-\x1f\x7f][^/#+\x00-\x1f\x7f]*"
# Levels separated by single slashes, each not empty, not all blanks, and
# nothing that would break an MQTT topic: a Zigbee2MQTT friendly name
# (devices.topics.name_problem has the rules a pattern cannot say well).
DeviceName = Annotated[
    str,
    StringConstraints(pattern=rf"^{_LEVEL}(/{_LEVEL})*$", max_length=64),
]
RtspUrl = Annotated[str, StringConstraints(pattern=r"^rtsps?://[!-~]+$", max_length=2000)]
"""Printable ASCII only (a URL percent-encodes the rest): unambiguous in every
regex dialect, where ``\\s`` is not (U+0085 is whitespace to Python, not to JSON Schema)."""


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _known_zone(name: str) -> str:
    if name not in _zones():
        raise ValueError(f"unknown time zone {name!r}: an IANA name like {DEFAULT_TIME_ZONE}")
    return name


TimeZone = Annotated[
    str,
    AfterValidator(_known_zone),
    # The OpenAPI lists exactly what is accepted (a pattern would promise more).
    WithJsonSchema({"type": "string", "enum": sorted(_zones())}),
]
"""An IANA time zone this machine's tz database knows (``Europe/Moscow``)."""


class ErrorOut(BaseModel):
    """Every error: a human-readable ``detail`` (for 422 see ``ValidationErrorOut``)."""

    detail: str


class ValidationErrorOut(BaseModel):
    """422: the schema's list of problems, or the core's sentence."""

    detail: str | list[dict[str, Any]]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a router can answer with."""
    return {code: {"model": ValidationErrorOut if code == 422 else ErrorOut} for code in codes}


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class ContractCreate(Request):
    number: ContractNumber
    password: Password
    address: Address
    phone: Phone | None = Field(default=None, description="password-reset channel by SMS")
    email: Email | None = Field(default=None, description="password-reset channel by e-mail")
    time_zone: TimeZone = Field(default=DEFAULT_TIME_ZONE, description="the first home's")


class HomeCreate(Request):
    address: Address
    time_zone: TimeZone = DEFAULT_TIME_ZONE


class HomeOut(BaseModel):
    id: str
    address: str
    time_zone: str = Field(
        default=DEFAULT_TIME_ZONE, description="IANA name: the home's local time"
    )

    @classmethod
    def of(cls, home: Home) -> HomeOut:
        return cls(id=home.uid, address=home.address, time_zone=home.time_zone)


class ContractOut(BaseModel):
    number: str
    status: str = Field(description="active, suspended, terminated (or purging)")
    created_at: datetime
    homes: list[HomeOut]
    phone: str | None = None
    email: str | None = None
    terminated_at: datetime | None = None
    purge_after: datetime | None = Field(
        default=None, description="a terminated contract's data is deleted after this"
    )

    @classmethod
    def of(cls, contract: Contract) -> ContractOut:
        return cls(
            number=contract.number,
            status=contract.status,
            created_at=contract.created_at,
            homes=[HomeOut.of(h) for h in contract.homes],
            phone=contract.phone,
            email=contract.email,
            terminated_at=contract.terminated_at,
            purge_after=contract.purge_after,
        )


class PurgeOut(BaseModel):
    """What a terminated contract's purge deleted. ``contract_ref`` is an
    HMAC of the contract number under the gateway's key, not the number."""

    contract_ref: str
    terminated_at: datetime
    purge_after: datetime
    purged_at: datetime
    rows: dict[str, int] = Field(description="rows deleted, per table")
    media_files: int
    media_bytes: int

    @classmethod
    def of(cls, report: PurgeReport) -> PurgeOut:
        return cls(
            contract_ref=report.contract_ref,
            terminated_at=report.terminated_at,
            purge_after=report.purge_after,
            purged_at=report.purged_at,
            rows=report.rows,
            media_files=report.media_files,
            media_bytes=report.media_bytes,
        )


class _DeviceCreateBase(Request):
    name: DeviceName
    home: Annotated[str, StringConstraints(pattern=DEVICE_ID)] | None = Field(
        default=None, description="home id; the contract's first home if omitted"
    )


class MqttDeviceCreate(_DeviceCreateBase):
    kind: Literal[
        "motion",
        "leak",
        "contact",
        "keypad",
        "siren",
        "alarm_panel",
        "gate",
        "zigbee_bridge",
    ]


class CameraCreate(_DeviceCreateBase):
    kind: Literal["camera"]
    rtsp_url: RtspUrl


class IntercomCreate(_DeviceCreateBase):
    kind: Literal["intercom"]
    rtsp_url: RtspUrl | None = Field(
        default=None, description="the panel's camera, recorded and viewed like a camera's"
    )


DeviceCreate = Annotated[
    MqttDeviceCreate | CameraCreate | IntercomCreate, Field(discriminator="kind")
]
"""A camera must carry ``rtsp_url`` and nothing else may: said in the schema
itself, so clients and fuzzers see the rule, not only the server."""


class TopicsOut(BaseModel):
    base_topic: str = Field(description="Zigbee2MQTT base_topic for this device's home")
    state: str
    availability: str
    set: str
    publishes: list[str]
    listens: list[str]


class DeviceOut(BaseModel):
    id: str
    kind: str
    name: str
    home: str
    username: str
    client_id: str = Field(description="the MQTT client id the device must connect with")
    payload_format: Literal["zigbee2mqtt", "native"]
    topics: TopicsOut
    rtsp_url: str | None
    created_at: datetime
    health: HealthOut | None = Field(default=None, description="as last reported; null if never")


class DeviceCreated(DeviceOut):
    password: str = Field(description="shown once; the broker keeps only a hash")


class SubscriberDevice(BaseModel):
    id: str
    kind: str
    name: str
    home: str
    created_at: datetime


class EventOut(BaseModel):
    id: int
    device: str
    device_kind: str
    home: str
    event: str
    body: dict[str, Any]
    received_at: datetime


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next, older page")


class RejectedOut(BaseModel):
    id: int
    topic: str
    device: str | None
    reason: str
    detail: str
    payload_base64: str
    payload_text: str = Field(description="the payload as UTF-8 with replacement characters")
    received_at: datetime


class RejectedPage(BaseModel):
    items: list[RejectedOut]
    next_cursor: str | None


class HealthOut(BaseModel):
    online: bool | None
    last_seen_at: datetime | None
    battery: int | None
    battery_low: bool | None
    linkquality: int | None


class LoginRequest(Request):
    contract: Login = Field(description="the contract number, or a member's phone or e-mail")
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class MeOut(BaseModel):
    contract: str
    role: str
    homes: list[HomeOut]
    login: str | None = Field(default=None, description="the contract number or member's login")
    permissions: dict[str, list[str]] | None = Field(
        default=None, description="a member's, per home id; null for the owner"
    )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "down"]
    broker: Literal["ok", "down"]
    alerts: list[str] = Field(default_factory=list)
    """Keys of the open operator alerts (``gateway.operator_alerts``)."""
