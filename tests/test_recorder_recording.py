"""The recorder against a real RTSP server: valid segments, kill -9, a camera that vanishes.

The recorder runs as a child process (``python -m recorder.run``) so that it
can be killed like a crashed gateway; its callbacks arrive as JSON lines.
"""

from __future__ import annotations

import itertools
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recorder.archive import scan
from recorder.source import Backoff
from tests.rtsp import RtspServer, scene, with_audio
from tests.support import free_port

FINAL = re.compile(r"\d{6}\.\d{3}_\d+ms(_motion)?\.mp4")


class Recorder:
    """``python -m recorder.run`` as a child process, its JSON lines in a queue."""

    def __init__(self, url: str, archive: Path, camera: str = "hall", segment: float = 10) -> None:
        args = [sys.executable, "-m", "recorder.run", "--camera", camera, "--url", url]
        args += ["--archive", str(archive), "--segment", str(segment)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def expect(self, event: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """The next line of this event (with these fields), keeping every line read in ``seen``."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            self.seen.append(item)
            if item["event"] == event and all(item[k] == v for k, v in fields.items()):
                return item

    def events(self, event: str) -> list[dict[str, Any]]:
        return [item for item in self.seen if item["event"] == event]

    def stop(self) -> None:
        """SIGTERM: the recorder closes its open segment and exits."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(20) == 0
        while not self.lines.empty():
            self.seen.append(self.lines.get())

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        while not self.lines.empty():
            self.seen.append(self.lines.get())


@pytest.fixture
def camera() -> Iterator[RtspServer]:
    """A 320x180, 10 fps camera with a moving ball and an AAC tone."""
    server = RtspServer(free_port(), {"/cam": with_audio(scene(320, 180, 10, ball=True))})
    server.start()
    yield server
    server.stop()


def ffprobe(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ffprobe", "-v", "error", *args, "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )


def check_playable(path: Path) -> dict[str, Any]:
    """Every frame decodes without an error, the first is a keyframe; returns the streams."""
    frames = ffprobe(
        path, "-show_frames", "-select_streams", "v", "-show_entries", "frame=key_frame"
    )
    assert frames.stderr == "", f"{path}: {frames.stderr}"
    assert json.loads(frames.stdout)["frames"][0]["key_frame"] == 1
    streams = ffprobe(path, "-show_entries", "stream=codec_type,duration")
    return {s["codec_type"]: float(s["duration"]) for s in json.loads(streams.stdout)["streams"]}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.slow
def test_segments_are_cut_on_keyframes_remuxed_playable_and_match_the_disk(
    camera: RtspServer, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    rec = Recorder(camera.url("/cam"), archive)
    rec.expect("status", online=True)
    for _ in range(2):
        rec.expect("segment")
    rec.stop()
    infos = rec.events("segment")
    assert len(infos) == 3  # two full ones and the one closed by SIGTERM
    for info in infos[:2]:
        assert abs(when(info["end"]) - when(info["start"]) - timedelta(seconds=10)) < timedelta(
            seconds=1.01
        )
    for earlier, later in itertools.pairwise(infos):
        gap = when(later["start"]) - when(earlier["end"])
        assert abs(gap) < timedelta(seconds=0.3), "consecutive segments leave no gap"
    for info in infos:
        path = Path(info["path"])
        start = when(info["start"])
        assert path.parent == archive / "hall" / start.strftime("%Y-%m-%d")
        assert FINAL.fullmatch(path.name) and path.name.startswith(start.strftime("%H%M%S"))
        assert info["bytes"] == path.stat().st_size and info["keyframe_at_start"]
        durations = check_playable(path)
        assert set(durations) == {"video", "audio"}
        expected = (when(info["end"]) - start).total_seconds()
        assert abs(durations["video"] - expected) < 0.05
    on_disk = scan(archive, "hall")
    assert [str(s.path) for s in on_disk] == [i["path"] for i in infos]
    for found, info in zip(on_disk, infos, strict=True):
        assert abs(found.start - when(info["start"])) < timedelta(milliseconds=1)
        assert abs(found.end - when(info["end"])) < timedelta(milliseconds=2)
        assert found.bytes == info["bytes"] and found.motion == info["motion"]
    assert not list(archive.rglob("*.part"))


@pytest.mark.slow
def test_kill_9_leaves_closed_segments_playable_and_the_open_one_salvaged(
    camera: RtspServer, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    rec = Recorder(camera.url("/cam"), archive, segment=4)
    closed = [rec.expect("segment") for _ in range(2)]
    time.sleep(2.5)  # into the third segment: a couple of fragments written
    rec.kill()
    parts = list(archive.rglob("*.mp4.part"))
    assert len(parts) == 1
    for info in closed:
        check_playable(Path(info["path"]))

    restarted = Recorder(camera.url("/cam"), archive, segment=4)
    restarted.expect("segment")  # scanned first, then recording goes on
    restarted.stop()
    scanned = restarted.events("scanned")
    assert [s["path"] for s in scanned[:2]] == [c["path"] for c in closed]
    salvaged = scanned[2]
    assert abs(when(salvaged["start"]) - when(closed[-1]["end"])) < timedelta(seconds=0.3)
    duration = (when(salvaged["end"]) - when(salvaged["start"])).total_seconds()
    assert 1.0 <= duration <= 4.0
    assert abs(check_playable(Path(salvaged["path"]))["video"] - duration) < 0.05
    assert not parts[0].exists() and not list(archive.rglob("*.part"))


@pytest.mark.slow
def test_a_camera_that_vanishes_goes_offline_and_recording_resumes_after_a_gap(
    camera: RtspServer, tmp_path: Path
) -> None:
    rec = Recorder(camera.url("/cam"), tmp_path / "archive", segment=3)
    rec.expect("status", online=True)
    rec.expect("segment")
    camera.stop()
    offline = rec.expect("status", online=False)
    cut = rec.events("segment")[-1]  # the open segment, closed at the disconnect
    assert len(rec.events("segment")) == 2
    time.sleep(3)
    camera.start()
    online = rec.expect("status", online=True)
    resumed = rec.expect("segment")
    rec.stop()
    assert when(online["at"]) - when(offline["at"]) >= timedelta(seconds=3)
    assert when(resumed["start"]) - when(cut["end"]) >= timedelta(seconds=3)
    check_playable(Path(cut["path"]))
    check_playable(Path(resumed["path"]))
    assert [s["online"] for s in rec.events("status")] == [True, False, True]


def test_a_camera_that_never_answers_is_reported_offline(tmp_path: Path) -> None:
    rec = Recorder(f"rtsp://127.0.0.1:{free_port()}/cam", tmp_path / "archive")
    status = rec.expect("status", timeout=10)
    rec.stop()
    assert status["online"] is False and "connect failed" in status["reason"]
    assert rec.events("status") == [status]
    assert not list(tmp_path.rglob("*.mp4"))


def test_reconnect_delays_double_up_to_the_cap_and_reset_after_a_good_connection() -> None:
    backoff = Backoff(initial=0.5, cap=4)
    assert [backoff.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    backoff.reset()
    assert backoff.next() == 0.5
