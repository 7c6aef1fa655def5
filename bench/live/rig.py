"""The benchmark's parts (the camera is ``bench.camera``): the gateway as a process of its own (so
its CPU is its own), viewer processes, and the recorder's copy path to compare with."""

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

from tests.support import free_port

VENV_BIN = Path(sys.executable).parent


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
        reply = httpx.get(f"{self.url}/metrics", headers=self.admin, timeout=10)
        reply.raise_for_status()  # the admin token reads them (MOYDOM_METRICS_TOKEN unset)
        text = reply.text
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
