"""The cabinet's camera page in Debian's Chromium against the real gateway and a real RTSP camera:
live view over WHEP (a frame is presented, the mute button toggles the sound), the archive (a
click on the day's timeline plays the recording from there, a typed time seeks in it), an export
with its progress ending in a downloaded MP4 (ffprobe), and a second contract's page that finds
no such camera (its API answers 404 to that page's own token).

Chromium gathers no ICE candidates on loopback, so the browser, the gateway's HTTP server (and its
WebRTC sessions) and one RTSP server run in a network namespace of the test's own (tests/netns.py);
the recorder, which records before the page opens, reads an RTSP server of the same stream on the
same port outside it (the camera's one URL, rtsp://127.0.0.1:<port>/cam, names either side)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from gateway.db.media_models import Recording
from gateway.runtime import start_recorder
from tests import netns
from tests.browser import CHROMIUM, PHONE, accessible, browser, fits_phone, screenshot
from tests.conftest import Gateway
from tests.rtsp import RtspServer
from tests.support import free_port
from tests.test_cabinet_browser import log_in
from tests.test_ingest import wait_until
from tests.test_live_browser import CAMERAS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no {CHROMIUM} (apt install chromium)"),
]
CAMERA = CAMERAS["constrained-baseline"]  # H.264 with G.711 sound
# Long enough that what the page plays and exports lies in the first segment: a range across
# segments fails to remux today when the next segment's start is a few ms before the previous
# one's end (recorder/export.py: non-monotonic DTS, EINVAL), which is not this page's to fix.
SEGMENT_S = 40.0
# Resolves with the number of frames the element has presented once it presents one more.
FRAME = """(id) => new Promise((done) => {
  const video = document.getElementById(id);
  video.requestVideoFrameCallback((now, meta) => done(meta.presentedFrames));
})"""

# The page's own token asks for another contract's camera: its WHEP endpoint and its timeline.
OTHERS = """async (camera) => {
  const auth = {Authorization: `Bearer ${localStorage.getItem("moydom-token")}`};
  const base = `/api/v1/cameras/${camera}`;
  const start = new Date(Date.now() - 3600e3).toISOString(), end = new Date().toISOString();
  const whep = await fetch(`${base}/whep`, {method: "OPTIONS", headers: auth});
  const timeline = await fetch(`${base}/timeline?start=${start}&end=${end}`, {headers: auth});
  return [whep.status, timeline.status];
}"""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the page uses the same API on both backends, which the API tests cover."""
    return f"sqlite:///{tmp_path / 'moydom.db'}"


def recorded(gw: Gateway) -> int:
    with gw.ctx.db.session() as session:
        return int(session.scalar(select(func.count(Recording.id))) or 0)


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    probed: dict[str, Any] = json.loads(out.stdout)
    return probed


def later(clock: str, seconds: int) -> str:
    """``HH:MM:SS`` moved by ``seconds`` (the tests run far from midnight's edge or not at all)."""
    moved = datetime.strptime(clock, "%H:%M:%S") + timedelta(seconds=seconds)
    return moved.strftime("%H:%M:%S")


def live(page: Page) -> dict[str, Any]:
    """The live view plays (a frame presented) and the mute button toggles its sound."""
    page.wait_for_function(
        "() => { const v = document.getElementById('live'); return v && v.videoWidth > 0; }",
        timeout=30_000,
    )
    frames = page.evaluate(FRAME, "live")
    mute = page.locator("#mute")
    muted = [page.evaluate("document.getElementById('live').muted")]
    expect(mute).to_have_accessible_name("Включить звук")
    mute.click()
    muted.append(page.evaluate("document.getElementById('live').muted"))
    expect(mute).to_have_accessible_name("Выключить звук")
    mute.click()
    muted.append(page.evaluate("document.getElementById('live').muted"))
    tracks = page.evaluate("document.getElementById('live').srcObject.getAudioTracks().length")
    return {"frames": frames, "muted": muted, "audio_tracks": tracks}


def archive(page: Page) -> dict[str, Any]:
    """A click on the timeline's recording plays it; a typed time later in it seeks there."""
    span = page.locator("#timeline rect.recorded").first
    expect(span).to_be_attached(timeout=20_000)
    box = span.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => { const v = document.getElementById('archive'); return v.currentTime > 1; }",
        timeout=30_000,
    )
    played = page.evaluate(FRAME, "archive")
    ticks = page.locator(".hours span").all_inner_texts()
    page.get_by_label("Масштаб").select_option(label="15 минут")
    zoomed = page.locator(".hours span").all_inner_texts()
    wide = page.locator("#timeline rect.recorded").first.bounding_box()
    start = page.locator("#at").input_value()
    src = page.evaluate("document.getElementById('archive').currentSrc")
    page.evaluate("document.getElementById('archive').pause()")
    before = page.evaluate("document.getElementById('archive').currentTime")
    target = later(start, 5)
    page.get_by_label("Время", exact=True).fill(target)
    page.get_by_role("button", name="Смотреть").click()
    page.wait_for_function(
        "() => { const v = document.getElementById('archive'); "
        "return !v.seeking && v.currentTime > 4 && v.currentTime < 8; }",
        timeout=20_000,
    )
    seeked = page.evaluate(FRAME, "archive")
    return {
        "played_frames": played,
        "ticks": [ticks, zoomed],
        "zoomed_px": wide["width"] if wide else 0,
        "seeked_frames": seeked,
        "before": before,
        "after": page.evaluate("document.getElementById('archive').currentTime"),
        "same_src": src == page.evaluate("document.getElementById('archive').currentSrc"),
        "position": page.locator("#position").inner_text(),
        "start": start,
        "target": target,
    }


def export(page: Page, tmp: Path) -> dict[str, Any]:
    """A clip of the played recording: progress shown, then a download that is an MP4."""
    start = page.locator("#export-from").input_value()
    page.get_by_label("По", exact=True).fill(later(start, 6))
    page.get_by_role("button", name="Сохранить отрывок").click()
    progress = page.locator("#export-progress")
    expect(progress).to_be_visible()
    link = page.get_by_role("link", name="Скачать MP4")
    expect(link).to_be_visible(timeout=30_000)
    with page.expect_download() as download:
        link.click()
    saved = tmp / "clip.mp4"
    download.value.save_as(saved)
    return {
        "progress": float(progress.get_attribute("value") or 0),
        "status": page.get_by_role("status").first.inner_text(),
        "probe": _summary(ffprobe(saved)),
    }


def test_camera_page_live_archive_and_export(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
) -> None:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    camera_port, http_port = free_port(), free_port()
    gw = gateway_factory(
        webrtc_host_addresses=["10.203.0.1"],
        recorder_segment_s=SEGMENT_S,
        retention_sweep_s=3600,
    )
    gw.create_contract("7101", address="Новосибирск, ул. Лесная, 3")
    gw.create_contract("7102", address="Бердск, ул. Морская, 5")
    rtsp = f"rtsp://127.0.0.1:{camera_port}/cam"
    camera = gw.create_device("7101", "camera", "Подъезд", rtsp_url=rtsp)["id"]
    outside = gw.stack.enter_context(RtspServer(camera_port, {"/cam": CAMERA}))
    assert outside.url("/cam") == rtsp
    start_recorder(gw.settings, gw.ctx.secrets, gw.ctx.db, gw.stack)
    wait_until(lambda: recorded(gw) >= 1, 3 * SEGMENT_S)

    def journey() -> dict[str, Any]:
        with (
            RtspServer(camera_port, {"/cam": CAMERA}),
            netns.serve(gw.ctx, "127.0.0.1", http_port) as url,
        ):
            with browser(
                tmp_path / "owner", PHONE, accept_downloads=True, service_workers="block"
            ) as owner:
                page = owner.new_page()
                log_in(page, url, "7101")
                expect(page).to_have_url(f"{url}/app/")
                page.goto(f"{url}/app/camera?id={camera}")
                got = {"live": live(page), "sessions": len(gw.ctx.live or [])}
                got["archive"] = archive(page)
                got["export"] = export(page, tmp_path)
                fits_phone(page)
                accessible(page)
                got["screenshot"] = str(screenshot(page, "cabinet-camera"))
                page.close()  # pagehide: the live session is DELETEd
                got["left"] = _ended(gw)
            with browser(tmp_path / "other", PHONE, service_workers="block") as other:
                page = other.new_page()
                log_in(page, url, "7102")
                expect(page).to_have_url(f"{url}/app/")
                page.goto(f"{url}/app/camera?id={camera}")
                expect(page.get_by_role("status").first).to_have_text("Камера не найдена")
                got["other_live"] = page.locator("#live").count()
                got["other_api"] = page.evaluate(OTHERS, camera)
                fits_phone(page)
                accessible(page)
                screenshot(page, "cabinet-camera-other-contract")
            return got

    with netns.NetNamespace() as ns:
        got = ns.run(journey)
    print(f"camera page: {got}")
    assert got["live"]["frames"] >= 1 and got["live"]["audio_tracks"] == 1
    assert got["live"]["muted"] == [True, False, True]
    assert got["sessions"] == 1 and got["left"]
    played = got["archive"]
    assert played["played_frames"] >= 1 and played["seeked_frames"] >= 1
    assert played["same_src"], "a time inside the loaded recording seeks, it does not reload"
    assert played["position"].startswith("Воспроизводится: ")
    assert played["ticks"][0] == ["00:00", "06:00", "12:00", "18:00", "24:00"]
    assert played["ticks"][1] != played["ticks"][0] and played["zoomed_px"] > 5
    clip = got["export"]
    assert clip["progress"] == 1.0 and clip["status"] == "Отрывок готов"
    assert "mp4" in clip["probe"]["format"] and clip["probe"]["video"] == ["h264"]
    assert 3 <= clip["probe"]["duration"] <= 10
    assert got["other_live"] == 0 and got["other_api"] == [404, 404]


def _summary(probe: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": probe["format"]["format_name"],
        "duration": float(probe["format"]["duration"]),
        "video": [s["codec_name"] for s in probe["streams"] if s["codec_type"] == "video"],
    }


def _ended(gw: Gateway) -> bool:
    try:
        wait_until(lambda: gw.ctx.live is not None and len(gw.ctx.live) == 0, 10)
    except AssertionError:
        return False
    return True
