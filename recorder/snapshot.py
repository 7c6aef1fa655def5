"""A JPEG of a camera at a moment, decoded from the archive (the only decode
on the archive's read path, and only of the frames since the last keyframe)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import av
import cv2

JPEG_QUALITY = 85


class SnapshotError(Exception):
    """The segment holds no decodable frame at that time, or cannot be read
    (PyAV's and the OS's errors arrive as this: callers see no media library)."""


def snapshot(path: Path, segment_start: datetime, at: datetime | None = None) -> bytes:
    """The frame shown at ``at`` (or the segment's last frame), as JPEG bytes."""
    try:
        return _snapshot(path, segment_start, at)
    except (av.FFmpegError, OSError) as exc:
        raise SnapshotError(str(exc)) from exc


def _snapshot(path: Path, segment_start: datetime, at: datetime | None) -> bytes:
    target = None if at is None else (at - segment_start).total_seconds()
    chosen = None
    with av.open(str(path)) as source:
        video = source.streams.video[0]
        video.thread_type = "AUTO"
        zero: int | None = None
        for frame in source.decode(video):
            if frame.pts is None or frame.time_base is None:
                continue
            zero = frame.pts if zero is None else zero
            if target is not None and float((frame.pts - zero) * frame.time_base) > target:
                break
            chosen = frame
    if chosen is None:
        raise SnapshotError(f"no frame in {path.name}")
    ok, jpeg = cv2.imencode(
        ".jpg", chosen.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise SnapshotError("JPEG encoding failed")
    return bytes(jpeg)
