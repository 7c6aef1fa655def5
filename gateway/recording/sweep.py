"""One retention sweep: expired footage first, then — below the free-space
floor — the oldest footage that no open alarm case holds.

The planner (``recorder.retention.plan``) decides; this module feeds it
candidates from the index (not the whole archive: the oldest rows only) and
carries the plan out, index row first, then the file, so a crash in between
leaves a file the next start-up indexes again, never a row without footage.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client import Counter, Gauge
from sqlalchemy import Exists, delete, exists, select
from sqlalchemy.orm import Session

from gateway.db.media_models import Clip, Recording
from gateway.db.models import Device
from gateway.db.security_models import Case, CaseStatus
from recorder.archive import delete_segment
from recorder.retention import DiskSpace, RetentionPlan, RetentionPolicy, StoredSegment, plan

log = logging.getLogger(__name__)

FREE = Gauge("moydom_archive_free_bytes", "Free bytes on the archive's filesystem")
DELETED = Counter("moydom_archive_deleted_total", "Segments deleted", ["why"])
CANDIDATES = 5000
"""Oldest rows considered per sweep for eviction; a sweep that could not
reach the floor runs again at once."""


@dataclass(frozen=True)
class Floor:
    min_bytes: int
    min_percent: float

    def bytes_for(self, total: int) -> int:
        return max(self.min_bytes, int(total * self.min_percent / 100))


def held() -> Exists:
    """SQL: the recording overlaps a clip whose case is not closed."""
    return exists().where(
        Clip.device_id == Recording.device_id,
        Clip.start < Recording.end,
        Clip.end > Recording.start,
        Clip.case_id.is_not(None),
        exists().where(Case.id == Clip.case_id, Case.status != CaseStatus.CLOSED),
    )


def _event() -> Exists:
    return exists().where(
        Clip.device_id == Recording.device_id,
        Clip.start < Recording.end,
        Clip.end > Recording.start,
    )


def candidates(
    session: Session, now: datetime, shortest: timedelta, evicting: bool, archive: Path
) -> list[StoredSegment]:
    """Rows that may expire (ended before the shortest retention) and, when
    evicting, the oldest rows of all."""
    held_col = held().label("held")
    event = _event().label("event")
    base = select(Recording, Device.uid, held_col, event).join(
        Device, Device.id == Recording.device_id
    )
    old = base.where(Recording.end < now - shortest).order_by(Recording.start).limit(CANDIDATES)
    rows = list(session.execute(old))
    if evicting:
        rows += list(session.execute(base.order_by(Recording.start).limit(CANDIDATES)))
    seen: dict[int, StoredSegment] = {}
    for rec, camera, is_held, is_event in rows:
        seen[rec.id] = StoredSegment(
            path=archive / rec.path,
            camera=camera,
            start=rec.start,
            end=rec.end,
            bytes=rec.bytes,
            motion=rec.motion,
            held=bool(is_held),
            event=bool(is_event),
        )
    return list(seen.values())


def sweep(
    session: Session,
    archive: Path,
    *,
    policies: dict[str, RetentionPolicy],
    default: RetentionPolicy,
    floor: Floor,
    now: datetime,
) -> RetentionPlan:
    usage = shutil.disk_usage(archive)
    floor_bytes = floor.bytes_for(usage.total)
    all_policies = [default, *policies.values()]
    shortest = timedelta(
        days=min(min(p.continuous_days, p.motion_days, p.event_days) for p in all_policies)
    )
    segments = candidates(session, now, shortest, usage.free < floor_bytes, archive)
    result = plan(segments, policies, now, DiskSpace(usage.free, floor_bytes), default)
    doomed = result.delete
    if doomed:
        session.execute(
            delete(Recording).where(
                Recording.path.in_([str(s.path.relative_to(archive)) for s in doomed])
            )
        )
        session.commit()
        for segment in doomed:
            delete_segment(segment.path)
    DELETED.labels("expired").inc(len(result.expired))
    DELETED.labels("evicted").inc(len(result.evicted))
    FREE.set(shutil.disk_usage(archive).free)
    log.info(
        "retention sweep: %d expired, %d evicted (oldest unheld first), %.1f MB freed; "
        "free %.1f MB, floor %.1f MB%s",
        len(result.expired),
        len(result.evicted),
        sum(s.bytes for s in doomed) / 1e6,
        shutil.disk_usage(archive).free / 1e6,
        floor_bytes / 1e6,
        " — FLOOR NOT REACHED: nothing more may be evicted" if result.held_only else "",
    )
    return result
