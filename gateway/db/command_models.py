"""Commands to devices that act in the world: open a gate, a barrier, an
intercom's door. One row per command, kept as the record of who asked for
what, when, and what came of it (invariant 3: never late, never twice)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import Base, UTCDateTime

_BigId = BigInteger().with_variant(Integer, "sqlite")


class CommandStatus(StrEnum):
    """``sent`` until the controller answers or the deadline passes; the rest are final
    (except that a controller's late answer still replaces ``expired``)."""

    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    REFUSED = "refused"
    FAILED = "failed"
    EXPIRED = "expired"


class Command(Base):
    """One command. ``uid`` is what the controller sees (``command_id``) and
    what the API shows; ``deadline`` is in the payload and the MQTT expiry."""

    __tablename__ = "commands"
    __table_args__ = (
        Index("ix_commands_contract_id", "contract_id", "id"),
        Index("ix_commands_home_id", "home_id", "id"),
        Index("ix_commands_status_deadline", "status", "deadline"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    home_id: Mapped[int] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    caller: Mapped[str] = mapped_column(String(64))
    """Who asked: the contract number of the subscriber's login."""
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=CommandStatus.SENT)
    result: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """The controller's own word (``opened``, ``refused``, ``fault``, ``expired``), if any."""
    detail: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """Why it was refused or failed, as the controller (or the gateway) said."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
