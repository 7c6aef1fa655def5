"""The recorder hands its callers its own errors, never PyAV's or the OS's:
a route maps ExportError and SnapshotError and nothing of the media library."""

from __future__ import annotations

import itertools
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recorder.export import ExportError, Piece, export
from recorder.snapshot import SnapshotError, snapshot

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_snapshot_of_a_file_that_is_no_video_is_a_snapshot_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not an MP4 at all" * 10)
    with pytest.raises(SnapshotError):
        snapshot(junk, T0)
    with pytest.raises(SnapshotError):
        snapshot(tmp_path / "missing.mp4", T0)


def test_export_of_an_unreadable_segment_is_an_export_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\xff" * 200)
    piece = Piece(junk, T0, T0 + timedelta(seconds=10))
    with pytest.raises(ExportError):
        export([piece], T0, T0 + timedelta(seconds=5), tmp_path / "out.mp4")
    missing = Piece(tmp_path / "missing.mp4", T0, T0 + timedelta(seconds=10))
    with pytest.raises(ExportError):
        export([missing], T0, T0 + timedelta(seconds=5), tmp_path / "out.mp4")


def _segment(path: Path, seconds: int) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size=160x120:rate=25:d={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:d={seconds}",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
    )


def test_segments_whose_index_times_overlap_export_as_one_file(tmp_path: Path) -> None:
    """The index often starts a segment a little before the previous one ends (the camera's
    and the writer's clocks); the export must still write increasing timestamps."""
    pieces = []
    start = T0
    for n in range(3):
        path = tmp_path / f"seg{n}.mp4"
        _segment(path, 2)
        pieces.append(Piece(path, start, start + timedelta(seconds=2)))
        start += timedelta(seconds=2) - timedelta(milliseconds=150)
    out = tmp_path / "out.mp4"
    duration = export(pieces, T0, start + timedelta(seconds=2), out)
    assert 5.5 < duration < 6.5
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "packet=dts",
            "-of",
            "csv=p=0",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    dts = [int(line) for line in probe.stdout.split()]
    assert len(dts) == 150
    assert all(b > a for a, b in itertools.pairwise(dts))
