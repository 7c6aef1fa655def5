"""Writing outbox rows, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.db.security_models import Outbox

COMMAND_TTL = timedelta(seconds=30)
"""How long a command to a device (siren, keypad display) stays worth doing:
its MQTT v5 message expiry, and the deadline in a native device's payload."""


class Channel(StrEnum):
    MQTT = "mqtt"
    CENTRAL_STATION = "central_station"
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


def enqueue(
    session: Session, key: str, channel: Channel, payload: dict[str, Any], now: datetime
) -> None:
    """Add a row unless one with ``key`` exists: deciding twice sends once."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(Outbox).values(
        key=key[:128],
        channel=channel.value,
        payload=payload,
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))


def contact_id(
    session: Session,
    key: str,
    *,
    account: str,
    code: int,
    qualifier: int,
    zone: int,
    home: str,
    at: datetime,
) -> None:
    """A Contact ID event for the central station (partition 1); ``home`` and
    ``at`` are for whoever reads the outbox, the link stamps its own time."""
    payload = {
        "account": account,
        "code": code,
        "qualifier": qualifier,
        "partition": 1,
        "zone": zone,
        "at": at.isoformat(),
        "home": home,
    }
    enqueue(session, key, Channel.CENTRAL_STATION, payload, at)


def command(session: Session, key: str, topic: str, payload: dict[str, Any], now: datetime) -> None:
    """A command to a device on its ``/set`` topic, worthless after ``COMMAND_TTL``."""
    deadline = now + COMMAND_TTL
    body = {"topic": topic, "payload": payload, "deadline": deadline.isoformat()}
    enqueue(session, key, Channel.MQTT, body, now)
