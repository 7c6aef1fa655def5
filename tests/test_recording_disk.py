"""Disk full, on a real small filesystem (a tmpfs this test mounts): below the
free-space floor the oldest unheld footage goes first, held clips stay, and
when only held footage is left the least important camera pauses."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db.media_models import Recording
from gateway.db.models import utcnow
from gateway.recording.role import RecorderRole, load_cameras
from gateway.recording.sweep import BELOW_FLOOR
from recorder.layout import day_dir, final_name
from tests.conftest import Gateway
from tests.test_ingest import wait_until
from tests.test_recording import camera_server, hold_footage

__all__ = ["camera_server"]  # fixture
MB = 1 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"this machine forbids mounting a tmpfs: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A real ~1 MB fragmented MP4 segment (H.264, 4 s)."""
    out = tmp_path / "sample.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x180:rate=10",
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-b:v",
            "2M",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
            str(out),
        ],
        check=True,
    )
    return out


def _fill_archive(archive: Path, camera: str, sample: Path, n: int) -> None:
    start = utcnow() - timedelta(hours=1)
    for i in range(n):
        at = start + timedelta(seconds=4 * i)
        target = day_dir(archive, camera, at) / final_name(at, 4.0, False)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample, target)


def _paths(gw: Gateway) -> list[str]:
    with gw.ctx.db.session() as session:
        return list(session.scalars(select(Recording.path).order_by(Recording.start)))


def test_floor_evicts_oldest_unheld_and_pauses_when_only_held_is_left(
    gateway_factory: Any,
    camera_server: Any,
    small_disk: Path,
    sample: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw: Gateway = gateway_factory(
        archive_dir=small_disk,
        archive_min_free_bytes=8 * MB,
        archive_min_free_percent=0,
        recorder_segment_s=2.0,
        retention_sweep_s=3600,
    )
    gw.create_contract("6201")
    cam = gw.create_device("6201", "camera", "yard", rtsp_url=camera_server.url("/cam"))["id"]
    _fill_archive(small_disk, cam, sample, 12)
    role = RecorderRole(gw.settings, gw.ctx.db, gw.ctx.secrets.mqtt_password)
    role.cameras = load_cameras(gw.ctx.db)
    role.index.cameras.update({uid: spec.ref for uid, spec in role.cameras.items()})
    role.index.reconcile(cam)
    before = _paths(gw)
    assert len(before) == 12
    with gw.ctx.db.session() as session:
        rows = list(session.scalars(select(Recording).order_by(Recording.start)))
    hold_footage(gw, cam, rows[0].start, rows[0].end)  # the oldest is held: it must survive
    ballast = small_disk / "ballast"
    free = shutil.disk_usage(small_disk).free
    size = sample.stat().st_size
    ballast.write_bytes(b"\0" * (free - 8 * MB + size * 3 // 2))  # 1.5 segments below the floor

    role._sweep()
    after = _paths(gw)
    assert after[0] == before[0], "the held clip is kept"
    evicted = [p for p in before if p not in after]
    assert evicted == before[1:3], "oldest unheld first, no more than needed"
    assert shutil.disk_usage(small_disk).free >= 8 * MB
    assert not (small_disk / evicted[0]).exists()

    # Now only held footage is left and the disk is full again: the camera pauses.
    for rec in rows[1:]:
        if rec.path in after:
            hold_footage(gw, cam, rec.start, rec.end)
    ballast.unlink()
    ballast.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 4 * MB))
    role.start()  # its first sweep comes at once
    wait_until(lambda: role.paused == {cam}, 20)
    assert cam not in role.recorders
    assert _paths(gw)[: len(after)] == after, "held footage is never evicted"
    assert BELOW_FLOOR._value.get() == 1
    assert "only held footage left" in caplog.text
    role.stop()
