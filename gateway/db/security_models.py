"""The security service's tables: alarm panels, their users' codes, dispatch
cases with their timelines, subscriber alerts and the transactional outbox.

A panel belongs to a home (one per home, present only where the security
service is sold); everything a subscriber sees carries ``contract_id`` so the
same ownership filter as for events applies.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import Base, UTCDateTime, utcnow

_BigId = BigInteger().with_variant(Integer, "sqlite")


class AlarmPanel(Base):
    """A home's alarm panel: its settings, the engine's state, and when it next
    needs the clock (an indexed column, so the timer loop finds due panels
    without reading every state)."""

    __tablename__ = "alarm_panels"
    __table_args__ = (Index("ix_alarm_panels_next_deadline", "next_deadline"),)

    home_id: Mapped[int] = mapped_column(
        ForeignKey("homes.id", ondelete="CASCADE"), primary_key=True
    )
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    monitored: Mapped[bool] = mapped_column(default=True)
    """Alarms go to dispatch and the central station (the paid service)."""
    account: Mapped[str] = mapped_column(String(16))
    """The Contact ID account number the central station knows the home by."""
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    next_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AlarmUser(Base):
    """Someone who may arm and disarm: a PIN and an optional duress PIN, hashed."""

    __tablename__ = "alarm_users"
    __table_args__ = (Index("uq_alarm_users_home_name", "home_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    home_id: Mapped[int] = mapped_column(ForeignKey("alarm_panels.home_id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(255))
    duress_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Dispatcher(Base):
    """A security dispatcher's account (created by operators through the admin API)."""

    __tablename__ = "dispatchers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CaseStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    CLOSED = "closed"


class Case(Base):
    """One alarm for dispatch. ``next_resend_at`` is set until a dispatcher
    acknowledges: the alarms loop re-sends the case then (invariant 2)."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status", "status", "id"),
        Index("ix_cases_next_resend", "next_resend_at"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    home_id: Mapped[int] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    alarm: Mapped[str] = mapped_column(String(16))
    contact_id: Mapped[int] = mapped_column(Integer)
    zone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """The device uid of the zone that raised it, if any."""
    silent: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[int | None] = mapped_column(
        ForeignKey("dispatchers.id", ondelete="SET NULL"), nullable=True
    )
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(32), nullable=True)
    next_resend_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resends: Mapped[int] = mapped_column(Integer, default=0)


class CaseEntry(Base):
    """One line of a case's timeline: what happened, when, and who did it."""

    __tablename__ = "case_entries"
    __table_args__ = (Index("ix_case_entries_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(128), nullable=True)


class Alert(Base):
    """Something the subscriber is told about: an alarm, a leak, a trouble, a
    change of the panel's status. ``GET /api/v1/alerts`` and the stream."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_contract_id", "contract_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    home_id: Mapped[int] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), nullable=True
    )
    category: Mapped[str] = mapped_column(String(16))
    """The notification class: alarm, leak, trouble, security, intercom, gate."""
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class NotificationPrefs(Base):
    """How a contract wants to be told, per alert category."""

    __tablename__ = "notification_prefs"

    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    channels: Mapped[dict[str, list[str]]] = mapped_column(JSON)


class Outbox(Base):
    """Something to send once the transaction that decided it has committed:
    an MQTT command, a Contact ID event, an e-mail, an SMS. ``key`` is unique,
    so deciding the same thing twice sends it once."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "sent_at", "failed_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
