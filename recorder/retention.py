"""What to delete: a pure plan from the index, the policies, the clock and the free space.

Two passes, and a held segment (footage of an open alarm case) is never in
either:

1. **Expired**: a segment older than its camera's retention — the longest of
   the periods that apply to it (continuous always; motion if it saw motion;
   event if it belongs to an event clip), counted from its end.
2. **Evicted**: if the disk would still be below its free-space floor after
   that, the oldest unheld footage of any camera goes next, oldest first,
   until the floor is reached.

If the floor cannot be reached with what may be deleted, the plan says so
(``held_only`` — footage held by open cases, or files that are not footage at
all, fill the disk): the caller pauses its lowest-priority camera and raises
the operator alert. ``below_floor`` says eviction was needed at all, which
also deserves an alert: the archive holds less than its policy. Eviction that
keeps up leaves the disk hovering at the floor, so ``below_floor`` alternates
from sweep to sweep; :class:`FloorWatch` turns it into a state that holds
until the floor is regained with a margin.
The caller deletes each planned segment's index row, then its file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path


@dataclass(frozen=True)
class StoredSegment:
    """An indexed segment as retention sees it."""

    path: Path
    camera: str
    start: datetime
    end: datetime
    bytes: int
    motion: bool
    held: bool
    event: bool = False


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep a camera's footage: any footage, with motion, in an event clip."""

    continuous_days: float = 7.0
    motion_days: float = 7.0
    event_days: float = 7.0

    def keep_for(self, segment: StoredSegment) -> timedelta:
        """The longest period that applies to this segment."""
        days = self.continuous_days
        if segment.motion:
            days = max(days, self.motion_days)
        if segment.event:
            days = max(days, self.event_days)
        return timedelta(days=days)


@dataclass(frozen=True)
class DiskSpace:
    """Free bytes on the archive's filesystem, and the floor to keep free."""

    free_bytes: int
    floor_bytes: int


@dataclass(frozen=True)
class RetentionPlan:
    """Segments to delete, in order, and what the disk looks like afterwards."""

    expired: tuple[StoredSegment, ...]
    evicted: tuple[StoredSegment, ...]
    free_after: int
    below_floor: bool
    held_only: bool
    floor_bytes: int = 0

    @property
    def delete(self) -> tuple[StoredSegment, ...]:
        """Everything to delete: expired first, then evicted oldest first."""
        return self.expired + self.evicted


def plan(
    segments: Iterable[StoredSegment],
    policies: Mapping[str, RetentionPolicy],
    now: datetime,
    disk: DiskSpace,
    default: RetentionPolicy | None = None,
) -> RetentionPlan:
    """Plan one retention sweep; ``default`` applies to cameras without a policy."""
    fallback = default or RetentionPolicy()
    expired: list[StoredSegment] = []
    kept: list[StoredSegment] = []
    for segment in segments:
        policy = policies.get(segment.camera, fallback)
        if not segment.held and now - segment.end > policy.keep_for(segment):
            expired.append(segment)
        else:
            kept.append(segment)
    free = disk.free_bytes + sum(s.bytes for s in expired)
    below_floor = free < disk.floor_bytes
    evicted: list[StoredSegment] = []
    if below_floor:
        for segment in sorted(kept, key=lambda s: (s.start, s.camera, s.path)):
            if free >= disk.floor_bytes:
                break
            if not segment.held:
                evicted.append(segment)
                free += segment.bytes
    expired.sort(key=lambda s: (s.start, s.camera, s.path))
    return RetentionPlan(
        expired=tuple(expired),
        evicted=tuple(evicted),
        free_after=free,
        below_floor=below_floor,
        held_only=free < disk.floor_bytes,
        floor_bytes=disk.floor_bytes,
    )


@dataclass
class FloorWatch:
    """Whether the archive is kept at its floor by eviction.

    Set by the first sweep that has to evict; cleared only by a sweep that
    needs no eviction and finds free space above the floor by ``margin`` (a
    fraction of the floor). Eviction that keeps up stops each sweep right at
    the floor, so the next sweep often finds a little above it and the next
    one below: a plain "below now" flaps, an alert on this state does not.
    """

    margin: float = 0.1
    below: bool = False

    def update(self, result: RetentionPlan) -> bool:
        """Take one sweep's plan; returns the state."""
        if result.below_floor:
            self.below = True
        elif result.free_after >= result.floor_bytes * (1 + self.margin):
            self.below = False
        return self.below
