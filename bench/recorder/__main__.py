"""The command line, ``python -m bench.recorder``: the options are in the package docstring."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench import recorder
from bench.camera import FPS, HEIGHT, WIDTH, frame_size, start_camera, stream_file
from bench.recorder.cases import (
    CASES,
    DECODE_ALL,
    DECODE_KEYFRAMES,
    FFMPEG_COPY,
    FFMPEG_READ,
    MOTION_ALL,
    MOTION_KEYFRAMES,
    MOYDOM_RECORD,
    WARM_UP_S,
    Case,
    timed_run,
)

TARGET_RECORD = 1.5
TARGET_MOTION = 1.3
#: The encoded test pattern is kept here between runs (encoding it takes a while).
CACHE = Path("var/bench")


def main() -> None:
    doc = recorder.__doc__
    parser = argparse.ArgumentParser(
        prog="python -m bench.recorder", description=doc.split("\n\n")[0] if doc else None
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="timed window per run")
    parser.add_argument(
        "--warm-up", type=float, default=WARM_UP_S, help="seconds before each timed window"
    )
    parser.add_argument(
        "--size", type=frame_size, default=(WIDTH, HEIGHT), metavar="WxH", help="the camera's"
    )
    parser.add_argument("--keep", action="store_true", help="keep the recorded files")
    args = parser.parse_args()
    width, height = args.size
    stream = stream_file(CACHE, "high", args.size)
    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="moydom-bench-recorder-"))
        if args.keep:
            stack.callback(print, f"kept {tmp}")
        else:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        url = start_camera(stack, stream)
        print(
            f"recorder benchmark: {width}x{height}p{FPS} H.264 at 4 Mbit/s over RTSP/TCP ({url}); "
            f"{args.runs} runs x {args.seconds:.0f} s per case; {os.cpu_count()} CPUs (shared)"
        )
        samples: dict[Case, list[float]] = {case: [] for case in CASES}
        for run in range(args.runs):
            for case in CASES:
                out = tmp / f"{run}-{CASES.index(case)}"
                cpu = timed_run(case, url, out, args.seconds, args.warm_up)
                samples[case].append(cpu)
                print(f"  run {run + 1} {case.name}: {cpu:.2f} CPU s / min", flush=True)
        report({case: statistics.median(values) for case, values in samples.items()}, samples)


def report(median: dict[Case, float], samples: dict[Case, list[float]]) -> None:
    """The table of medians, the ratios against the targets, cameras per core."""
    print()
    print(f"{'case':<28} {'CPU s / min of video':>21}   runs")
    for case, value in median.items():
        runs = " ".join(f"{v:.2f}" for v in samples[case])
        print(f"{case.name:<28} {value:21.2f}   {runs}")
    print()
    record = median[MOYDOM_RECORD] / median[FFMPEG_COPY]
    verdict = "met" if record <= TARGET_RECORD else "NOT met"
    print(f"recording: moydom / ffmpeg copy = {record:.2f} (target ≤ {TARGET_RECORD}: {verdict})")
    for motion, decode in ((MOTION_KEYFRAMES, DECODE_KEYFRAMES), (MOTION_ALL, DECODE_ALL)):
        extra = median[motion] - median[MOYDOM_RECORD]
        decoding = median[decode] - median[FFMPEG_READ]
        ratio = extra / decoding if decoding > 0 else float("inf")
        verdict = "met" if ratio <= TARGET_MOTION else "NOT met"
        print(
            f"{motion.name}: +{extra:.2f} over recording; decoding alone +{decoding:.2f} "
            f"over reading; ratio {ratio:.2f} (target ≤ {TARGET_MOTION}: {verdict})"
        )
    for case in (FFMPEG_COPY, MOYDOM_RECORD, MOTION_KEYFRAMES, MOTION_ALL):
        print(f"cameras per core (CPU only), {case.name}: {60 / median[case]:.0f}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # everything started is stopped by now
        print("interrupted; everything it started is stopped", file=sys.stderr)
        raise SystemExit(130) from None
