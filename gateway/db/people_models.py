"""People and their traces: a contract's members with per-home permissions,
password-reset codes, and the append-only audit trail.

The audit trail refers to contracts, homes and devices by value (ids and
uids), not by foreign key: an entry outlives what it names, and the database
refuses to change or delete any entry (triggers in migration 0010)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.db.models import Base, UTCDateTime, utcnow


class Member(Base):
    """A family member's own login (a phone or an e-mail) on a contract."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    login: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    token_epoch: Mapped[int] = mapped_column(Integer, default=0)
    """Tokens carry the epoch they were issued in; raising it ends them all."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    permissions: Mapped[list[MemberPermission]] = relationship(cascade="all, delete-orphan")


class MemberPermission(Base):
    """One thing a member may do in one home (``gateway.people.permissions``)."""

    __tablename__ = "member_permissions"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    home_id: Mapped[int] = mapped_column(
        ForeignKey("homes.id", ondelete="CASCADE"), primary_key=True
    )
    permission: Mapped[str] = mapped_column(String(16), primary_key=True)


class ResetCode(Base):
    """A 6-digit password-reset code, kept hashed, for a contract's owner
    (``member_id`` null) or one of its members."""

    __tablename__ = "reset_codes"
    __table_args__ = (Index("ix_reset_codes_contract_created", "contract_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), nullable=True
    )
    code_hash: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """Set when the code reset the password, ran out of tries or was superseded."""


class AuditEntry(Base):
    """Who did what, to which home and device, when, from where. Append-only."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_contract_id", "contract_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_kind: Mapped[str] = mapped_column(String(16))
    """owner, member, guest, dispatcher, admin."""
    actor: Mapped[str] = mapped_column(String(254))
    """The login: a contract number, a member's login, ``dispatcher:<login>``, ``admin``."""
    contract_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    home: Mapped[str | None] = mapped_column(String(32), nullable=True)
    device: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(48))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)


class GuestPass(Base):
    """A guest pass: opens the gates and doors of :class:`GuestPassDevice`
    between ``valid_from`` and ``valid_to``, at most ``max_uses`` times, until
    revoked. Only the SHA-256 of its token is kept (``gateway.people.passes``)."""

    __tablename__ = "guest_passes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_to: Mapped[datetime] = mapped_column(UTCDateTime())
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class GuestPassDevice(Base):
    """One gate or door a pass opens."""

    __tablename__ = "guest_pass_devices"

    pass_id: Mapped[int] = mapped_column(
        ForeignKey("guest_passes.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
