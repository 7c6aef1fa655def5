"""The command line, ``python -m bench.live``: the method is in the package docstring."""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import live
from bench.camera import FPS, HEIGHT, WIDTH, frame_size, start_camera, stream_file
from bench.live.rig import Crowd, GatewayProcess, start_gateway, start_recorder
from bench.recorder.cases import cpu_seconds  # ns resolution, not 10 ms ticks

TARGET_PER_VIEWER = 0.02
UPSTREAMS = "moydom_live_upstreams"
PER_PROCESS = 10
CACHE = Path("var/bench")


def busy(pid: int, seconds: float) -> float:
    """The share of one core ``pid`` used over the next ``seconds``."""
    start, began = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - start) / (time.monotonic() - began)


def keep_if_failed(tmp: Path, failed: bool) -> None:
    """Remove the run's files, unless it failed: then the gateway's log is worth reading."""
    if failed:
        print(f"kept {tmp} (the gateway's log: var/gateway.log)")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class Step:
    viewers: int
    cpu: float
    """The gateway's share of one core."""
    upstreams: float
    slowest_fps: float
    """The video frame rate of the viewer that got the fewest frames in the window."""


def measure(gateway: GatewayProcess, crowds: list[Crowd], seconds: float) -> Step:
    """The gateway's CPU over ``seconds``, and what the viewers received meanwhile."""
    before = [n for crowd in crowds for n in crowd.frames()]
    cpu = busy(gateway.pid, seconds)
    after = [n for crowd in crowds for n in crowd.frames()]
    slowest = min(b - a for a, b in zip(before, after, strict=True)) / seconds
    return Step(len(after), cpu, gateway.metric(UPSTREAMS), slowest)


def join(gateway: GatewayProcess, count: int) -> tuple[list[Crowd], list[float]]:
    """``count`` more viewers, in processes of at most PER_PROCESS; their times to first frame."""
    crowds = [Crowd(gateway, min(PER_PROCESS, count - n)) for n in range(0, count, PER_PROCESS)]
    return crowds, [t for crowd in crowds for t in crowd.first_frames()]


def main() -> None:
    doc = live.__doc__ or ""
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=doc.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per step")
    parser.add_argument("--settle", type=float, default=3.0, help="wait before measuring")
    parser.add_argument("--steps", default="1,10,50", help="viewer counts, ascending")
    parser.add_argument(
        "--size", type=frame_size, default=(WIDTH, HEIGHT), metavar="WxH", help="the camera's"
    )
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    video = stream_file(CACHE, "main", args.size)
    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="moydom-bench-live-"))
        stack.push(lambda failed, *_: keep_if_failed(tmp, failed is not None))
        camera = start_camera(stack, video)
        (tmp / "var").mkdir()
        gateway = start_gateway(stack, tmp / "var", camera)
        time.sleep(args.settle)
        idle = busy(gateway.pid, args.seconds)
        rows: list[Step] = []
        crowds: list[Crowd] = []
        cold, warm = 0.0, []
        for count in steps:
            added, times = join(gateway, count - sum(c.count for c in crowds))
            if not crowds:
                cold, times = times[0], times[1:]
            crowds += added
            warm += times
            time.sleep(args.settle)
            rows.append(measure(gateway, crowds, args.seconds))
        for crowd in crowds:
            crowd.leave()
        time.sleep(4)  # live_idle_s is 2 in the rig
        upstreams_after = gateway.metric(UPSTREAMS)
        recorder = start_recorder(stack, camera, tmp / "archive")
        time.sleep(args.settle)
        record = busy(recorder.pid, args.seconds)
        recorder.terminate()
        copy = ffmpeg_copy(stack, camera, tmp / "ffmpeg", args)
    report(args.size[1], idle, rows, record, copy, cold, warm, upstreams_after)


def ffmpeg_copy(stack: ExitStack, camera: str, out: Path, args: argparse.Namespace) -> float:
    """``ffmpeg -c copy`` into 10 s segments (what Frigate runs), for scale."""
    out.mkdir()
    cmd = ["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", camera, "-c", "copy"]
    cmd += ["-f", "segment", "-segment_time", "10", "-reset_timestamps", "1", str(out / "%03d.mp4")]
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    stack.callback(process.wait, 10)
    stack.callback(process.terminate)
    time.sleep(args.settle)
    return busy(process.pid, args.seconds)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else "n/a (no CPU measured)"


def report(
    height: int,
    idle: float,
    rows: list[Step],
    record: float,
    copy: float,
    cold: float,
    warm: list[float],
    upstreams_after: float,
) -> None:
    print(f"\nLive view, one {height}p{FPS} H.264 camera (4 Mbit/s), aiortc viewers on loopback")
    print(f"gateway idle (no viewer):            {idle:6.1%} of a core")
    print("viewers   gateway CPU   upstreams   slowest viewer")
    for row in rows:
        starved = "" if row.slowest_fps >= 0.9 * FPS else "   starved: CPU is a lower bound"
        print(
            f"{row.viewers:7d}   {row.cpu:10.1%}   {row.upstreams:9.0f}   "
            f"{row.slowest_fps:8.1f} fps{starved}"
        )
    for a, b in itertools.pairwise(rows):
        per = (b.cpu - a.cpu) / (b.viewers - a.viewers)
        verdict = "meets" if per <= TARGET_PER_VIEWER else "MISSES"
        print(f"per added viewer {a.viewers}→{b.viewers}: {per:6.2%} of a core ({verdict} ≤ 2 %)")
    one = rows[0].cpu - idle if rows and rows[0].viewers == 1 else float("nan")
    print(f"live path, 1 viewer (over idle):     {one:6.1%}")
    print(f"recorder copy path (recorder.run):   {record:6.1%}  live/record = {ratio(one, record)}")
    print(f"ffmpeg -c copy (segments):           {copy:6.1%}  live/ffmpeg = {ratio(one, copy)}")
    if warm:
        p50 = statistics.median(warm)
        p95 = statistics.quantiles(warm, n=20)[18] if len(warm) >= 2 else warm[0]
        print(f"time to first frame: cold {cold:.2f} s; warm p50 {p50:.2f} s, p95 {p95:.2f} s")
    print(f"upstreams after the last viewer left (+ idle): {upstreams_after:.0f}")


if __name__ == "__main__":
    main()
