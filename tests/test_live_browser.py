"""A stock browser plays a camera: headless Chromium (Debian's) opens the gateway's viewer page,
which posts its WHEP offer, and the ``<video>`` element shows the camera's frames.

Chromium gathers no ICE candidates on loopback, so the camera, the gateway's HTTP server (and so
its WebRTC sessions and RTSP reader) and the browser all run inside a network namespace this test
creates (see tests/netns.py); the broker and the database stay outside, untouched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests import netns
from tests.conftest import Gateway
from tests.rtsp import RtspServer, encode
from tests.support import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
G711 = (
    "audiotestsrc is-live=true ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1"
)
BALL = "videotestsrc is-live=true pattern=ball"
HIGH = (
    "video/x-raw,width=640,height=360,framerate=15/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=600 "
    "! video/x-h264,profile=high ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1"
)
# Cameras send Main or High profile too; the SDP answer can only name Baseline (aiortc knows no
# other), and Chromium decodes what comes regardless.
CAMERAS = {
    "constrained-baseline": f"( {BALL} ! {encode(640, 360, 15)} {G711} )",
    "high": f"( {BALL} ! {HIGH} {G711} )",
}
# Records, in page time (ms since navigation), when the video shows its first frame.
FIRST_FRAME = """
addEventListener("DOMContentLoaded", () => {
  const video = document.getElementById("video");
  video.requestVideoFrameCallback((now) => { window.firstFrameMs = now; });
});
"""
PLAYED = """() => new Promise((done) => {
  const video = document.getElementById("video");
  const start = video.getVideoPlaybackQuality().totalVideoFrames;
  setTimeout(() => done({
    width: video.videoWidth, height: video.videoHeight,
    frames: video.getVideoPlaybackQuality().totalVideoFrames - start,
    audioTracks: video.srcObject.getAudioTracks().length,
  }), 2000);
})"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no {CHROMIUM} (apt install chromium)"),
]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'moydom.db'}"


@pytest.mark.parametrize("profile", list(CAMERAS))
def test_chromium_plays_a_camera_from_the_viewer_page(
    gateway_factory: Callable[..., Gateway], tmp_path: Path, profile: str
) -> None:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    camera_port, http_port = free_port(), free_port()
    gw = gateway_factory(webrtc_host_addresses=["10.203.0.1"])
    gw.create_contract("1001")
    rtsp = f"rtsp://127.0.0.1:{camera_port}/cam"
    camera = gw.create_device("1001", "camera", "hall", rtsp_url=rtsp)["id"]
    token = gw.login("1001")["Authorization"].removeprefix("Bearer ")
    user_data = tmp_path / "chromium"

    def watch() -> dict[str, Any]:
        with (
            RtspServer(camera_port, {"/cam": CAMERAS[profile]}),
            netns.serve(gw.ctx, "127.0.0.1", http_port) as url,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch_persistent_context(
                user_data, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page()
                page.add_init_script(FIRST_FRAME)
                page.goto(f"{url}/live/{camera}#token={token}")
                page.wait_for_function(
                    "() => document.getElementById('video').videoWidth > 0", timeout=20_000
                )
                played: dict[str, Any] = page.evaluate(PLAYED)
                played["first_frame_ms"] = page.evaluate("window.firstFrameMs")
                played["state"] = page.evaluate("document.body.dataset.state")
                played["sessions"] = len(gw.ctx.live) if gw.ctx.live else 0
                page.close()  # pagehide: the page DELETEs its session
                played["left"] = _wait(lambda: gw.ctx.live is not None and len(gw.ctx.live) == 0)
                return played
            finally:
                browser.close()

    with netns.NetNamespace() as ns:
        played = ns.run(watch)
    print(f"Chromium: {played}")
    assert (played["width"], played["height"]) == (640, 360)
    assert played["frames"] >= 15  # 15 fps for 2 s, some slack
    assert played["audioTracks"] == 1  # G.711 from the camera reached the browser
    assert played["state"] == "connection connected"
    assert played["sessions"] == 1 and played["left"]
    assert played["first_frame_ms"] is not None and played["first_frame_ms"] < 10_000


def _wait(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_demo_shows_its_test_camera_live(tmp_path: Path) -> None:
    """The acceptance path: ``moydom demo``, the banner's page, the demo login, the camera."""
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    http_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MOYDOM_")},
        "MOYDOM_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
        "MOYDOM_HTTP_PORT": str(http_port),
        "MOYDOM_DEMO_RTSP_PORT": str(free_port()),
    }
    moydom = Path(sys.executable).with_name("moydom")

    def watch() -> dict[str, Any]:
        demo = subprocess.Popen([str(moydom), "demo"], cwd=tmp_path, env=env)
        try:
            url = f"http://127.0.0.1:{http_port}"
            assert _wait(lambda: _healthy(url), timeout=60), "the demo did not start"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch_persistent_context(
                    tmp_path / "chromium", executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                try:
                    page = browser.new_page()
                    page.goto(f"{url}/live")
                    page.fill("input[name=contract]", "100200300")
                    page.fill("input[name=password]", "demo-password")
                    page.click("button")
                    page.click("text=Камера в прихожей")
                    page.wait_for_function(
                        "() => document.getElementById('video').videoWidth > 0", timeout=20_000
                    )
                    played: dict[str, Any] = page.evaluate(PLAYED)
                    return played
                finally:
                    browser.close()
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(30)

    with netns.NetNamespace() as ns:
        played = ns.run(watch)
    print(f"Chromium on the demo: {played}")
    assert played["width"] > 0 and played["frames"] >= 10


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
