"""The archive's disk as operators see it: what fills it, in words, and one
operator alert while the archive is kept at its free-space floor.

The sweep alone cannot tell "only held footage is left" from "something
that is not footage fills the filesystem": in both the floor cannot be
reached. The index can: footage is what it lists, held footage what an open
case overlaps, and the rest of the filesystem's used space is other files (a
log, a dump, the database). The alert (``gateway.operator_alerts``) is keyed
per recorder host, opened by the first sweep that has to evict and cleared
once the floor is regained with a margin (``recorder.retention.FloorWatch``):
one alert per episode, not one per sweep.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.media_models import Recording
from gateway.operator_alerts import clear_alert, raise_alert
from gateway.recording.sweep import held

ALERT_PREFIX = "archive:disk_full"


def alert_key(host: str | None = None) -> str:
    """``archive:disk_full:<host>``: recorders on several machines each have a disk."""
    return f"{ALERT_PREFIX}:{host or socket.gethostname()}"[:64]


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@dataclass(frozen=True)
class DiskUse:
    """Bytes on the archive's filesystem after a sweep."""

    free: int
    floor: int
    footage: int
    held: int
    other: int

    def summary(self) -> str:
        return (
            f"free {_mb(self.free)}, floor {_mb(self.floor)}; footage {_mb(self.footage)} "
            f"({_mb(self.held)} held by open alarm cases), other files {_mb(self.other)}"
        )

    def why_full(self) -> str:
        """What keeps the disk below the floor once nothing more may be evicted."""
        if self.other > self.held:
            return "disk full from other files, not camera footage"
        return "only held footage left (footage of open alarm cases)"


def measure(session: Session, archive: Path, floor_bytes: int) -> DiskUse:
    usage = shutil.disk_usage(archive)
    total = select(func.coalesce(func.sum(Recording.bytes), 0))
    footage = int(session.scalar(total) or 0)
    held_bytes = int(session.scalar(total.where(held())) or 0)
    return DiskUse(
        free=usage.free,
        floor=floor_bytes,
        footage=footage,
        held=held_bytes,
        other=max(0, usage.used - footage),
    )


def report(db: Database, key: str, text: str | None, use: DiskUse | None, now: datetime) -> None:
    """Open (or refresh) the alert with ``text``, or clear it when ``text`` is None."""
    with db.transaction() as session:
        if text is None:
            clear_alert(session, key, now)
        else:
            raise_alert(session, key, text, now, asdict(use) if use is not None else None)
