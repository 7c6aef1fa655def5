"""The archive on disk: where a segment lives, what its name says, how it is made final.

``ARCHIVE_DIR/<camera>/<YYYY-MM-DD>/<HHMMSS.mmm>_<duration ms>ms[_motion].mp4``,
dates and times in UTC of the segment's first packet. A segment being written
is ``<HHMMSS.mmm>.mp4.part`` in the same directory, so the rename that makes
it final is atomic. The final name carries everything an index row needs but
the size, so a start-up scan of a week of footage reads directory entries,
not files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

PART_SUFFIX = ".mp4.part"
_CAMERA = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
_FINAL = re.compile(r"(\d{6})\.(\d{3})_(\d+)ms(_motion)?\.mp4")
_PART = re.compile(r"(\d{6})\.(\d{3})\.mp4\.part")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class SegmentInfo:
    """One complete segment file, as the index stores it."""

    camera: str
    path: Path
    start: datetime
    end: datetime
    bytes: int
    keyframe_at_start: bool
    motion: bool

    @property
    def duration(self) -> float:
        """Seconds of video in the file."""
        return (self.end - self.start).total_seconds()


def check_camera(camera: str) -> str:
    """A camera name becomes a directory: refuse anything that could escape the archive."""
    if not _CAMERA.fullmatch(camera):
        raise ValueError(f"camera name {camera!r} is not a safe directory name")
    return camera


def day_dir(archive_dir: Path, camera: str, start: datetime) -> Path:
    """The directory of a segment starting at ``start`` (UTC date)."""
    return archive_dir / check_camera(camera) / start.astimezone(UTC).strftime("%Y-%m-%d")


def _stamp(start: datetime) -> str:
    utc = start.astimezone(UTC)
    return f"{utc:%H%M%S}.{utc.microsecond // 1000:03d}"


def part_path(archive_dir: Path, camera: str, start: datetime) -> Path:
    """Where the segment starting at ``start`` is written while it is open."""
    return day_dir(archive_dir, camera, start) / f"{_stamp(start)}{PART_SUFFIX}"


def final_name(start: datetime, duration: float, motion: bool) -> str:
    """The complete segment's file name: start, duration and motion flag."""
    flag = "_motion" if motion else ""
    return f"{_stamp(start)}_{round(duration * 1000)}ms{flag}.mp4"


def _start_of(day: str, hms: str, millis: str) -> datetime:
    d = date.fromisoformat(day)
    return datetime(
        d.year, d.month, d.day, int(hms[:2]), int(hms[2:4]), int(hms[4:]), tzinfo=UTC
    ) + timedelta(milliseconds=int(millis))


def parse_final(camera: str, path: Path, size: int) -> SegmentInfo | None:
    """A complete segment's info from its path, or None if the name is not one of ours."""
    m = _FINAL.fullmatch(path.name)
    if m is None or not _DAY.fullmatch(path.parent.name):
        return None
    try:
        start = _start_of(path.parent.name, m[1], m[2])
    except ValueError:
        return None
    end = start + timedelta(milliseconds=int(m[3]))
    return SegmentInfo(camera, path, start, end, size, True, m[4] is not None)


def parse_part(path: Path) -> datetime | None:
    """The start time of an in-progress segment from its path, or None if not ours."""
    m = _PART.fullmatch(path.name)
    if m is None or not _DAY.fullmatch(path.parent.name):
        return None
    try:
        return _start_of(path.parent.name, m[1], m[2])
    except ValueError:
        return None


def make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, syncing each new entry into its parent.

    Without the parent's fsync a power cut can lose a new day directory and
    with it every segment that was renamed into it.
    """
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        fsync_dir(new.parent)


def fsync_dir(path: Path) -> None:
    """Persist a directory's entries (a rename or a new file)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def finalize(
    part: Path, camera: str, start: datetime, *, duration: float, motion: bool, keyframe: bool
) -> SegmentInfo:
    """Make an in-progress file a complete segment: fsync it, rename it, fsync the directory.

    After this returns, the segment survives a power cut under its final name;
    before, a crash leaves the ``.part`` file for the start-up scan to salvage.
    """
    fd = os.open(part, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    final = part.with_name(final_name(start, duration, motion))
    os.replace(part, final)
    fsync_dir(final.parent)
    end = start + timedelta(milliseconds=round(duration * 1000))
    return SegmentInfo(camera, final, start, end, final.stat().st_size, keyframe, motion)
