"""The camera for the benchmark: a 1080p25 H.264 file looped into an RTSP server."""

from __future__ import annotations

import subprocess
from contextlib import ExitStack
from pathlib import Path

from tests.rtsp import RtspServer, udp_h264
from tests.support import free_port

WIDTH, HEIGHT, FPS = 1920, 1080, 25


def make_stream_file(path: Path, seconds: int = 30) -> Path:
    """Encode the test pattern once (a camera's settings: high profile, no B-frames,
    a keyframe a second, 4 Mbit/s) as MPEG-TS, so SPS/PPS repeat in-band."""
    if path.exists():
        return path
    source = ["-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", "-t", str(seconds)]
    h264 = ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high"]
    rate = ["-bf", "0", "-g", str(FPS), "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *source, *h264, *rate, str(path)], check=True)
    return path


def start_camera(stack: ExitStack, stream_file: Path) -> str:
    """Serve the looped file at an RTSP URL; everything stops with ``stack``."""
    rtp_port = free_port()
    server = stack.enter_context(RtspServer(free_port(), {"/cam": udp_h264(rtp_port)}))
    loop = ["-re", "-stream_loop", "-1", "-i", str(stream_file)]
    rtp = ["-c", "copy", "-f", "rtp", f"rtp://127.0.0.1:{rtp_port}"]
    feeder = subprocess.Popen(["ffmpeg", "-v", "error", *loop, *rtp], stdout=subprocess.DEVNULL)
    stack.callback(feeder.wait)
    stack.callback(feeder.kill)
    return server.url("/cam")
