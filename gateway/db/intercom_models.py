"""Shared entrances and intercom calls.

A building's entrance panel (an intercom device) serves many flats; a flat
number maps to the home provisioned for it. A call is a row of the home it
was routed to, so it belongs to that home's contract — never to the panel's
(a building's panel is usually provisioned under the operator's contract)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import Base, UTCDateTime, utcnow

_BigId = BigInteger().with_variant(Integer, "sqlite")


class Building(Base):
    """A building with a shared entrance (or several)."""

    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    address: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EntrancePanel(Base):
    """An intercom device at one of the building's entrances: the flat number
    it reports is looked up in the building's flats."""

    __tablename__ = "entrance_panels"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"))


class Flat(Base):
    """Flat ``number`` of a building is the home ``home_id``."""

    __tablename__ = "flats"
    __table_args__ = (UniqueConstraint("building_id", "number", name="uq_flats_building_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(16))
    home_id: Mapped[int] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))


class CallState:
    """A call's states; only ``ringing`` and ``answered`` are not final."""

    RINGING = "ringing"
    ANSWERED = "answered"
    DECLINED = "declined"
    MISSED = "missed"
    ENDED = "ended"


class Call(Base):
    """One intercom call to one home: who answered, how it ended."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("device_id", "call_id", "home_id", name="uq_calls_device_call_home"),
        Index("ix_calls_contract_id", "contract_id", "id"),
        Index("ix_calls_state_started", "state", "started_at"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    home_id: Mapped[int] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    """The panel that called."""
    call_id: Mapped[str] = mapped_column(String(64))
    """The panel's own id of the call (its ``call_ended`` names it)."""
    flat: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """When the gateway received the call; unanswered ``call_ring_timeout_s``
    later it is missed (the alarms role's call timer)."""
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """``member``, ``panel`` or ``timeout``."""
    clip_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """Set once the call ended, if its panel has a camera: the call's clip is
    the panel's footage from ``started_at`` to this (a ``clips`` row keeps it)."""
