"""The archive's index: recorded segments, motion ranges, event clips and
exports. The files are the truth (``recorder.archive`` can rebuild the
segment rows from the disk); these rows make the archive searchable, tie
clips to alarm cases, and carry ownership (``contract_id``) like every row a
subscriber can reach."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import Base, UTCDateTime

_BigId = BigInteger().with_variant(Integer, "sqlite")


class Recording(Base):
    """One complete segment file on disk (path relative to the archive dir)."""

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_camera_start", "device_id", "start"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text, unique=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    bytes: Mapped[int] = mapped_column(BigInteger)
    motion: Mapped[bool] = mapped_column(default=False)


class MotionSpan(Base):
    """A range of motion a camera's detector saw."""

    __tablename__ = "motion_spans"
    __table_args__ = (Index("ix_motion_spans_camera_start", "device_id", "start"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())


class Clip(Base):
    """Footage marked as an event (an intercom call, an alarm): kept for the
    event retention, and past any retention while its case is open."""

    __tablename__ = "clips"
    __table_args__ = (Index("ix_clips_camera_start", "device_id", "start"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), nullable=True
    )
    """While this case is not closed, the clip's footage is held."""


class Export(Base):
    """A requested export of a time range into one seekable MP4."""

    __tablename__ = "exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(default=0.0)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
