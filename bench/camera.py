"""The recorder's and live view's benchmark camera: a test pattern encoded once
as a camera would, looped by ``ffmpeg -re -c copy`` as RTP into a local
GStreamer RTSP server, so the camera itself costs almost nothing."""

from __future__ import annotations

import argparse
import subprocess
from contextlib import ExitStack
from pathlib import Path

from tests.rtsp import RtspServer, udp_h264
from tests.support import free_port

WIDTH, HEIGHT, FPS = 1920, 1080, 25


def frame_size(text: str) -> tuple[int, int]:
    """``--size WxH`` (an argparse type)."""
    try:
        width, height = (int(n) for n in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not WIDTHxHEIGHT: {text!r}") from None
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"{text}: even sizes of at least 16 pixels")
    return width, height


def stream_file(
    cache: Path, profile: str, size: tuple[int, int] = (WIDTH, HEIGHT), seconds: int = 30
) -> Path:
    """The test pattern encoded once into ``cache`` (H.264 ``profile``, no
    B-frames, a keyframe a second, 4 Mbit/s) as MPEG-TS, so SPS/PPS repeat in-band."""
    width, height = size
    path = cache / f"testsrc2-{width}x{height}p{FPS}-{profile}.ts"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    source = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={FPS}", "-t", str(seconds)]
    h264 = ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", profile]
    rate = ["-bf", "0", "-g", str(FPS), "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M"]
    partial = path.with_suffix(".partial.ts")  # an interrupted encode is not cached
    subprocess.run(["ffmpeg", "-v", "error", "-y", *source, *h264, *rate, str(partial)], check=True)
    partial.rename(path)
    return path


def start_camera(stack: ExitStack, video: Path) -> str:
    """Serve the looped file at an RTSP URL; everything stops with ``stack``."""
    rtp_port = free_port()
    server = stack.enter_context(RtspServer(free_port(), {"/cam": udp_h264(rtp_port)}))
    loop = ["-re", "-stream_loop", "-1", "-i", str(video)]
    rtp = ["-c", "copy", "-f", "rtp", f"rtp://127.0.0.1:{rtp_port}"]
    feeder = subprocess.Popen(["ffmpeg", "-v", "error", *loop, *rtp], stdout=subprocess.DEVNULL)
    stack.callback(feeder.wait)
    stack.callback(feeder.kill)
    return server.url("/cam")
