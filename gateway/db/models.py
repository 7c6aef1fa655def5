"""The tables. Every subscriber-visible row hangs off a contract.

A contract (the ISP's billing account) has homes (addresses); a device belongs
to one home. Who logs in is modelled by ``Principal`` in ``gateway.tokens``, so
family members and guests can later be added as rows that point at a contract
without changing what owns what.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class ContractStatus(StrEnum):
    """``terminated``: ended by the ISP, waiting for its purge; ``purging``:
    its purge has begun (only then may its audit entries be deleted, 0012)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    PURGING = "purging"


DEFAULT_TIME_ZONE = "Asia/Novosibirsk"


class Contract(Base):
    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=ContractStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """From billing: where a password-reset code goes by SMS."""
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    """From billing: where a password-reset code goes by e-mail."""
    token_epoch: Mapped[int] = mapped_column(Integer, default=0)
    """The owner's tokens carry the epoch they were issued in; a password
    change or reset raises it, which ends every earlier session."""
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    purge_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """A terminated contract's data is purged by the first sweep after this."""

    homes: Mapped[list[Home]] = relationship(back_populates="contract", order_by="Home.id")

    @property
    def active(self) -> bool:
        return self.status == ContractStatus.ACTIVE


class Home(Base):
    __tablename__ = "homes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(Text)
    time_zone: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_TIME_ZONE, server_default=DEFAULT_TIME_ZONE
    )
    """IANA name: the home's local time, for schedules and what the cabinet shows."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    contract: Mapped[Contract] = relationship(back_populates="homes")
    devices: Mapped[list[Device]] = relationship(back_populates="home", order_by="Device.id")


class Device(Base):
    """A provisioned device. Deleted devices keep their row (history refers to them)."""

    __tablename__ = "devices"
    __table_args__ = (
        Index("ix_devices_contract", "contract_id", "deleted_at"),
        # A live device's name is unique in its home (it is the Zigbee2MQTT
        # friendly name); deleted devices keep theirs for history.
        Index(
            "uq_devices_home_live_name",
            "home_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    home_id: Mapped[int] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    mqtt_username: Mapped[str] = mapped_column(String(64), unique=True)
    rtsp_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """Kind-specific settings an operator set (a camera's retention and motion)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    home: Mapped[Home] = relationship(back_populates="devices")


class LoginFailure(Base):
    """Every failed login, kept for the audit trail and counted for throttling."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_contract_at", "contract_number", "at"),
        Index("ix_login_failures_address_at", "client_address", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_number: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeviceHealth(Base):
    """The latest health of a device, as its messages report it."""

    __tablename__ = "device_health"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    online: Mapped[bool | None] = mapped_column(nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    battery: Mapped[int | None] = mapped_column(nullable=True)
    battery_low: Mapped[bool | None] = mapped_column(nullable=True)
    voltage: Mapped[int | None] = mapped_column(nullable=True)
    linkquality: Mapped[int | None] = mapped_column(nullable=True)


class DeviceState(Base):
    """What a Zigbee2MQTT device last reported of its state fields
    (``devices.edges``), so a repeated report is told from a change across
    restarts of the gateway."""

    __tablename__ = "device_state"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Event(Base):
    """One accepted device message. Ids grow with arrival: the keyset cursor."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_contract_id", "contract_id", "id"),
        Index("ix_events_device_id", "device_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    home_id: Mapped[int] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IngestMarker(Base):
    """A committed message whose acknowledgement the broker has not yet confirmed.

    Keyed by the ingest session and the MQTT packet id the broker delivered it
    under; a redelivery (DUP) with the same id and digest is the same message.
    See docs/operators.md, "Exactly once".
    """

    __tablename__ = "ingest_markers"

    session: Mapped[str] = mapped_column(String(64), primary_key=True)
    packet_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(32))
    written_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IngestJournal(Base):
    """The digests of one committed batch, in the order the session received
    them: what a broker restored from an older snapshot sends again is
    recognised by lining its deliveries up with this (gateway.ingest.replay)."""

    __tablename__ = "ingest_journal"

    session: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    digests: Mapped[str] = mapped_column(Text)
    """32 hex digits per message, concatenated."""
    written_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RejectedMessage(Base):
    """A device message that could not be accepted, kept with its reason."""

    __tablename__ = "rejected_messages"
    __table_args__ = (Index("ix_rejected_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), nullable=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OperatorAlert(Base):
    """A condition an ISP operator must see and act on (``gateway.operator_alerts``):
    one open row per ``key`` while it lasts, kept with ``cleared_at`` after."""

    __tablename__ = "operator_alerts"
    __table_args__ = (
        Index(
            "uq_operator_alerts_open_key",
            "key",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
        Index("ix_operator_alerts_raised", "raised_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PurgeReport(Base):
    """What a terminated contract's purge deleted, kept without personal data:
    the contract is named only by ``contract_ref`` (``gateway.people.purge``)."""

    __tablename__ = "purge_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_ref: Mapped[str] = mapped_column(String(64), unique=True)
    terminated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    purge_after: Mapped[datetime] = mapped_column(UTCDateTime())
    purged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rows: Mapped[dict[str, int]] = mapped_column(JSON)
    """Rows deleted, per table."""
    media_files: Mapped[int] = mapped_column(Integer)
    media_bytes: Mapped[int] = mapped_column(BigInteger)
