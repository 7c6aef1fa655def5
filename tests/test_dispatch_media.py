"""A dispatcher sees the held clips and the live cameras of an open case's home, and only
while it is open: a real RTSP camera recorded by the recorder role, a leak tripped over MQTT
opening the case (which holds the camera's footage), the clip played through its signed URL,
the camera watched over WHEP by an aiortc viewer — then the case closed: the URL answers 403
and the live session ends within a second. Another home's camera is a 404, a subscriber's
token a 401. Both backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bench.live.client import WhepViewer
from gateway.db.media_models import Recording
from gateway.recording.role import RecorderRole
from gateway.runtime import start_recorder
from tests.conftest import Gateway
from tests.netns import serve
from tests.rtsp import RtspServer, scene
from tests.security_support import SecuredHome, central_station, secure
from tests.support import free_port
from tests.test_ingest import wait_until
from tests.test_sia import Receiver

__all__ = ["central_station"]  # fixture
API = "/api/v1/dispatch/cases"


@pytest.fixture
def camera_server() -> Iterator[RtspServer]:
    with RtspServer(free_port(), {"/a": scene(320, 180, 10), "/b": scene(320, 180, 10)}) as server:
        yield server


class Scene:
    """Two secured homes with a recorded camera each, and the API on a real port."""

    def __init__(self, gw: Gateway, a: SecuredHome, b: SecuredHome, cams: dict[str, str]) -> None:
        self.gw, self.a, self.b, self.cams = gw, a, b, cams
        self.url = ""

    @property
    def token(self) -> str:
        return self.a.dispatcher["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def homes(
    gateway_factory: Any, central_station: Receiver, camera_server: RtspServer, tmp_path: Path
) -> Iterator[Scene]:
    gw: Gateway = gateway_factory(
        central_station_host="127.0.0.1",
        central_station_port=central_station.port,
        alarms_poll_s=0.2,
        archive_dir=tmp_path / "archive",
        recorder_segment_s=2.0,
        clip_before_s=1.0,
        clip_after_s=20.0,
        live_open_timeout_s=8.0,
        stream_recheck_s=60.0,  # far longer than the test: only the case's closing ends a session
        webrtc_host_addresses=["127.0.0.1"],
    )
    a = secure(gw, "5301")
    b = secure(gw, "5302", start_roles=lambda: None)
    cams = {
        "a": gw.create_device("5301", "camera", "porch", rtsp_url=camera_server.url("/a"))["id"],
        "b": gw.create_device("5302", "camera", "yard", rtsp_url=camera_server.url("/b"))["id"],
    }
    recorder: RecorderRole = start_recorder(gw.settings, gw.ctx.secrets, gw.ctx.db, gw.stack)
    assert recorder.ready.wait(20)
    scene_ = Scene(gw, a, b, cams)
    with serve(gw.ctx, "127.0.0.1", free_port()) as url:
        scene_.url = url
        yield scene_
    a.close()
    b.close()


def _recorded(gw: Gateway) -> int:
    with gw.ctx.db.session() as session:
        return len(session.scalars(select(Recording.id)).all())


def _open_case(home: SecuredHome) -> int:
    """A leak in the home once its camera has a few seconds recorded: a case holding them."""
    wait_until(lambda: _recorded(home.gw) >= 2, 30)
    home.send("bath", {"water_leak": True})
    wait_until(lambda: len(home.cases("active")) == 1, 15)
    case_id: int = home.cases("active")[0]["id"]
    return case_id


def test_open_case_media_then_closing_revokes_it(homes: Scene) -> None:
    s, http = homes, homes.a.gw.http
    a = s.a
    case_id = _open_case(a)

    r = http.get(f"{API}/{case_id}/cameras", headers=a.dispatcher)
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": s.cams["a"], "name": "porch"}]
    r = http.get(f"{API}/{case_id}/clips", headers=a.dispatcher)
    assert r.status_code == 200, r.text
    (clip,) = r.json()
    assert clip["camera"] == s.cams["a"] and clip["kind"] == "alarm"
    recording, snapshot = clip["recording"], clip["snapshot"]
    assert f"case={case_id}" in recording and "sig=" in recording
    # The signed URL plays without a token, seekably, once the footage is recorded.
    wait_until(lambda: http.get(recording).status_code == 200, 30)
    ranged = http.get(recording, headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.headers["content-type"] == "video/mp4"
    assert http.get(snapshot).headers["content-type"] == "image/jpeg"
    # A tampered case number breaks the signature; another home's camera is not the case's.
    assert http.get(recording.replace(f"case={case_id}", "case=999")).status_code == 401
    other = f"{API}/{case_id}/cameras/{s.cams['b']}/whep"
    offer = {"Content-Type": "application/sdp", **a.dispatcher}
    assert http.post(other, content="v=0\r\n", headers=offer).status_code == 404
    assert http.get(f"{API}/999999/clips", headers=a.dispatcher).status_code == 404

    async def body() -> float:
        async with httpx.AsyncClient(timeout=30) as client:
            viewer = WhepViewer(s.url, s.cams["a"], s.token)
            viewer.endpoint = f"{s.url}{API}/{case_id}/cameras/{s.cams['a']}/whep"
            await viewer.start(client)
            await viewer.wait_frames(5, timeout=30)
            assert viewer.session_url is not None
            session_id = viewer.session_url.rsplit("/", 1)[1]
            live = s.gw.ctx.live
            assert live is not None and live.is_open(session_id)
            r = await client.post(
                f"{s.url}{API}/{case_id}/close",
                json={"resolution": "false_alarm"},
                headers=a.dispatcher,
            )
            assert r.status_code == 200, r.text
            closed = time.monotonic()
            while live.is_open(session_id):
                assert time.monotonic() - closed < 5, "the live session outlived its case"
                await asyncio.sleep(0.02)
            took = time.monotonic() - closed
            await viewer.close()
            return took

    took = asyncio.run(body())
    print(f"live session ended {took:.3f} s after the case closed")
    assert took < 1.0

    assert http.get(recording).status_code == 403
    assert http.get(snapshot).status_code == 403
    for path in ("clips", "cameras"):
        assert http.get(f"{API}/{case_id}/{path}", headers=a.dispatcher).status_code == 403
    mine = f"{API}/{case_id}/cameras/{s.cams['a']}/whep"
    assert http.post(mine, content="v=0\r\n", headers=offer).status_code == 403
    # The owner sees in their audit trail that a dispatcher looked.
    trail = http.get("/api/v1/audit", headers=a.owner).json()["items"]
    looked = {e["action"] for e in trail if e["actor"] == "dispatcher:desk5301"}
    assert {"case_clips_viewed", "case_live_opened"} <= looked


def test_subscriber_tokens_get_no_case_media(homes: Scene) -> None:
    s, http = homes, homes.a.gw.http
    case_id = _open_case(s.a)
    offer = {"Content-Type": "application/sdp"}
    for who in (s.a.owner, s.b.owner, {}):
        assert http.get(f"{API}/{case_id}/clips", headers=who).status_code == 401
        assert http.get(f"{API}/{case_id}/cameras", headers=who).status_code == 401
        whep = f"{API}/{case_id}/cameras/{s.cams['a']}/whep"
        assert http.post(whep, content="v=0\r\n", headers={**offer, **who}).status_code == 401
        assert http.options(whep, headers=who).status_code == 401
