"""Start-up reconciliation: what is on disk, salvaging what a crash left half-written.

A crash (kill -9, power cut) leaves at most one ``.part`` file per camera.
Its fragments up to the last complete one are valid MP4, so it is cut back to
that point, probed with PyAV and renamed as a complete segment; if no complete
fragment survived it is deleted. The gateway then diffs the disk against its
index with :func:`reconcile`: files without a row get one, rows without a file
are dropped. Scan a camera before its recorder starts: an open ``.part`` of a
running recorder would be taken for a leftover.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import av

from recorder.layout import (
    PART_SUFFIX,
    SegmentInfo,
    check_camera,
    finalize,
    fsync_dir,
    parse_final,
    parse_part,
)

log = logging.getLogger(__name__)


def complete_fragments_end(path: Path) -> int:
    """Byte offset just past the last complete ``moof``+``mdat`` pair, 0 if there is none.

    Walks only the top-level box headers. A box whose size runs past the end
    of the file, or a size of 0 ("to the end"), is where the crash cut the
    file; nothing after it is trusted.
    """
    end = 0
    size = path.stat().st_size
    pending_moof = False
    seen_moov = False
    with path.open("rb") as fh:
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            box_size, kind = struct.unpack(">I4s", fh.read(8))
            if box_size == 1 and offset + 16 <= size:
                (box_size,) = struct.unpack(">Q", fh.read(8))
            if box_size < 8 or offset + box_size > size:
                break
            offset += box_size
            if kind == b"moov":
                seen_moov = True
            elif kind == b"moof":
                pending_moof = True
            elif kind == b"mdat" and pending_moof and seen_moov:
                pending_moof = False
                end = offset
    return end


@dataclass(frozen=True)
class Probe:
    """What PyAV finds in a (salvaged) segment: video length and whether it starts cleanly."""

    duration: float
    keyframe_at_start: bool
    video_packets: int


def probe(path: Path) -> Probe | None:
    """Demux (no decode) the file's video packets; None if it holds no readable video."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            first: int | None = None
            last_end = 0
            count = 0
            keyframe = False
            for packet in container.demux(stream):
                if packet.dts is None:
                    continue
                if first is None:
                    first = packet.dts
                    keyframe = packet.is_keyframe
                last_end = max(last_end, packet.dts + (packet.duration or 0))
                count += 1
    except (av.FFmpegError, OSError) as exc:
        log.warning("cannot probe %s: %s", path, exc)
        return None
    if first is None or stream.time_base is None:
        return None
    return Probe(float((last_end - first) * stream.time_base), keyframe, count)


def salvage(camera: str, part: Path) -> SegmentInfo | None:
    """Finalize a crash leftover up to its last complete fragment, or delete it."""
    start = parse_part(part)
    if start is None:
        log.warning("leaving %s alone: not a segment name of ours", part)
        return None
    end = complete_fragments_end(part)
    if 0 < end < part.stat().st_size:
        os.truncate(part, end)
    found = probe(part) if end else None
    if found is None or found.video_packets == 0:
        log.warning("deleting %s: no complete fragment survived", part)
        part.unlink()
        fsync_dir(part.parent)
        return None
    info = finalize(
        part, camera, start, duration=found.duration, motion=False, keyframe=found.keyframe_at_start
    )
    log.info("salvaged %s (%.1f s)", info.path, found.duration)
    return info


def scan(archive_dir: Path, camera: str) -> list[SegmentInfo]:
    """Every complete segment of ``camera`` on disk, oldest first, after salvaging leftovers."""
    root = archive_dir / check_camera(camera)
    if not root.is_dir():
        return []
    found: list[SegmentInfo] = []
    for day in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(day.iterdir()):
            if path.name.endswith(PART_SUFFIX):
                salvaged = salvage(camera, path)
                if salvaged is not None:
                    found.append(salvaged)
                continue
            info = parse_final(camera, path, path.stat().st_size)
            if info is None:
                log.warning("ignoring %s: not a segment name of ours", path)
            else:
                found.append(info)
    found.sort(key=lambda s: s.start)
    return found


def reconcile(
    on_disk: list[SegmentInfo], indexed: set[Path]
) -> tuple[list[SegmentInfo], set[Path]]:
    """Diff the disk against the index: (files to index, indexed paths with no file).

    Paths are compared as given: index rows must store the path exactly as
    :class:`SegmentInfo` gave it (both come from the same ``archive_dir``).
    """
    present = {s.path for s in on_disk}
    return [s for s in on_disk if s.path not in indexed], indexed - present


def delete_segment(path: Path) -> None:
    """Remove a segment file and its day directory once empty; a missing file is no error.

    The gateway deletes the index row first, then the file: a crash in
    between leaves a file without a row, which :func:`reconcile` indexes again
    (and the next sweep deletes again) — never a row promising footage that
    is gone.
    """
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        return
    fsync_dir(path.parent.parent)
