"""``moydom demo`` as a user runs it: a subprocess that becomes ready, serves the
admin API, whose simulated devices publish to its broker, and that Ctrl-C stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port, mqtt_connect

ROOT = Path(__file__).resolve().parent.parent


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_demo_starts_serves_publishes_and_stops(tmp_path: Path, stop_signal: int) -> None:
    mqtt_port, http_port, rtsp_port = free_port(), free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MOYDOM_")},
        "MOYDOM_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}",
        "MOYDOM_HTTP_PORT": str(http_port),
        "MOYDOM_DEMO_RTSP_PORT": str(rtsp_port),
        "MOYDOM_RECORDER_SEGMENT_S": "2",
    }
    moydom = Path(sys.executable).with_name("moydom")
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(moydom), "demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{http_port}/api/v1"
        ready = None
        while time.monotonic() - started < 30:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    ready = time.monotonic() - started
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert ready is not None, "demo never became healthy"
        print(f"moydom demo ready in {ready:.2f}s")

        secrets = json.loads((tmp_path / "var" / "secrets.json").read_text())
        admin = {"Authorization": f"Bearer {secrets['admin_token']}"}
        contract = httpx.get(f"{base}/admin/contracts/100200300", headers=admin, timeout=5)
        assert contract.status_code == 200
        devices = httpx.get(
            f"{base}/admin/contracts/100200300/devices", headers=admin, timeout=5
        ).json()
        assert {d["kind"] for d in devices} >= {
            "motion",
            "leak",
            "contact",
            "keypad",
            "siren",
            "gate",
            "intercom",
            "camera",
        }
        login = httpx.post(
            f"{base}/auth/login", json={"contract": "100200300", "password": "demo-password"}
        )
        assert login.status_code == 200
        owner = {"Authorization": f"Bearer {login.json()['access_token']}"}
        home = devices[0]["home"]
        panel = httpx.get(f"{base}/homes/{home}/security", headers=owner, timeout=5)
        assert panel.status_code == 200 and panel.json()["status"] in {"disarmed", "armed_away"}
        desk = httpx.post(
            f"{base}/dispatch/login",
            json={"login": "dispatcher", "password": "demo-dispatcher"},
            timeout=5,
        )
        assert desk.status_code == 200

        sub = mqtt_connect(mqtt_port, "moydom", secrets["mqtt_password"])
        sub.subscribe("moydom/#")
        state_topics = {d["topics"]["state"] for d in devices}
        deadline = time.monotonic() + 15
        seen: set[str] = set()
        while time.monotonic() < deadline and not (seen & state_topics):
            seen.add(sub.messages.get(timeout=15).topic)
        assert seen & state_topics, seen
        sub.close()
        assert _port_open(rtsp_port), "test camera not serving"
        camera = next(d for d in devices if d["kind"] == "camera")["id"]
        since = datetime.now(UTC) - timedelta(minutes=5)

        def recorded() -> list[Any]:
            r = httpx.get(
                f"{base}/cameras/{camera}/timeline",
                params={"start": since.isoformat(), "end": datetime.now(UTC).isoformat()},
                headers=owner,
                timeout=5,
            )
            assert r.status_code == 200, r.text
            spans: list[Any] = r.json()["recorded"]
            return spans

        deadline = time.monotonic() + 30
        while not recorded() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert recorded(), "the demo records its test camera"
    finally:
        proc.send_signal(stop_signal)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode()
    assert not _port_open(mqtt_port) and not _port_open(http_port) and not _port_open(rtsp_port)
