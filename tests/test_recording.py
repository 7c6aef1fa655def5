"""The recorder role in the gateway: a real RTSP camera recorded into the
archive with its index in the database (both backends), reconciled with the
disk after a crash, camera availability as events, and alarm clips held past
retention until their case is closed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db.media_models import Clip, Recording
from gateway.db.models import Device, Event, utcnow
from gateway.db.security_models import Case, CaseStatus
from gateway.recording.index import RECORDER_DOWN
from gateway.recording.role import RecorderRole, load_cameras
from gateway.recording.sweep import Floor, sweep
from gateway.runtime import start_recorder
from recorder.retention import RetentionPolicy
from tests.conftest import Gateway
from tests.rtsp import RtspServer, scene
from tests.support import MoydomProcess, free_port, moydom_env
from tests.test_ingest import wait_until


@pytest.fixture
def camera_server() -> Iterator[RtspServer]:
    server = RtspServer(free_port(), {"/cam": scene(320, 180, 10, ball=True)})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def recorded(gateway_factory: Any, camera_server: RtspServer, tmp_path: Path) -> Iterator[Any]:
    gw: Gateway = gateway_factory(
        archive_dir=tmp_path / "archive", recorder_segment_s=2.0, retention_sweep_s=3600
    )
    gw.create_contract("6101")
    cam = gw.create_device("6101", "camera", "porch", rtsp_url=camera_server.url("/cam"))
    yield gw, cam


def hold_footage(gw: Gateway, camera: str, start: datetime, end: datetime) -> int:
    """An open burglary case with a clip of ``camera`` over ``[start, end]``."""
    with gw.ctx.db.transaction() as session:
        device = session.scalars(select(Device).where(Device.uid == camera)).one()
        case = Case(
            contract_id=device.contract_id,
            home_id=device.home_id,
            alarm="burglary",
            contact_id=130,
            status=CaseStatus.OPEN,
            opened_at=start,
        )
        session.add(case)
        session.flush()
        clip = Clip(
            device_id=device.id,
            contract_id=device.contract_id,
            kind="alarm",
            start=start,
            end=end,
            case_id=case.id,
        )
        session.add(clip)
        return case.id


def _rows(gw: Gateway) -> list[Recording]:
    with gw.ctx.db.session() as session:
        return list(session.scalars(select(Recording).order_by(Recording.start)))


def _start(gw: Gateway) -> RecorderRole:
    role = start_recorder(gw.settings, gw.ctx.secrets, gw.ctx.db, gw.stack)
    assert role.ready.wait(20)
    return role


def test_camera_is_recorded_and_indexed(recorded: Any) -> None:
    gw, cam = recorded
    role = _start(gw)
    wait_until(lambda: len(_rows(gw)) >= 3, 30)
    role.stop()
    rows = _rows(gw)
    archive = gw.settings.archive_path().resolve()
    on_disk = sorted(str(p.relative_to(archive)) for p in archive.rglob("*.mp4"))
    assert sorted(r.path for r in rows) == on_disk
    assert all(r.path.startswith(f"{cam['id']}/") for r in rows)
    for row in rows:
        assert (archive / row.path).stat().st_size == row.bytes
    # Cut on keyframes (one a second) near 2 s; the last one was closed by stop.
    assert all(1.0 <= (r.end - r.start).total_seconds() <= 4.0 for r in rows[:-1])
    with gw.ctx.db.session() as session:
        query = select(Event).where(Event.event == "availability").order_by(Event.id)
        states = [e.body["state"] for e in session.scalars(query)]
    assert states[0] == "online"


def test_index_is_reconciled_with_the_disk_at_start(recorded: Any) -> None:
    gw, _ = recorded
    role = _start(gw)
    wait_until(lambda: len(_rows(gw)) >= 3, 30)
    role.stop()
    archive = gw.settings.archive_path().resolve()
    first, second = _rows(gw)[:2]
    (archive / first.path).unlink()  # a file lost behind the index's back
    with gw.ctx.db.transaction() as session:  # a file whose row was never written
        session.delete(session.get_one(Recording, second.id))
    role = _start(gw)
    role.index.flush()
    paths = {r.path for r in _rows(gw)}
    assert first.path not in paths and second.path in paths
    role.stop()


def test_alarm_clip_is_held_until_its_case_closes(recorded: Any) -> None:
    gw, cam = recorded
    role = _start(gw)
    wait_until(lambda: len(_rows(gw)) >= 4, 30)
    role.stop()
    rows = _rows(gw)
    held = rows[1]
    case_id = hold_footage(
        gw,
        cam["id"],
        held.start + timedelta(milliseconds=100),
        held.end - timedelta(milliseconds=100),
    )
    archive = gw.settings.archive_path().resolve()
    gone = RetentionPolicy(0.00001, 0.00001, 0.00001)  # a second: everything is old
    time.sleep(1.5)

    def run_sweep() -> None:
        with gw.ctx.db.session() as session:
            sweep(session, archive, policies={}, default=gone, floor=Floor(0, 0), now=utcnow())

    run_sweep()
    assert [r.path for r in _rows(gw)] == [held.path]
    assert (archive / held.path).exists()
    with gw.ctx.db.transaction() as session:
        session.get_one(Case, case_id).status = CaseStatus.CLOSED
    run_sweep()
    assert _rows(gw) == [] and not (archive / held.path).exists()


def test_camera_settings_reach_the_recorder(recorded: Any) -> None:
    gw, cam = recorded
    url = f"/api/v1/admin/contracts/6101/devices/{cam['id']}/settings"
    body = {
        "retention": {"continuous_days": 3, "event_days": 30},
        "motion": {"enabled": True, "threshold": 40, "mask": [[[0, 0], [1, 0], [1, 0.2]]]},
        "priority": 5,
    }
    assert gw.http.put(url, json=body, headers=gw.admin).status_code == 200
    assert gw.http.get(url, headers=gw.admin).json()["retention"]["continuous_days"] == 3
    bad = {"motion": {"mask": [[[0, 0], [2, 0], [1, 1]]]}}
    assert gw.http.put(url, json=bad, headers=gw.admin).status_code == 422
    spec = load_cameras(gw.ctx.db)[cam["id"]]
    assert spec.priority == 5
    assert spec.retention(7.0) == RetentionPolicy(3, 7, 30)
    motion = spec.motion(default_on=False)
    assert motion is not None and motion.threshold == 40 and len(motion.mask) == 1


def _availability(gw: Gateway, camera: str, token: dict[str, str]) -> list[dict[str, Any]]:
    start = (utcnow() - timedelta(hours=1)).isoformat()
    end = (utcnow() + timedelta(minutes=1)).isoformat()
    r = gw.http.get(
        f"/api/v1/cameras/{camera}/timeline", params={"start": start, "end": end}, headers=token
    )
    assert r.status_code == 200, r.text
    return list(r.json()["availability"])


@pytest.mark.slow
def test_a_recorder_killed_leaves_an_offline_mark_at_restart(recorded: Any) -> None:
    """``moydom run --role recorder`` killed with SIGKILL says nothing; the next
    start marks the camera offline where its footage ended, so the cabinet's
    timeline shows the gap as the camera being away, not as online."""
    gw, cam = recorded
    token = gw.login("6101")
    env = moydom_env(
        var_dir=str(gw.settings.var_dir),
        database_url=gw.settings.database_url,
        mqtt_url=gw.settings.mqtt_url,
        mqtt_broker="external",
        archive_dir=str(gw.settings.archive_path()),
        recorder_segment_s="2",
        retention_sweep_s="3600",
    )
    crashed = MoydomProcess(env, gw.settings.var_dir, ["recorder"], "recorder")
    try:
        crashed.start()
        wait_until(lambda: len(_rows(gw)) >= 2, 40)
        time.sleep(1.0)  # into an open segment
        crashed.kill()
    finally:
        crashed.stop()
    assert [c["state"] for c in _availability(gw, cam["id"], token)] == ["online"]

    role = _start(gw)
    wait_until(lambda: len(_availability(gw, cam["id"], token)) >= 3, 30)
    role.stop()
    online, offline, back = _availability(gw, cam["id"], token)
    assert (online["state"], offline["state"], back["state"]) == ("online", "offline", "online")
    went, came = datetime.fromisoformat(offline["at"]), datetime.fromisoformat(back["at"])
    assert went < came
    before = [r for r in _rows(gw) if r.start < went]
    assert before and went == max(r.end for r in before), "the mark is where footage ends"
    assert not [r for r in _rows(gw) if went < r.start < came], "and nothing was recorded after"
    with gw.ctx.db.session() as session:
        query = select(Event).where(Event.event == "availability").order_by(Event.id)
        assert [e.body["reason"] for e in session.scalars(query)][1] == RECORDER_DOWN
