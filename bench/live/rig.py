"""The benchmark's parts: a 1080p camera that costs almost nothing, the gateway as a process of its
own (so its CPU is its own), viewer processes, and the recorder's copy path to compare with."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.rtsp import RtspServer, udp_h264
from tests.support import free_port

WIDTH, HEIGHT, FPS = 1920, 1080, 25
VENV_BIN = Path(sys.executable).parent


def stream_file(path: Path, seconds: int = 30) -> Path:
    """A 1080p25 test pattern encoded once as a camera would (main profile, no B-frames, a
    keyframe a second, 4 Mbit/s), in MPEG-TS so SPS/PPS repeat in-band."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    source = ["-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", "-t", str(seconds)]
    h264 = ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main"]
    rate = ["-bf", "0", "-g", str(FPS), "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *source, *h264, *rate, str(path)], check=True)
    return path


def start_camera(stack: ExitStack, video: Path) -> str:
    """The file looped by ``ffmpeg -re -c copy`` as RTP into a GStreamer RTSP server."""
    rtp_port = free_port()
    server = stack.enter_context(RtspServer(free_port(), {"/cam": udp_h264(rtp_port)}))
    loop = ["-re", "-stream_loop", "-1", "-i", str(video)]
    rtp = ["-c", "copy", "-f", "rtp", f"rtp://127.0.0.1:{rtp_port}"]
    feeder = subprocess.Popen(["ffmpeg", "-v", "error", *loop, *rtp], stdout=subprocess.DEVNULL)
    stack.callback(feeder.wait)
    stack.callback(feeder.kill)
    return server.url("/cam")


@dataclass
class GatewayProcess:
    """``moydom run --role api`` on loopback, with a contract and its camera provisioned."""

    url: str
    process: subprocess.Popen[bytes]
    camera: str = ""
    token: str = ""
    admin: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def metric(self, name: str) -> float:
        """One unlabelled sample of the gateway's Prometheus metrics."""
        text = httpx.get(f"{self.url}/metrics/", timeout=10).text
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        raise KeyError(name)


def start_gateway(stack: ExitStack, var_dir: Path, camera_url: str) -> GatewayProcess:
    port, admin = free_port(), secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "MOYDOM_VAR_DIR": str(var_dir),
        "MOYDOM_HTTP_PORT": str(port),
        "MOYDOM_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
        "MOYDOM_ADMIN_TOKEN": admin,
        "MOYDOM_WEBRTC_HOST_ADDRESSES": '["127.0.0.1"]',
        "MOYDOM_LIVE_IDLE_S": "2",
    }
    process = subprocess.Popen(
        [str(VENV_BIN / "moydom"), "run", "--role", "api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(var_dir / "gateway.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    stack.callback(process.wait, 30)
    stack.callback(process.terminate)
    gateway = GatewayProcess(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{gateway.url}/api/v1/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not start; see {var_dir / 'gateway.log'}")
        time.sleep(0.2)
    gateway.admin = {"Authorization": f"Bearer {admin}"}
    api = f"{gateway.url}/api/v1"
    login = {"number": "7000001", "password": "bench-password-1", "address": "bench"}
    httpx.post(f"{api}/admin/contracts", json=login, headers=gateway.admin).raise_for_status()
    device = httpx.post(
        f"{api}/admin/contracts/7000001/devices",
        json={"kind": "camera", "name": "bench-1080p", "rtsp_url": camera_url},
        headers=gateway.admin,
    )
    device.raise_for_status()
    gateway.camera = device.json()["id"]
    token = httpx.post(
        f"{api}/auth/login", json={"contract": "7000001", "password": "bench-password-1"}
    )
    token.raise_for_status()
    gateway.token = token.json()["access_token"]
    return gateway


class Crowd:
    """A process of ``count`` viewers (bench.live.client); :meth:`leave` ends them."""

    def __init__(self, gateway: GatewayProcess, count: int) -> None:
        self.count = count
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "bench.live.client", "--url", gateway.url),
                *("--camera", gateway.camera, "--token", gateway.token, "--viewers", str(count)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def first_frames(self) -> list[float]:
        """Each viewer's time to first frame, once all of them have one."""
        assert self.process.stdout is not None
        times = []
        for _ in range(self.count):
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("a viewer process died before its first frame")
            times.append(float(json.loads(line)["first_frame_s"]))
        return times

    def frames(self) -> list[int]:
        """Each viewer's video frames so far."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        counts: list[int] = json.loads(self.process.stdout.readline())["frames"]
        return counts

    def leave(self) -> None:
        """Close stdin: the viewers DELETE their sessions."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.readline()
        self.process.wait(30)


def start_recorder(stack: ExitStack, camera_url: str, archive: Path) -> subprocess.Popen[bytes]:
    """The recorder's copy path on the same camera: ``python -m recorder.run`` (10 s segments)."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "recorder.run", "--camera", "bench"),
            *("--url", camera_url, "--archive", str(archive)),
        ],
        stdout=subprocess.DEVNULL,
    )
    stack.callback(process.wait, 30)
    stack.callback(process.terminate)
    return process
