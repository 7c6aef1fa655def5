"""Disk full, on a real small filesystem (a tmpfs this test mounts): below the
free-space floor the oldest unheld footage goes first, held clips stay, and
when nothing more may be evicted the least important camera pauses — with an
operator alert that says what fills the disk, a below-floor state that does
not flap, and free space checked at every segment cut, not only per sweep."""

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
from gateway.db.models import Event, utcnow
from gateway.recording.disk import ALERT_PREFIX
from gateway.recording.role import BELOW_FLOOR, PAUSED_REASON, RecorderRole, load_cameras
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


def _role(gw: Gateway, camera: str) -> RecorderRole:
    """A recorder role with its cameras loaded and ``camera``'s archive indexed."""
    role = RecorderRole(gw.settings, gw.ctx.db, gw.ctx.secrets.mqtt_password)
    role.cameras = load_cameras(gw.ctx.db)
    role.index.cameras.update({uid: spec.ref for uid, spec in role.cameras.items()})
    role.index.reconcile(camera)
    return role


def _disk_alerts(gw: Gateway) -> list[dict[str, Any]]:
    """The open operator alerts about the archive's disk, as the operator view lists them."""
    r = gw.http.get("/api/v1/admin/operator-alerts", headers=gw.admin)
    assert r.status_code == 200, r.text
    return [a for a in r.json() if a["key"].startswith(ALERT_PREFIX)]


def _fill_to(disk: Path, free: int) -> Path:
    """A file that is not footage, leaving ``free`` bytes free."""
    ballast = disk / "ballast"
    ballast.write_bytes(b"\0" * (shutil.disk_usage(disk).free - free))
    return ballast


def _on_small_disk(gateway_factory: Any, small_disk: Path, **overrides: Any) -> Gateway:
    """A gateway archiving to the small disk with an 8 MiB floor."""
    gw: Gateway = gateway_factory(
        archive_dir=small_disk,
        archive_min_free_bytes=8 * MB,
        archive_min_free_percent=0,
        **overrides,
    )
    return gw


def test_floor_evicts_oldest_unheld_and_pauses_when_only_held_is_left(
    gateway_factory: Any,
    camera_server: Any,
    small_disk: Path,
    sample: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw = _on_small_disk(gateway_factory, small_disk, recorder_segment_s=2.0, retention_sweep_s=3600)
    gw.create_contract("6201")
    cam = gw.create_device("6201", "camera", "yard", rtsp_url=camera_server.url("/cam"))["id"]
    _fill_archive(small_disk, cam, sample, 12)
    role = _role(gw, cam)
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
    assert "archive disk full" in caplog.text and f"camera(s) {cam} paused" in caplog.text
    (alert,) = _disk_alerts(gw)
    assert f"{cam} paused" in alert["text"]
    role.stop()


def test_other_files_filling_the_disk_are_named_and_raise_an_operator_alert(
    gateway_factory: Any,
    camera_server: Any,
    small_disk: Path,
    sample: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No footage is held, a dump fills the disk: all footage is evicted and the
    camera paused, and the log and the operator alert say it is other files,
    not held footage. Once the file is gone the camera records again and the
    alert is cleared."""
    gw = _on_small_disk(gateway_factory, small_disk, recorder_segment_s=2.0, retention_sweep_s=1.0)
    gw.create_contract("6202")
    cam = gw.create_device("6202", "camera", "gate", rtsp_url=camera_server.url("/cam"))["id"]
    _fill_archive(small_disk, cam, sample, 4)
    ballast = _fill_to(small_disk, 2 * MB)  # evicting all 4 MB of footage cannot reach 8 MB
    role = _role(gw, cam)
    filled = _paths(gw)
    role.start()
    wait_until(lambda: role.paused == {cam}, 20)
    assert not set(filled) & set(_paths(gw)), "all unheld footage was evicted first"
    assert "other files" in caplog.text
    assert "held footage left" not in caplog.text
    (alert,) = _disk_alerts(gw)
    assert "other files" in alert["text"] and f"{cam} paused" in alert["text"]
    assert alert["details"]["held"] == 0 and alert["details"]["other"] > 8 * MB
    role.index.flush()
    with gw.ctx.db.session() as session:
        marks = session.scalars(select(Event.body).where(Event.event == "availability"))
        assert {"state": "offline", "reason": PAUSED_REASON} in list(marks)

    ballast.unlink()
    wait_until(lambda: cam in role.recorders, 30)
    assert _disk_alerts(gw) == [] and BELOW_FLOOR._value.get() == 0
    role.stop()


def test_below_floor_holds_while_eviction_keeps_up(
    gateway_factory: Any, camera_server: Any, small_disk: Path, sample: Path
) -> None:
    """A sweep that evicts stops right at the floor; the next finds a little
    above it. The state (and its alert) stays until the floor is regained with
    a margin, instead of flapping 1/0 from sweep to sweep."""
    gw = _on_small_disk(gateway_factory, small_disk)
    gw.create_contract("6203")
    cam = gw.create_device("6203", "camera", "yard", rtsp_url=camera_server.url("/cam"))["id"]
    _fill_archive(small_disk, cam, sample, 12)
    role = _role(gw, cam)
    ballast = _fill_to(small_disk, 8 * MB - sample.stat().st_size * 3 // 2)
    role._sweep()
    assert len(_paths(gw)) == 10 and BELOW_FLOOR._value.get() == 1
    (alert,) = _disk_alerts(gw)
    assert "evicted before its retention" in alert["text"]
    for _ in range(2):  # just above the floor now: nothing to evict
        role._sweep()
        assert len(_paths(gw)) == 10
        assert BELOW_FLOOR._value.get() == 1 and len(_disk_alerts(gw)) == 1
    ballast.unlink()
    role._sweep()
    assert BELOW_FLOOR._value.get() == 0 and _disk_alerts(gw) == []


@pytest.mark.slow
def test_free_space_is_checked_at_every_segment_cut(
    gateway_factory: Any, camera_server: Any, small_disk: Path, sample: Path
) -> None:
    """Sweeps an hour apart: a segment cut that leaves the disk below its floor
    makes the sweep run at once, so the floor holds between sweeps."""
    gw = _on_small_disk(gateway_factory, small_disk, recorder_segment_s=2.0, retention_sweep_s=3600)
    gw.create_contract("6204")
    cam = gw.create_device("6204", "camera", "porch", rtsp_url=camera_server.url("/cam"))["id"]
    _fill_archive(small_disk, cam, sample, 6)
    role = _role(gw, cam)
    filled = _paths(gw)
    role.start()
    assert role.ready.wait(20)
    wait_until(lambda: cam in role.recorders and role.recorders[cam].online, 20)
    _fill_to(small_disk, 8 * MB + 64 * 1024)  # the next segments cross the floor
    wait_until(lambda: filled[0] not in _paths(gw), 30)
    assert BELOW_FLOOR._value.get() == 1
    role.stop()
