"""The cases and one timed run of a case: CPU seconds per minute of video."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: Wall time between start and the timed window: RTSP setup (~1.5 s) and
#: Python's imports are not part of a camera's steady cost.
WARM_UP_S = 6.0
FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp"]


def cpu_seconds(pid: int) -> float:
    """CPU time of a process's threads in ns resolution (``/proc/<pid>/task/*/schedstat``).

    utime + stime in /proc/<pid>/stat count 10 ms ticks: a recorder using
    0.3 % of a core gets 6 ticks in 20 s, too coarse to compare two of them.
    Threads that ended before the reading are missed; the processes measured
    keep theirs for their lifetime.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError):
            continue  # the thread ended just now
    return total / 1e9


@dataclass(frozen=True)
class Case:
    """A process reading the camera; ``writes`` says it must leave .mp4 files behind."""

    name: str
    command: Callable[[str, Path], list[str]]
    writes: bool = False


def _recorder(*extra: str) -> Callable[[str, Path], list[str]]:
    def command(url: str, out: Path) -> list[str]:
        head = [sys.executable, "-m", "recorder.run", "--camera", "bench", "--url", url]
        return [*head, "--archive", str(out), "--segment", "10", *extra]

    return command


def _ffmpeg_null(*decode: str) -> Callable[[str, Path], list[str]]:
    def command(url: str, _out: Path) -> list[str]:
        return [
            *FFMPEG,
            *decode,
            "-i",
            url,
            *(["-c", "copy"] if not decode else []),
            "-f",
            "null",
            "-",
        ]

    return command


def _ffmpeg_segments(url: str, out: Path) -> list[str]:
    segment = ["-f", "segment", "-segment_time", "10", "-reset_timestamps", "1"]
    return [*FFMPEG, "-i", url, "-c", "copy", *segment, str(out / "out%03d.mp4")]


FFMPEG_COPY = Case("ffmpeg copy", _ffmpeg_segments, writes=True)
MOYDOM_RECORD = Case("moydom record", _recorder(), writes=True)
FFMPEG_READ = Case("ffmpeg read", _ffmpeg_null())
DECODE_KEYFRAMES = Case(
    "ffmpeg decode keyframes", _ffmpeg_null("-threads", "1", "-skip_frame", "nokey")
)
DECODE_ALL = Case("ffmpeg decode every frame", _ffmpeg_null("-threads", "1"))
MOTION_KEYFRAMES = Case("moydom motion keyframes", _recorder("--motion"), writes=True)
MOTION_ALL = Case(
    "moydom motion every frame", _recorder("--motion", "--keyframes-only", "no"), writes=True
)
CASES = [
    FFMPEG_COPY,
    MOYDOM_RECORD,
    FFMPEG_READ,
    DECODE_KEYFRAMES,
    MOTION_KEYFRAMES,
    DECODE_ALL,
    MOTION_ALL,
]


def timed_run(case: Case, url: str, out: Path, seconds: float, warm_up: float = WARM_UP_S) -> float:
    """Start the case, let it warm up, measure its CPU over ``seconds``; per minute of video."""
    out.mkdir(parents=True)
    process = subprocess.Popen(
        case.command(url, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(warm_up)
        before = cpu_seconds(process.pid)
        time.sleep(seconds)
        used = cpu_seconds(process.pid) - before
        if process.poll() is not None:
            raise RuntimeError(f"{case.name} exited early: {process.communicate()[1][-500:]}")
    finally:
        process.send_signal(signal.SIGINT)  # both ffmpeg and recorder.run close their files
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if case.writes and not any(out.rglob("*.mp4")):
        raise RuntimeError(f"{case.name} wrote no segment: {process.communicate()[1][-500:]}")
    return used / seconds * 60
