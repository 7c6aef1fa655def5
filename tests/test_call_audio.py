"""An intercom call's media end to end, against a simulated panel: GStreamer's ONVIF RTSP server
sends video and a 440 Hz tone (G.711 µ-law) and writes what arrives on its back-channel to a
file; the gateway serves the call's WHEP endpoint on a real port; an aiortc client on loopback
plays the member's phone, its microphone a 1000 Hz tone. The frequencies that arrive at each end
are measured, not assumed, and so is the time from the answer to the first audio at the panel."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from av import AudioFrame
from prometheus_client import REGISTRY

from recorder.backchannel import BackChannel, BackChannelError
from recorder.live_rtc import restrict_host_addresses
from tests.conftest import Gateway
from tests.netns import serve
from tests.rtsp import RtspServer, backchannel_to_file, encode
from tests.support import free_port
from tests.test_calls import entrance, ring
from tests.test_ingest import wait_until

VISITOR_HZ = 440.0
MEMBER_HZ = 1000.0
RATE = 8000
VIDEO = f"videotestsrc is-live=true pattern=ball ! {encode(320, 180, 15)}"
TONE = (
    f"audiotestsrc is-live=true wave=sine freq={VISITOR_HZ:.0f} volume=0.5 "
    f"! audio/x-raw,rate={RATE},channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0"
)
AAC_TONE = (
    f"audiotestsrc is-live=true wave=sine freq={VISITOR_HZ:.0f} volume=0.5 "
    "! audio/x-raw,rate=16000,channels=1 ! avenc_aac ! aacparse ! rtpmp4gpay name=pay1 pt=97"
)
"""Many panels send AAC by default: the gateway transcodes it to G.711 µ-law for the browser."""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'moydom.db'}"


@dataclass
class Panel:
    server: RtspServer
    heard: Path
    """What the panel's loudspeaker got: µ-law samples, appended as they arrive."""

    @property
    def url(self) -> str:
        return self.server.url("/panel")

    def heard_bytes(self) -> bytes:
        return self.heard.read_bytes() if self.heard.exists() else b""


@pytest.fixture
def panel(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Panel]:
    """The simulated panel; its audio launch line can be given as the fixture's param."""
    audio = getattr(request, "param", TONE)
    heard = tmp_path / "backchannel.ulaw"
    server = RtspServer(
        free_port(), {"/panel": f"( {VIDEO} {audio} )"}, {"/panel": backchannel_to_file(heard)}
    )
    with server:
        yield Panel(server, heard)


def first_audio_observed() -> tuple[float, float]:
    """The gateway's answer-to-first-packet histogram: (count, sum) so far in this process."""
    count = REGISTRY.get_sample_value("moydom_call_first_audio_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("moydom_call_first_audio_seconds_sum") or 0.0
    return count, total


def ulaw_decode(data: bytes) -> np.ndarray[Any, np.dtype[np.int16]]:
    """G.711 µ-law bytes to 16-bit samples (ITU-T G.711's expansion)."""
    u = ~np.frombuffer(data, dtype=np.uint8)
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F).astype(np.int32) << 3) + 0x84) << exponent
    magnitude -= 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def dominant_hz(samples: np.ndarray[Any, Any], rate: int) -> float:
    """The strongest frequency of the samples (Hann window, FFT)."""
    x = samples.astype(np.float64)
    x -= x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


class Tone(AudioStreamTrack):
    """A microphone that hears a sine tone: 20 ms frames at 48 kHz, paced in real time."""

    def __init__(self, hz: float, rate: int = 48000) -> None:
        super().__init__()
        self.hz, self.rate, self._n = hz, rate, 0
        self._t0: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        samples = self.rate // 50
        if self._t0 is None:
            self._t0 = time.monotonic()
        else:
            await asyncio.sleep(max(0.0, self._t0 + self._n / self.rate - time.monotonic()))
        t = (np.arange(samples) + self._n) / self.rate
        pcm = (np.sin(2 * np.pi * self.hz * t) * 12000).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = self.rate, self._n
        frame.time_base = fractions.Fraction(1, self.rate)
        self._n += samples
        return frame


@dataclass
class Phone:
    """A member's phone in a call: receives the panel's video and audio, sends its microphone."""

    base_url: str
    call: int
    token: str
    member: str
    microphone: MediaStreamTrack | None = None
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(RTCConfiguration([])))
    offer_sdp: str = ""
    answer: str = ""
    session_url: str | None = None
    video_frames: int = 0
    audio: list[np.ndarray[Any, Any]] = field(default_factory=list)
    audio_rate: int = 0
    first_audio_at: float | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/api/v1/calls/{self.call}/whep"

    async def offer(self, http: httpx.AsyncClient) -> httpx.Response:
        """Post the offer; on 201 apply the answer."""
        self.pc.addTransceiver("video", direction="recvonly")
        if self.microphone is not None:
            self.pc.addTransceiver(self.microphone, direction="sendrecv")
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on(
            "track", lambda track: self._tasks.append(asyncio.create_task(self._take(track)))
        )
        restrict_host_addresses(self.pc, ["127.0.0.1"])
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offer_sdp = self.pc.localDescription.sdp
        response = await http.post(
            self.endpoint,
            params={"member": self.member} if self.member else {},
            content=self.offer_sdp,
            headers={**self.headers, "Content-Type": "application/sdp"},
        )
        if response.status_code == 201:
            self.session_url = self.base_url + response.headers["location"]
            self.answer = response.text
            await self.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        return response

    async def _take(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.video_frames += 1
                    continue
                assert isinstance(frame, AudioFrame)
                if self.first_audio_at is None:
                    self.first_audio_at = time.monotonic()
                self.audio_rate = frame.sample_rate
                self.audio.append(frame.to_ndarray().reshape(-1))
        except MediaStreamError:
            return

    def audio_seconds(self) -> float:
        return sum(len(a) for a in self.audio) / self.audio_rate if self.audio_rate else 0.0

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Site:
    gw: Gateway
    url: str
    panel: dict[str, Any]
    homes: dict[str, str]

    def token(self, number: str) -> str:
        return self.gw.login(number)["Authorization"].removeprefix("Bearer ")

    def ring(self, call_id: str) -> int:
        """The panel calls flat 12 (contract 4312); the gateway's id of that call."""
        ring(self.gw, self.panel, {"event": "call", "call_id": call_id, "apartment": "12"})
        login = self.gw.login("4312")
        found: list[int] = []

        def rung() -> bool:
            items = self.gw.http.get("/api/v1/calls", headers=login).json()["items"]
            found[:] = [c["id"] for c in items if c["state"] == "ringing"]
            return bool(found)

        wait_until(rung)
        return found[0]

    @property
    def sessions(self) -> int:
        assert self.gw.ctx.live is not None
        return len(self.gw.ctx.live)


@pytest.fixture
def site(gateway_factory: Callable[..., Gateway], panel: Panel) -> Iterator[Site]:
    gw = gateway_factory(
        live_idle_s=1.0,
        live_open_timeout_s=5.0,
        stream_recheck_s=0.5,
        webrtc_host_addresses=["127.0.0.1"],
    )
    building = entrance(gw, panel.url)
    with serve(gw.ctx, "127.0.0.1", free_port()) as url:
        yield Site(gw, url, building["panel"], building["homes"])


def run(body: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            await body(http)

    asyncio.run(main())


@pytest.mark.parametrize("panel", [TONE, AAC_TONE], ids=["pcmu", "aac"], indirect=True)
def test_the_member_hears_the_visitor_and_the_panel_hears_the_member(
    site: Site, panel: Panel
) -> None:
    call = site.ring("c1")
    phone = Phone(site.url, call, site.token("4312"), "Анна", microphone=Tone(MEMBER_HZ))
    gw = site.gw

    async def body(http: httpx.AsyncClient) -> None:
        offered = time.monotonic()
        r = await phone.offer(http)
        assert r.status_code == 201, r.text
        assert phone.session_url is not None
        assert phone.session_url.startswith(f"{site.url}/api/v1/calls/{call}/whep/")
        video, audio = phone.answer.split("m=")[1:3]
        assert "H264/90000" in video and "a=sendonly" in video
        assert "PCMU/8000" in audio and "a=sendrecv" in audio

        # Ringing: the member sees and hears the visitor; the panel hears nothing yet.
        await until(lambda: phone.audio_seconds() >= 1.0, 15, "a second of the visitor's audio")
        assert phone.first_audio_at is not None
        visitor_first_s = phone.first_audio_at - offered
        await until(lambda: phone.video_frames >= 10, 10, "the panel's video")
        heard = dominant_hz(np.concatenate(phone.audio), phone.audio_rate)
        assert abs(heard - VISITOR_HZ) < 10, heard
        assert panel.heard_bytes() == b""  # no back-channel opened while ringing

        # The member answers: from now on the panel hears them.
        observed = first_audio_observed()
        r = await asyncio.to_thread(
            gw.http.post,
            f"/api/v1/calls/{call}/answer",
            json={"member": "Анна"},
            headers=phone.headers,
        )
        assert r.status_code == 200, r.text
        answered = time.monotonic()
        await until(lambda: len(panel.heard_bytes()) > 0, 10, "the member's first audio")
        member_first_s = time.monotonic() - answered
        count, total = first_audio_observed()
        assert count == observed[0] + 1
        sent_s = total - observed[1]  # the gateway's part: answer committed -> first packet sent
        await until(lambda: len(panel.heard_bytes()) >= 2 * RATE, 10, "2 s at the panel")
        at_panel = dominant_hz(ulaw_decode(panel.heard_bytes()[RATE // 2 :]), RATE)
        assert abs(at_panel - MEMBER_HZ) < 10, at_panel
        print(
            f"visitor's tone at the phone: {heard:.1f} Hz, first audio {visitor_first_s:.2f} s "
            f"after the offer; member's tone at the panel: {at_panel:.1f} Hz, first audio "
            f"{member_first_s * 1000:.0f} ms after the answer (sent by the gateway after "
            f"{sent_s * 1000:.0f} ms)"
        )
        assert phone.audio_seconds() > 2.0  # the visitor is still heard during the call

        # The member hangs up: the session ends, the panel stops hearing.
        r = await asyncio.to_thread(
            gw.http.post, f"/api/v1/calls/{call}/hangup", headers=phone.headers
        )
        assert r.status_code == 200, r.text
        await until(lambda: site.sessions == 0, 5, "the call's media to end")
        await until(
            lambda: phone.pc.connectionState in ("closed", "failed"), 10, "the phone cut off"
        )
        size = len(panel.heard_bytes())
        later = await http.post(
            phone.endpoint,
            params={"member": "Анна"},
            content=phone.offer_sdp,
            headers={**phone.headers, "Content-Type": "application/sdp"},
        )
        assert later.status_code == 409  # the call is over
        assert len(panel.heard_bytes()) == size
        await phone.close()

    run(body)


def test_only_the_called_home_gets_the_call_media_and_only_the_answerer_talks(
    site: Site, panel: Panel
) -> None:
    call = site.ring("c2")
    anna, boris = site.token("4312"), site.token("4312")

    async def refused(token: str, member: str = "x") -> int:
        phone = Phone(site.url, call, token, member)
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                return (await phone.offer(http)).status_code
        finally:
            await phone.close()

    async def body(http: httpx.AsyncClient) -> None:
        # The neighbour (flat 14) and the panel's owner (the building's operator): 404.
        assert await refused(site.token("4314")) == 404
        assert await refused(site.token("9000")) == 404
        assert await refused("not-a-token") == 401
        missing = Phone(site.url, call + 1000, anna, "Анна")
        assert (await missing.offer(http)).status_code == 404
        await missing.close()
        probe = await http.options(
            f"{site.url}/api/v1/calls/{call}/whep",
            headers={"Authorization": f"Bearer {site.token('4314')}"},
        )
        assert probe.status_code == 404

        a = Phone(site.url, call, anna, "Анна", microphone=Tone(MEMBER_HZ))
        b = Phone(site.url, call, boris, "Борис", microphone=Tone(MEMBER_HZ * 2))
        assert (await a.offer(http)).status_code == 201
        assert (await b.offer(http)).status_code == 201
        await until(lambda: a.audio_seconds() > 0.5 and b.audio_seconds() > 0.5, 15, "audio")
        assert a.session_url is not None and b.session_url is not None
        for token in (site.token("4314"), boris):  # another contract; another login
            r = await http.delete(a.session_url, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 404
        other_call = a.session_url.replace(f"/calls/{call}/", f"/calls/{call + 1000}/")
        assert (await http.delete(other_call, headers=a.headers)).status_code == 404

        r = await asyncio.to_thread(
            site.gw.http.post,
            f"/api/v1/calls/{call}/answer",
            json={"member": "Анна"},
            headers=a.headers,
        )
        assert r.status_code == 200, r.text
        # Boris's phone stops («отвечено»); Anna's goes on, and only she reaches the panel.
        await until(lambda: site.sessions == 1, 5, "the other member's media to end")
        await until(lambda: b.pc.connectionState in ("closed", "failed"), 10, "Boris cut off")
        assert await refused(boris, "Борис") == 409
        await until(lambda: len(panel.heard_bytes()) >= RATE, 10, "1 s at the panel")
        at_panel = dominant_hz(ulaw_decode(panel.heard_bytes()), RATE)
        assert abs(at_panel - MEMBER_HZ) < 10, at_panel
        assert a.pc.connectionState == "connected"
        assert (await http.delete(a.session_url, headers=a.headers)).status_code == 204
        await until(lambda: site.sessions == 0, 5, "Anna's session to end")
        for phone in (a, b):
            await phone.close()

    run(body)


def test_a_panel_that_drops_the_back_channel_hears_the_member_again(
    site: Site, panel: Panel
) -> None:
    call = site.ring("c3")
    phone = Phone(site.url, call, site.token("4312"), "Анна", microphone=Tone(MEMBER_HZ))

    async def body(http: httpx.AsyncClient) -> None:
        assert (await phone.offer(http)).status_code == 201
        await until(lambda: phone.audio_seconds() > 0.5, 15, "the visitor's audio")
        r = await asyncio.to_thread(
            site.gw.http.post,
            f"/api/v1/calls/{call}/answer",
            json={"member": "Анна"},
            headers=phone.headers,
        )
        assert r.status_code == 200, r.text
        await until(lambda: len(panel.heard_bytes()) >= RATE // 2, 10, "the member at the panel")
        # The panel restarts: its connections drop, and its new pipeline truncates the file.
        await asyncio.to_thread(panel.server.stop)
        panel.heard.unlink()
        await asyncio.to_thread(panel.server.start)
        await until(lambda: len(panel.heard_bytes()) >= RATE, 10, "the member heard again")
        at_panel = dominant_hz(ulaw_decode(panel.heard_bytes()), RATE)
        assert abs(at_panel - MEMBER_HZ) < 10, at_panel
        assert site.sessions == 1  # the call's session lived through it
        await phone.close()

    run(body)


def test_the_back_channel_authenticates_with_digest(tmp_path: Path) -> None:
    """Panels ask for credentials: the URL's user and password answer a Digest challenge."""
    heard = tmp_path / "heard.ulaw"
    server = RtspServer(
        free_port(),
        {"/panel": f"( {VIDEO} {TONE} )"},
        {"/panel": backchannel_to_file(heard)},
        digest=("admin", "s3cr:et"),
    )
    silence = bytes([0xFF]) * 160  # µ-law zero

    async def body() -> None:
        for url in (server.url("/panel"), server.url("/panel").replace("//", "//admin:no@")):
            with pytest.raises(BackChannelError, match="401"):
                await BackChannel(url, 5).open()
        channel = BackChannel(server.url("/panel").replace("//", "//admin:s3cr%3Aet@"), 5)
        await channel.open()
        assert channel.target is not None and channel.target.codec == "PCMU"
        try:
            deadline = time.monotonic() + 10
            while len(heard.read_bytes() if heard.exists() else b"") < 1600:
                assert time.monotonic() < deadline, "nothing reached the panel"
                channel.send(silence)
                await asyncio.sleep(0.02)
        finally:
            await channel.close()

    with server:
        asyncio.run(body())


def test_a_member_needs_the_intercom_permission_in_the_called_home(
    site: Site, panel: Panel
) -> None:
    """Family members (issue 15) get the call's media with «intercom» in the called home, answer
    under their own login, and talk; a member with cameras only is refused (403)."""
    owner = site.gw.login("4312")
    home = site.homes["4312"]
    tokens = {}
    for login, permissions in (
        ("masha@example.org", ["intercom"]),
        ("kolya@example.org", ["cameras"]),
    ):
        invite = {
            "login": login,
            "password": "member password 1",
            "permissions": {home: permissions},
        }
        r = site.gw.http.post("/api/v1/members", json=invite, headers=owner)
        assert r.status_code == 201, r.text
        r = site.gw.http.post(
            "/api/v1/auth/login", json={"contract": login, "password": "member password 1"}
        )
        assert r.status_code == 200, r.text
        tokens[login] = r.json()["access_token"]
    call = site.ring("c4")
    # No member name given: the login is the name, for the media as for the answer.
    masha = Phone(site.url, call, tokens["masha@example.org"], "", microphone=Tone(MEMBER_HZ))
    kolya = Phone(site.url, call, tokens["kolya@example.org"], "")

    async def body(http: httpx.AsyncClient) -> None:
        refused = await kolya.offer(http)
        assert refused.status_code == 403, refused.text
        assert (await masha.offer(http)).status_code == 201
        await until(lambda: masha.audio_seconds() > 0.5, 15, "the visitor's audio")
        r = await asyncio.to_thread(
            site.gw.http.post, f"/api/v1/calls/{call}/answer", headers=masha.headers
        )
        assert r.status_code == 200 and r.json()["answered_by"] == "masha@example.org", r.text
        await until(lambda: len(panel.heard_bytes()) >= RATE, 10, "Masha at the panel")
        assert abs(dominant_hz(ulaw_decode(panel.heard_bytes()), RATE) - MEMBER_HZ) < 10
        assert site.sessions == 1
        for phone in (masha, kolya):
            await phone.close()

    run(body)
