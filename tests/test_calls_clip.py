"""A call's clip: the panel's camera (an intercom's ``rtsp_url``) is recorded
like a camera, and a call that ended lists a clip from its ringing to
``call_clip_after_s`` after it, served as one MP4 that plays — only to the
call's home, not to the panel's owner nor a neighbour."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.db.media_models import Clip, Recording
from gateway.runtime import start_recorder
from tests.conftest import Gateway
from tests.rtsp import RtspServer, scene
from tests.support import free_port
from tests.test_calls import entrance, ring
from tests.test_ingest import wait_until


def _recorded_until(gw: Gateway) -> datetime | None:
    with gw.ctx.db.session() as session:
        return session.scalar(select(func.max(Recording.end)))


def _duration(data: bytes, tmp: Path) -> float:
    """Seconds of video in the MP4, after ffmpeg decoded all of it without an error."""
    path = tmp / "clip.mp4"
    path.write_bytes(data)
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(probe.stdout)["format"]["duration"])


@pytest.mark.slow
def test_the_calls_clip_starts_at_the_ringing_and_plays(
    gateway_factory: Any, tmp_path: Path
) -> None:
    camera = RtspServer(free_port(), {"/door": scene(320, 180, 10)})
    camera.start()
    try:
        gw: Gateway = gateway_factory(
            archive_dir=tmp_path / "archive",
            recorder_segment_s=2.0,
            retention_sweep_s=3600,
            call_clip_after_s=2.0,
            alarms_poll_s=0.2,
        )
        site = entrance(gw, camera.url("/door"))
        gw.start_alarms()
        start_recorder(gw.settings, gw.ctx.secrets, gw.ctx.db, gw.stack)
        wait_until(lambda: _recorded_until(gw) is not None, 40)
        member = gw.login("4312")

        ring(gw, site["panel"], {"event": "call", "call_id": "v1", "apartment": "12"})
        wait_until(lambda: gw.http.get("/api/v1/calls", headers=member).json()["items"])
        call = gw.http.get("/api/v1/calls", headers=member).json()["items"][0]
        assert call["clip"] is None
        time.sleep(2)  # the visitor waits at the door before someone answers
        answered = gw.http.post(f"/api/v1/calls/{call['id']}/answer", headers=member).json()
        time.sleep(1)
        gw.http.post(f"/api/v1/calls/{call['id']}/hangup", headers=member)

        def clip() -> Any:
            return gw.http.get(f"/api/v1/calls/{call['id']}", headers=member).json()["clip"]

        listed = wait_until(clip)
        assert listed["start"] == call["started_at"]
        assert listed["url"] == f"/api/v1/calls/{call['id']}/clip.mp4"
        # It is listed with the call in the home's history too.
        history = gw.http.get("/api/v1/calls", headers=member).json()["items"]
        assert history[0]["clip"] == listed
        end = datetime.fromisoformat(listed["end"])
        wait_until(lambda: (_recorded_until(gw) or end) > end, 40)

        r = gw.http.get(listed["url"], headers=member)
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        seconds = _duration(r.content, tmp_path)
        before_answer = datetime.fromisoformat(answered["answered_at"]) - datetime.fromisoformat(
            call["started_at"]
        )
        after_answer = end - datetime.fromisoformat(answered["answered_at"])
        # The clip holds the ringing before the answer, not only what followed it.
        assert seconds > after_answer.total_seconds() + before_answer.total_seconds() / 2

        # Only the call's home: not the panel's owner, not the neighbour.
        for other in ("9000", "4314"):
            assert gw.http.get(listed["url"], headers=gw.login(other)).status_code == 404
        with gw.ctx.db.session() as session:
            kept = session.scalars(select(Clip).where(Clip.kind == "call")).all()
        assert [(c.device_id, c.end) for c in kept] == [(kept[0].device_id, end)]
    finally:
        camera.stop()
