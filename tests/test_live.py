"""Live view end to end: a real RTSP camera, the gateway's HTTP server on a real port, and
aiortc viewers on loopback posting WHEP offers — frames, one shared upstream, the idle close,
audio, and who may watch or end what."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender

from bench.live.client import WhepError, WhepViewer
from tests.conftest import Gateway
from tests.netns import serve
from tests.rtsp import RtspServer, encode
from tests.support import free_port

VIDEO = f"videotestsrc is-live=true pattern=ball ! {encode(320, 180, 15)}"
PCMA = (
    "audiotestsrc is-live=true ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1"
)
AAC = (
    "audiotestsrc is-live=true ! audio/x-raw,rate=16000,channels=1 ! avenc_aac ! aacparse "
    "! rtpmp4gpay name=pay1 pt=97"
)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Live view does not touch the database beyond ownership: SQLite is enough."""
    return f"sqlite:///{tmp_path / 'moydom.db'}"


@pytest.fixture(scope="module")
def camera() -> Iterator[RtspServer]:
    mounts = {"/cam": f"( {VIDEO} )", "/pcma": f"( {VIDEO} {PCMA} )", "/aac": f"( {VIDEO} {AAC} )"}
    with RtspServer(free_port(), mounts) as server:
        yield server


@dataclass
class Live:
    gw: Gateway
    url: str

    def camera(self, number: str, name: str, rtsp_url: str) -> str:
        device: str = self.gw.create_device(number, "camera", name, rtsp_url=rtsp_url)["id"]
        return device

    def token(self, number: str) -> str:
        return self.gw.login(number)["Authorization"].removeprefix("Bearer ")

    def viewer(self, camera: str, token: str) -> WhepViewer:
        return WhepViewer(self.url, camera, token)

    @property
    def upstreams(self) -> int:
        assert self.gw.ctx.live is not None
        return self.gw.ctx.live.relay.open_upstreams

    @property
    def sessions(self) -> int:
        assert self.gw.ctx.live is not None
        return len(self.gw.ctx.live)


@pytest.fixture
def live(gateway_factory: Callable[..., Gateway]) -> Iterator[Live]:
    gw = gateway_factory(
        live_idle_s=1.0,
        live_open_timeout_s=4.0,
        stream_recheck_s=0.5,
        webrtc_host_addresses=["127.0.0.1"],
    )
    with serve(gw.ctx, "127.0.0.1", free_port()) as url:
        yield Live(gw, url)


def run(body: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            await body(http)

    asyncio.run(main())


def rtsp_connections(port: int) -> int:
    """Established TCP connections at the camera's server (its side: source port)."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.splitlines())


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def test_viewer_gets_decodable_frames_without_transcoding(live: Live, camera: RtspServer) -> None:
    live.gw.create_contract("1001")
    cam = live.camera("1001", "hall", camera.url("/cam"))

    async def body(http: httpx.AsyncClient) -> None:
        viewer = live.viewer(cam, live.token("1001"))
        await viewer.start(http)
        await viewer.wait_frames(15)
        frame = viewer.last["video"]
        assert (frame.width, frame.height) == (320, 180)  # decoded here, on the client
        assert viewer.session_url is not None
        assert viewer.session_url.startswith(f"{live.url}/api/v1/cameras/{cam}/whep/")
        video, audio = viewer.answer.split("m=")[1:3]
        assert "H264/90000" in video and "a=sendonly" in video and "VP8" not in video
        assert "a=inactive" in audio  # this camera has no audio
        assert viewer.first_frame_s is not None and viewer.first_frame_s < 5
        print(f"time to first frame (cold upstream): {viewer.first_frame_s:.2f} s")
        assert await viewer.leave(http) == 204
        await viewer.close()

    run(body)


@pytest.mark.slow
def test_viewers_share_one_upstream_closed_when_idle(live: Live, camera: RtspServer) -> None:
    live.gw.create_contract("1001")
    cam = live.camera("1001", "hall", camera.url("/cam"))
    token = live.token("1001")

    async def body(http: httpx.AsyncClient) -> None:
        await until(lambda: rtsp_connections(camera.port) == 0, 10, "no RTSP connection")
        viewers = [live.viewer(cam, token) for _ in range(3)]
        await asyncio.gather(*(v.start(http) for v in viewers))
        await asyncio.gather(*(v.wait_frames(10) for v in viewers))
        assert rtsp_connections(camera.port) == 1
        assert live.upstreams == 1 and live.sessions == 3
        for viewer in viewers[:2]:
            assert await viewer.leave(http) == 204
            await viewer.close()
        await viewers[2].wait_frames(10)  # the last one still watches, on the same upstream
        assert rtsp_connections(camera.port) == 1
        assert await viewers[2].leave(http) == 204
        await viewers[2].close()
        await until(lambda: live.upstreams == 0, 1.0 + 6, "the idle upstream to close")
        await until(lambda: rtsp_connections(camera.port) == 0, 5, "the RTSP connection to close")
        again = live.viewer(cam, token)  # the next viewer opens it again
        await again.start(http)
        await again.wait_frames(5)
        assert live.upstreams == 1
        await again.close()

    run(body)


def test_audio_passes_when_webrtc_can_carry_it_and_is_transcoded_when_not(
    live: Live, camera: RtspServer
) -> None:
    live.gw.create_contract("1001")
    pcma = live.camera("1001", "intercom", camera.url("/pcma"))
    aac = live.camera("1001", "yard", camera.url("/aac"))
    token = live.token("1001")

    async def body(http: httpx.AsyncClient) -> None:
        passed, transcoded = live.viewer(pcma, token), live.viewer(aac, token)
        await asyncio.gather(passed.start(http), transcoded.start(http))
        audio = passed.answer.split("m=")[2]
        assert "PCMA/8000" in audio and "a=sendonly" in audio  # G.711 A-law as the camera sends
        await passed.wait_frames(25, kind="audio")
        samples = passed.last["audio"].samples
        assert samples == 160  # G.711 cut into 20 ms packets
        await passed.wait_frames(5)
        # AAC cannot reach a browser: decoded once and sent as G.711 µ-law, 20 ms a packet.
        audio = transcoded.answer.split("m=")[2]
        assert "PCMU/8000" in audio and "a=sendonly" in audio
        await transcoded.wait_frames(25, kind="audio")
        frame = transcoded.last["audio"]
        assert (frame.samples, frame.sample_rate) == (160, 8000)
        assert abs(frame.to_ndarray().astype(int)).max() > 1000  # a tone, not silence
        await transcoded.wait_frames(5)
        for viewer in (passed, transcoded):
            await viewer.close()

    run(body)


def test_no_one_watches_or_ends_what_is_not_theirs(live: Live, camera: RtspServer) -> None:
    live.gw.create_contract("1001")
    live.gw.create_contract("2002")
    cam = live.camera("1001", "hall", camera.url("/cam"))
    sensor = live.gw.create_device("1001", "motion", "hall-motion")["id"]
    owner, other, owner_again = live.token("1001"), live.token("2002"), live.token("1001")

    async def body(http: httpx.AsyncClient) -> None:
        with pytest.raises(WhepError) as refused:
            await live.viewer(cam, other).start(http)
        assert refused.value.status == 404
        with pytest.raises(WhepError) as not_a_camera:
            await live.viewer(sensor, owner).start(http)
        assert not_a_camera.value.status == 404
        probe = await http.options(
            f"{live.url}/api/v1/cameras/{cam}/whep", headers={"Authorization": f"Bearer {other}"}
        )
        assert probe.status_code == 404
        with pytest.raises(WhepError) as anonymous:
            await live.viewer(cam, "not-a-token").start(http)
        assert anonymous.value.status == 401

        viewer = live.viewer(cam, owner)
        await viewer.start(http)
        await viewer.wait_frames(5)
        assert viewer.session_url is not None
        for token in (other, owner_again):  # another contract; the same contract, another login
            gone = await http.delete(
                viewer.session_url, headers={"Authorization": f"Bearer {token}"}
            )
            assert gone.status_code == 404
        await viewer.wait_frames(5)  # still watching
        trickle = await http.patch(viewer.session_url, headers=viewer.headers)
        assert trickle.status_code == 405  # no trickle ICE: WHEP's answer for that
        wrong_camera = viewer.session_url.replace(cam, sensor)
        assert (await http.delete(wrong_camera, headers=viewer.headers)).status_code == 404
        assert await viewer.leave(http) == 204
        assert await viewer.leave(http) == 404
        await viewer.close()

    run(body)


@pytest.mark.parametrize("revoke", ["suspend", pytest.param("expire", marks=pytest.mark.slow)])
def test_session_ends_when_its_token_stops_working(
    gateway_factory: Callable[..., Gateway], camera: RtspServer, revoke: str
) -> None:
    ttl = 10 if revoke == "expire" else 3600
    gw = gateway_factory(
        stream_recheck_s=0.5, access_token_ttl_s=ttl, webrtc_host_addresses=["127.0.0.1"]
    )
    with serve(gw.ctx, "127.0.0.1", free_port()) as url:
        live = Live(gw, url)
        gw.create_contract("1001")
        cam = live.camera("1001", "hall", camera.url("/cam"))

        async def body(http: httpx.AsyncClient) -> None:
            viewer = live.viewer(cam, live.token("1001"))
            await viewer.start(http)
            await viewer.wait_frames(5)
            if revoke == "suspend":
                r = gw.http.post("/api/v1/admin/contracts/1001/suspend", headers=gw.admin)
                assert r.status_code == 200
            await until(lambda: live.sessions == 0, ttl + 3, "the session to be closed")
            await until(
                lambda: viewer.pc.connectionState in ("closed", "failed"), 10, "the viewer cut"
            )
            await viewer.close()

        run(body)


def test_refused_offers(live: Live, camera: RtspServer) -> None:
    live.gw.create_contract("1001")
    cam = live.camera("1001", "hall", camera.url("/cam"))
    dead = live.camera("1001", "attic", f"rtsp://127.0.0.1:{free_port()}/cam")
    headers = {"Authorization": f"Bearer {live.token('1001')}"}
    endpoint = f"{live.url}/api/v1/cameras/{cam}/whep"
    sdp = {**headers, "Content-Type": "application/sdp"}
    valid = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"

    async def body(http: httpx.AsyncClient) -> None:
        as_json = await http.post(endpoint, json={"sdp": valid}, headers=headers)
        assert as_json.status_code == 415
        huge = await http.post(endpoint, content="a" * 70_000, headers=sdp)
        assert huge.status_code == 413
        for offer in ("hello", valid):  # not SDP; SDP without video
            r = await http.post(endpoint, content=offer, headers=sdp)
            assert r.status_code == 400, r.text
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.name == "VP8"]
        pc.addTransceiver("video", direction="recvonly").setCodecPreferences(vp8)
        await pc.setLocalDescription(await pc.createOffer())
        no_h264 = await http.post(endpoint, content=pc.localDescription.sdp, headers=sdp)
        assert no_h264.status_code == 400 and "H.264" in no_h264.json()["detail"]
        await pc.close()
        with pytest.raises(WhepError) as offline:
            await live.viewer(dead, headers["Authorization"][7:]).start(http)
        assert offline.value.status == 503
        assert live.sessions == 0

    run(body)


def test_viewers_get_time_limited_turn_credentials(gateway_factory: Callable[..., Gateway]) -> None:
    secret = "coturn-static-auth-secret"
    gw = gateway_factory(
        webrtc_ice_servers=[
            {"urls": ["stun:turn.test:3478", "turn:turn.test:3478?transport=udp"]},
            {"urls": ["turns:static.test:443"], "username": "moydom", "credential": "s3cret"},
        ],
        webrtc_turn_secret=secret,
        webrtc_turn_ttl_s=600,
    )
    gw.create_contract("1001")
    gw.create_contract("2002")
    cam = gw.create_device("1001", "camera", "hall", rtsp_url="rtsp://127.0.0.1:9/cam")["id"]
    answer = gw.http.options(f"/api/v1/cameras/{cam}/whep", headers=gw.login("1001"))
    assert answer.status_code == 204
    links = {
        url: dict(re.findall(r'([\w-]+)="([^"]*)"', params))
        for url, params in re.findall(r"<([^>]+)>([^<]*)", answer.headers["link"])
    }
    assert set(links) == {
        "stun:turn.test:3478",
        "turn:turn.test:3478?transport=udp",
        "turns:static.test:443",
    }
    turn = links["turn:turn.test:3478?transport=udp"]
    expires, contract = turn["username"].split(":")
    assert contract == "1001" and abs(int(expires) - (time.time() + 600)) < 10
    mac = hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(mac).decode()
    assert turn["rel"] == "ice-server" and turn["credential-type"] == "password"
    static = links["turns:static.test:443"]
    assert (static["username"], static["credential"]) == ("moydom", "s3cret")
    other = gw.http.options(f"/api/v1/cameras/{cam}/whep", headers=gw.login("2002"))
    assert other.status_code == 404 and "link" not in other.headers
