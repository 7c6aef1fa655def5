"""The recorder hands its callers its own errors, never PyAV's or the OS's:
a route maps ExportError and SnapshotError and nothing of the media library."""

from __future__ import annotations

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
