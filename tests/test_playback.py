"""Playback of the archive: the timeline, a range as one seekable MP4 served
with byte ranges, exports with progress, snapshots — each only to the
camera's owner — and a stock headless Chromium that plays and seeks them."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright
from sqlalchemy import func, select

from gateway.api.app import create_app
from gateway.db.media_models import Recording
from gateway.runtime import start_context, start_recorder
from tests.conftest import Gateway, make_settings
from tests.rtsp import RtspServer, scene
from tests.support import free_port
from tests.test_ingest import wait_until


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One recording for the module (the tests only read it): a gateway on
    SQLite — the index is tested on both backends in tests/test_recording.py,
    this module is about the media and the browser — with two contracts, the
    first's camera recorded for ~9 s in 2 s segments."""
    tmp = tmp_path_factory.mktemp("playback")
    with ExitStack() as stack:
        camera = RtspServer(free_port(), {"/cam": scene(320, 180, 10, ball=True)})
        camera.start()
        stack.callback(camera.stop)
        settings = make_settings(
            tmp,
            f"sqlite:///{tmp / 'moydom.db'}",
            archive_dir=tmp / "archive",
            recorder_segment_s=2.0,
            retention_sweep_s=3600,
        )
        ctx = start_context(settings, stack)
        gw = Gateway(ctx, stack.enter_context(TestClient(create_app(ctx))), stack)
        gw.create_contract("6301")
        gw.create_contract("6302")
        cam = gw.create_device("6301", "camera", "porch", rtsp_url=camera.url("/cam"))
        role = start_recorder(gw.settings, gw.ctx.secrets, gw.ctx.db, gw.stack)

        def recorded() -> int:
            with gw.ctx.db.session() as session:
                return int(session.scalar(select(func.count(Recording.id))) or 0)

        wait_until(lambda: recorded() >= 4, 40)
        role.stop()
        with gw.ctx.db.session() as session:
            first = session.scalar(select(func.min(Recording.start)))
            last = session.scalar(select(func.max(Recording.end)))
        assert first is not None and last is not None
        yield gw, cam, first, last


def _q(start: datetime, end: datetime) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat()}


def _probe(data: bytes, tmp: Path) -> dict[str, Any]:
    path = tmp / "probe.mp4"
    path.write_bytes(data)
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-show_frames",
            "-select_streams",
            "v",
            "-read_intervals",
            "%+#1",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    info: dict[str, Any] = json.loads(out.stdout)
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    info["decode_errors"] = decode.stderr.strip()
    return info


def test_range_is_one_seekable_mp4_with_byte_ranges(archive: Any, tmp_path: Path) -> None:
    gw, cam, first, last = archive
    owner = gw.login("6301")
    start, end = first + timedelta(seconds=1.5), last - timedelta(seconds=1)
    url = f"/api/v1/cameras/{cam['id']}/recording.mp4"
    r = gw.http.get(url, params=_q(start, end), headers=owner)
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"
    body = r.content
    assert body.index(b"moov") < body.index(b"mdat"), "moov at the front"
    info = _probe(body, tmp_path)
    assert info["decode_errors"] == ""
    assert info["frames"][0]["key_frame"] == 1, "starts on a keyframe"
    duration = float(info["format"]["duration"])
    wanted = (end - start).total_seconds()
    assert wanted - 0.2 <= duration <= wanted + 1.2  # back to the keyframe before start
    part = gw.http.get(url, params=_q(start, end), headers={**owner, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == body[100:200]


def test_export_with_progress_and_snapshot(archive: Any, tmp_path: Path) -> None:
    gw, cam, first, last = archive
    owner = gw.login("6301")
    r = gw.http.post(
        f"/api/v1/cameras/{cam['id']}/exports",
        json={"start": first.isoformat(), "end": last.isoformat()},
        headers=owner,
    )
    assert r.status_code == 202
    job = r.json()["id"]

    def done() -> bool:
        state = gw.http.get(f"/api/v1/exports/{job}", headers=owner).json()
        assert state["status"] != "failed", state
        return bool(state["status"] == "done")

    wait_until(done, 30)
    state = gw.http.get(f"/api/v1/exports/{job}", headers=owner).json()
    assert state["progress"] == 1.0 and state["file"].startswith(f"/api/v1/exports/{job}/file?")
    clip = gw.http.get(state["file"])  # signed: no header needed
    assert clip.status_code == 200 and "attachment" in clip.headers["content-disposition"]
    info = _probe(clip.content, tmp_path)
    assert info["decode_errors"] == ""
    assert float(info["format"]["duration"]) >= (last - first).total_seconds() - 1.5

    snap = gw.http.get(f"/api/v1/cameras/{cam['id']}/snapshot.jpg", headers=owner)
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
    at = first + timedelta(seconds=1)
    snap = gw.http.get(
        f"/api/v1/cameras/{cam['id']}/snapshot.jpg", params={"at": at.isoformat()}, headers=owner
    )
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
    timeline = gw.http.get(
        f"/api/v1/cameras/{cam['id']}/timeline", params=_q(first, last), headers=owner
    ).json()
    assert len(timeline["recorded"]) == 1
    early = gw.http.get(
        f"/api/v1/cameras/{cam['id']}/timeline",
        params=_q(first - timedelta(seconds=30), last),
        headers=owner,
    ).json()
    assert early["availability"][0]["state"] == "online"


def test_another_contract_gets_404_on_every_media_url(archive: Any) -> None:
    gw, cam, first, last = archive
    owner, other = gw.login("6301"), gw.login("6302")
    job = gw.http.post(
        f"/api/v1/cameras/{cam['id']}/exports",
        json={"start": first.isoformat(), "end": last.isoformat()},
        headers=owner,
    ).json()["id"]
    wait_until(
        lambda: gw.http.get(f"/api/v1/exports/{job}", headers=owner).json()["status"] == "done",
        30,
    )
    base = f"/api/v1/cameras/{cam['id']}"
    q = _q(first, last)
    for method, url, kwargs in [
        ("GET", f"{base}/timeline", {"params": q}),
        ("GET", f"{base}/recording.mp4", {"params": q}),
        ("GET", f"{base}/snapshot.jpg", {}),
        ("POST", f"{base}/exports", {"json": {"start": q["start"], "end": q["end"]}}),
        ("GET", f"/api/v1/exports/{job}", {}),
        ("GET", f"/api/v1/exports/{job}/file", {}),
    ]:
        r = gw.http.request(method, url, headers=other, **kwargs)
        assert r.status_code == 404, (url, r.status_code)
        assert gw.http.request(method, url, **kwargs).status_code == 401


def test_signed_urls_work_alone_for_their_resource_only(archive: Any) -> None:
    gw, cam, first, last = archive
    owner = gw.login("6301")
    urls = gw.http.get(
        f"/api/v1/cameras/{cam['id']}/playback", params=_q(first, last), headers=owner
    ).json()
    assert urls["expires_in"] == 600
    r = gw.http.get(urls["recording"])  # no Authorization header: the signature is it
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert gw.http.get(urls["snapshot"]).content[:2] == b"\xff\xd8"
    tampered = urls["recording"].replace("start=", "start=1")
    assert gw.http.get(tampered).status_code in (401, 422)
    moved = urls["recording"].replace("recording.mp4", "snapshot.jpg")
    assert gw.http.get(moved).status_code == 401
    stale = re.sub(r"exp=\d+", "exp=1000", urls["recording"])
    assert gw.http.get(stale).status_code == 401


@contextmanager
def serving(gw: Gateway) -> Iterator[str]:
    """The real app on a loopback port: Chromium needs a server, not a TestClient."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(gw.ctx), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.mark.slow
def test_chromium_plays_and_seeks_a_range_and_an_export(archive: Any) -> None:
    """A stock headless Chromium, given only the signed URLs the API hands
    out, plays the archive range and the export and seeks in both (byte
    ranges, moov at the front)."""
    gw, cam, first, last = archive
    owner = gw.login("6301")
    playback = gw.http.get(
        f"/api/v1/cameras/{cam['id']}/playback", params=_q(first, last), headers=owner
    ).json()["recording"]
    job = gw.http.post(
        f"/api/v1/cameras/{cam['id']}/exports",
        json={"start": first.isoformat(), "end": last.isoformat()},
        headers=owner,
    ).json()["id"]
    wait_until(
        lambda: gw.http.get(f"/api/v1/exports/{job}", headers=owner).json()["status"] == "done",
        30,
    )
    exported = gw.http.get(f"/api/v1/exports/{job}", headers=owner).json()["file"]
    with serving(gw) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        ranges: list[str] = []
        page.on("request", lambda r: ranges.append(r.headers.get("range", "")))
        for url in (playback, exported):
            page.set_content(f'<video id="v" muted preload="auto" src="{base}{url}"></video>')
            page.wait_for_function("document.getElementById('v').readyState >= 2", timeout=20000)
            assert page.evaluate("document.getElementById('v').duration") > 4
            assert page.evaluate("document.getElementById('v').videoWidth") == 320
            page.evaluate("v = document.getElementById('v'); v.currentTime = v.duration - 1.5")
            page.wait_for_function(
                "(() => { const v = document.getElementById('v');"
                " return !v.seeking && v.readyState >= 2 && v.currentTime > v.duration - 2.5; })()",
                timeout=20000,
            )
            page.evaluate("document.getElementById('v').play()")
            page.wait_for_function(
                "document.getElementById('v').getVideoPlaybackQuality().totalVideoFrames > 2",
                timeout=20000,
            )
        browser.close()
    assert any(r.startswith("bytes=") for r in ranges), "Chromium fetched byte ranges"
