"""Two-way call audio with a stock browser: headless Chromium (Debian's), its microphone a WAV file
holding a 1000 Hz tone (``--use-file-for-fake-audio-capture``), posts a call's WHEP offer with
that microphone; the member answers; the simulated panel's back-channel must receive 1000 Hz, and
the browser's Web Audio analyser must hear the panel's 440 Hz.

Chromium gathers no ICE candidates on loopback, so the panel, the gateway's HTTP server (and its
WebRTC sessions, RTSP reader and back-channel) and the browser run inside a network namespace the
test creates (tests/netns.py); the broker, ingest and the database stay outside.
"""

from __future__ import annotations

import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from tests import netns
from tests.conftest import Gateway
from tests.rtsp import RtspServer, backchannel_to_file
from tests.support import free_port
from tests.test_call_audio import MEMBER_HZ, RATE, TONE, VIDEO, VISITOR_HZ, dominant_hz, ulaw_decode
from tests.test_calls import entrance, ring
from tests.test_ingest import wait_until
from tests.test_live_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no {CHROMIUM} (apt install chromium)"),
]

# The page's side: microphone, offer, answer, and a Web Audio analyser on what arrives.
CALL = """async ({endpoint, token}) => {
  const mic = await navigator.mediaDevices.getUserMedia({audio: true});
  const pc = new RTCPeerConnection({iceServers: []});
  window.pc = pc;
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addTransceiver(mic.getAudioTracks()[0], {direction: "sendrecv", streams: [mic]});
  pc.ontrack = (event) => {
    if (event.track.kind !== "audio") return;
    const stream = new MediaStream([event.track]);
    const sink = new Audio();  // Chromium pulls remote audio only for a playing element
    sink.muted = true;
    sink.srcObject = stream;
    sink.play();
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 16384;
    context.createMediaStreamSource(stream).connect(analyser);
    window.visitorHz = () => {
      const bins = new Float32Array(analyser.frequencyBinCount);
      analyser.getFloatFrequencyData(bins);
      let best = 0;
      for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
      return {hz: best * context.sampleRate / analyser.fftSize, db: bins[best]};
    };
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
  });
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {"Authorization": `Bearer ${token}`, "Content-Type": "application/sdp"},
    body: pc.localDescription.sdp,
  });
  const answer = await response.text();
  if (response.status !== 201) return {status: response.status, detail: answer};
  await pc.setRemoteDescription({type: "answer", sdp: answer});
  return {status: 201, answer};
}"""


def tone_wav(path: Path, hz: float, seconds: float = 20.0, rate: int = 48000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * hz * t) * 12000).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'moydom.db'}"


def test_chromium_talks_to_the_panel_and_hears_the_visitor(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    panel_port, http_port = free_port(), free_port()
    heard = tmp_path / "backchannel.ulaw"
    gw = gateway_factory(stream_recheck_s=0.5, webrtc_host_addresses=["10.203.0.1"])
    site = entrance(gw, f"rtsp://127.0.0.1:{panel_port}/panel")
    login = gw.login("4312")
    token = login["Authorization"].removeprefix("Bearer ")
    ring(gw, site["panel"], {"event": "call", "call_id": "b1", "apartment": "12"})
    calls: list[int] = []

    def rung() -> bool:
        items = gw.http.get("/api/v1/calls", headers=login).json()["items"]
        calls[:] = [c["id"] for c in items if c["state"] == "ringing"]
        return bool(calls)

    wait_until(rung)
    call = calls[0]
    microphone = tone_wav(tmp_path / "tone.wav", MEMBER_HZ)
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    ]

    def talk() -> dict[str, Any]:
        with (
            RtspServer(
                panel_port,
                {"/panel": f"( {VIDEO} {TONE} )"},
                {"/panel": backchannel_to_file(heard)},
            ),
            netns.serve(gw.ctx, "127.0.0.1", http_port) as url,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch_persistent_context(
                tmp_path / "chromium", executable_path=CHROMIUM, headless=True, args=args
            )
            try:
                page = browser.new_page()
                page.goto(f"{url}/live")
                endpoint = f"{url}/api/v1/calls/{call}/whep"
                offered = page.evaluate(CALL, {"endpoint": endpoint, "token": token})
                assert offered["status"] == 201, offered
                page.wait_for_function("() => window.pc.connectionState === 'connected'")
                page.wait_for_function("() => window.visitorHz && window.visitorHz().db > -60")
                ringing_bytes = len(heard.read_bytes()) if heard.exists() else 0
                r = gw.http.post(
                    f"/api/v1/calls/{call}/answer", json={"member": "4312"}, headers=login
                )
                assert r.status_code == 200, r.text
                answered = time.monotonic()
                first = _wait(lambda: heard.exists() and heard.stat().st_size > 0)
                first_s = time.monotonic() - answered
                _wait(lambda: heard.stat().st_size >= 2 * RATE)
                visitor = page.evaluate("window.visitorHz()")
                return {
                    "answer": offered["answer"],
                    "ringing_bytes": ringing_bytes,
                    "first": first,
                    "first_s": first_s,
                    "visitor": visitor,
                }
            finally:
                browser.close()

    with netns.NetNamespace() as ns:
        got = ns.run(talk)
    audio = got["answer"].split("m=")[2]
    assert "a=sendrecv" in audio
    assert got["ringing_bytes"] == 0  # nothing reached the door while it rang
    assert got["first"], "the member's voice never reached the panel"
    at_panel = dominant_hz(ulaw_decode(heard.read_bytes()[RATE // 2 :]), RATE)
    print(
        f"Chromium: its microphone's {MEMBER_HZ:.0f} Hz at the panel as {at_panel:.1f} Hz, first "
        f"{got['first_s'] * 1000:.0f} ms after the answer; the visitor's {VISITOR_HZ:.0f} Hz "
        f"in the browser as {got['visitor']['hz']:.1f} Hz ({got['visitor']['db']:.0f} dB)"
    )
    assert abs(at_panel - MEMBER_HZ) < 10, at_panel
    assert abs(got["visitor"]["hz"] - VISITOR_HZ) < 10, got["visitor"]


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
