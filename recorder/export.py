"""Exporting a time range of the archive into one seekable MP4.

The segments are remuxed, never re-encoded: their packets are copied into one
file with continuous timestamps, starting at the last keyframe at or before
the requested start (a clip must open on a keyframe to play), and written
with ``movflags=+faststart`` so the index (moov) is at the front and a
browser can seek before it has the whole file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer, OutputContainer
from av.stream import Stream


@dataclass(frozen=True)
class Piece:
    """One archive segment: its file and the wall-clock time of its first packet."""

    path: Path
    start: datetime
    end: datetime


class ExportError(Exception):
    """Nothing to export, a segment could not be read, or the file not written
    (PyAV's and the OS's errors arrive as this: callers see no media library)."""


_STEP_S = 0.001
"""The least step between two decoding times written: coarser than any output time base's tick."""


def _seconds(value: int, time_base: Fraction) -> float:
    return float(value * time_base)


def export(
    pieces: Sequence[Piece],
    start: datetime,
    end: datetime,
    out: Path,
    progress: Callable[[float], None] = lambda _f: None,
) -> float:
    """Write ``out`` (atomically: a temporary name, then a rename); returns
    the duration in seconds. ``pieces`` are in time order."""
    try:
        return _export(pieces, start, end, out, progress)
    except (av.FFmpegError, OSError) as exc:
        raise ExportError(str(exc)) from exc


def _export(
    pieces: Sequence[Piece],
    start: datetime,
    end: datetime,
    out: Path,
    progress: Callable[[float], None],
) -> float:
    wanted = [p for p in pieces if p.end > start and p.start < end]
    if not wanted:
        raise ExportError("no recording in that range")
    first = wanted[0]
    origin = first.start + timedelta(seconds=_keyframe_before(first.path, start, first.start))
    tmp = out.with_name(out.name + ".tmp")
    last = 0.0
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as target:
        mapping: dict[int, Stream] | None = None
        floor: dict[int, float] = {}
        for n, piece in enumerate(wanted):
            with av.open(str(piece.path)) as source:
                if mapping is None:
                    mapping = _streams(source, target)
                last = max(
                    last,
                    _copy(source, target, mapping, floor, piece=piece, origin=origin, end=end),
                )
            progress((n + 1) / len(wanted))
    os.replace(tmp, out)
    return last


def _keyframe_before(path: Path, start: datetime, piece_start: datetime) -> float:
    """Seconds into the segment of the last video keyframe at or before ``start``."""
    skip_to = (start - piece_start).total_seconds()
    best = 0.0
    with av.open(str(path)) as source:
        video = source.streams.video[0]
        zero: int | None = None
        for packet in source.demux(video):
            if packet.pts is None or packet.time_base is None:
                continue
            zero = packet.pts if zero is None else zero
            at = _seconds(packet.pts - zero, packet.time_base)
            if at > skip_to:
                break
            if packet.is_keyframe:
                best = at
    return best


def _streams(source: InputContainer, target: OutputContainer) -> dict[int, Stream]:
    if not source.streams.video:
        raise ExportError("the segment has no video")
    mapping: dict[int, Stream] = {}
    for stream in source.streams:
        if stream.type in ("video", "audio"):
            mapping[stream.index] = target.add_stream_from_template(stream)
    return mapping


def _copy(
    source: InputContainer,
    target: OutputContainer,
    mapping: dict[int, Stream],
    floor: dict[int, float],
    *,
    piece: Piece,
    origin: datetime,
    end: datetime,
) -> float:
    """Copy one segment's packets from ``origin`` to ``end`` (wall clock),
    each placed at its wall-clock offset from ``origin``; returns the last
    offset written.

    ``floor`` is each stream's last decoding time written (seconds). A segment's
    index start often lies a few milliseconds before the previous one's end (two
    clocks: the camera's and the writer's); its packets are moved just past the
    floor rather than dropped (the first is a keyframe the next ones need), since
    a muxer refuses decoding times that do not increase."""
    base = (piece.start - origin).total_seconds()
    stop_at = (end - piece.start).total_seconds()
    zero: dict[int, int] = {}
    last = 0.0
    for packet in source.demux():
        if packet.stream.index not in mapping or packet.pts is None or packet.dts is None:
            continue
        tb = packet.time_base
        assert tb is not None
        at = _seconds(packet.pts - zero.setdefault(packet.stream.index, packet.dts), tb)
        offset = base + at
        if offset < -1e-6 or at > stop_at:
            continue
        lag = packet.pts - packet.dts
        packet.pts = round(offset / tb)
        packet.dts = packet.pts - lag
        index = packet.stream.index
        below = floor.get(index, -1.0) + _STEP_S - _seconds(packet.dts, tb)
        if below > 0:
            shift = round(below / tb) + 1
            packet.pts += shift
            packet.dts += shift
        floor[index] = _seconds(packet.dts, tb)
        packet.stream = mapping[index]
        target.mux(packet)
        last = max(last, offset)
    return last
