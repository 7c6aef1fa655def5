"""Record one camera from the command line, reporting as JSON lines on stdout.

    python -m recorder.run --camera hall --url rtsp://127.0.0.1:8554/cam --archive var/archive
        [--segment 10] [--motion] [--detect-url URL] [--threshold 30] [--contour-area 10]

First the start-up scan (``{"event": "scanned", ...}`` per segment on disk, crash
leftovers salvaged), then ``segment``, ``status`` and ``motion`` lines as they
happen. SIGTERM or SIGINT stops it cleanly (the open segment is closed). It
is the recorder without the gateway: for tests, benchmarks and a quick look
at a camera; the gateway drives :class:`CameraRecorder` itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from recorder.archive import scan
from recorder.camera import CameraRecorder
from recorder.layout import SegmentInfo
from recorder.motion import MotionConfig, MotionRange
from recorder.source import CameraStatus

_print_lock = threading.Lock()


def emit(event: str, item: SegmentInfo | CameraStatus | MotionRange) -> None:
    """One JSON line: the event's name and the item's fields (times in ISO 8601)."""
    fields: dict[str, Any] = {"event": event, **asdict(item)}
    line = json.dumps(fields, default=str)
    with _print_lock:
        print(line, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--camera", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--segment", type=float, default=10.0, help="seconds")
    parser.add_argument("--motion", action="store_true", help="detect motion")
    parser.add_argument("--detect-url", help="the sub-stream to detect motion on")
    parser.add_argument("--threshold", type=int, default=MotionConfig.threshold)
    parser.add_argument("--contour-area", type=int, default=MotionConfig.contour_area)
    parser.add_argument("--detect-fps", type=float, default=MotionConfig.detect_fps)
    parser.add_argument("--still", type=float, default=MotionConfig.still_s, help="seconds")
    parser.add_argument(
        "--keyframes-only", choices=["auto", "yes", "no"], default="auto", help="detect decoding"
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    for info in scan(args.archive, args.camera):
        emit("scanned", info)
    motion = None
    if args.motion:
        keyframes = {"auto": None, "yes": True, "no": False}[args.keyframes_only]
        motion = MotionConfig(
            threshold=args.threshold,
            contour_area=args.contour_area,
            detect_fps=args.detect_fps,
            still_s=args.still,
            keyframes_only=keyframes,
        )
    recorder = CameraRecorder(
        args.camera,
        args.url,
        args.archive,
        segment_s=args.segment,
        detect_url=args.detect_url,
        motion=motion,
        on_segment=lambda s: emit("segment", s),
        on_motion=lambda m: emit("motion", m),
        on_status=lambda c: emit("status", c),
    )
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _n, _f: done.set())
    recorder.start()
    done.wait()
    recorder.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
