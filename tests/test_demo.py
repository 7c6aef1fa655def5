"""``moydom demo`` as a user runs it: a subprocess that becomes ready, serves the
admin API, whose simulated devices publish to its broker, and that Ctrl-C stops;
its banner shows the test camera's URL only when the camera answers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from gateway.demo import camera_problem
from tests.browser import PHONE, browser, screenshot
from tests.rtsp import RtspServer, encode
from tests.support import free_port, mqtt_connect

ROOT = Path(__file__).resolve().parent.parent
BANNER_END = "Ctrl-C stops everything."


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def distinct_ports(n: int) -> list[int]:
    """``n`` free ports, all different (``free_port`` may hand out one twice in a row: a run
    gave the HTTP port to the test camera and the API could not bind)."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class Demo:
    """``moydom demo`` as a child process, its output (stdout and stderr) read as it comes."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.mqtt_port, self.http_port, self.rtsp_port = distinct_ports(3)
        env = {
            **{k: v for k, v in env.items() if not k.startswith("MOYDOM_")},
            "MOYDOM_MQTT_URL": f"mqtt://127.0.0.1:{self.mqtt_port}",
            "MOYDOM_HTTP_PORT": str(self.http_port),
            "MOYDOM_DEMO_RTSP_PORT": str(self.rtsp_port),
            "MOYDOM_RECORDER_SEGMENT_S": "2",
        }
        moydom = Path(sys.executable).with_name("moydom")
        self.proc = subprocess.Popen(
            [str(moydom), "demo"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def banner(self, timeout: float = 60) -> list[str]:
        """The banner's lines, once it is printed."""
        deadline = time.monotonic() + timeout
        while BANNER_END not in self.output:
            assert self.proc.poll() is None, self.output
            assert time.monotonic() < deadline, f"no banner in {timeout} s: {self.output}"
            time.sleep(0.1)
        start = max(i for i, line in enumerate(self.lines) if line == "moydom demo")
        return self.lines[start:]

    def healthy(self, timeout: float = 30) -> float:
        """Seconds from now until the API answers its health check."""
        started = time.monotonic()
        url = f"http://127.0.0.1:{self.http_port}/api/v1/health"
        while time.monotonic() - started < timeout:
            assert self.proc.poll() is None, self.output
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"demo never became healthy: {self.output}")

    def stop(self, stop_signal: int = signal.SIGINT) -> int:
        self.proc.send_signal(stop_signal)
        code = self.proc.wait(20)
        self._reader.join(5)
        return code


def test_the_camera_check_tells_a_working_camera_from_a_broken_one() -> None:
    """A camera whose pipeline cannot be built listens, and answers every
    DESCRIBE with 503: the check says so; a working one passes; a closed port
    is no answer."""
    good = f"( videotestsrc is-live=true ! {encode(160, 120, 5)} )"
    broken = "( videotestsrc is-live=true ! nosuchelement ! rtph264pay name=pay0 pt=96 )"
    with RtspServer(free_port(), {"/good": good, "/broken": broken}) as server:
        assert camera_problem(server.url("/good")) is None
        problem = camera_problem(server.url("/broken"))
        assert problem is not None
        assert "503 Service Unavailable" in problem and "make system-deps" in problem
    gone = camera_problem(f"rtsp://127.0.0.1:{server.port}/good")
    assert gone is not None and gone.startswith("no answer to RTSP DESCRIBE")


def _a_visitor_rings_and_the_door_opens(demo: Demo, base: str, owner: dict[str, str]) -> None:
    """The demo's intercom rings on ``SIGUSR1`` (the banner says so); the call
    is answered, its door opened (the simulated panel acknowledges) and hung
    up through the API, and the home's history tells it."""
    assert f"kill -USR1 {demo.proc.pid}" in "\n".join(demo.banner())
    demo.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 20
    ringing: list[dict[str, Any]] = []
    while not ringing:
        assert time.monotonic() < deadline, "the demo's intercom never rang"
        r = httpx.get(f"{base}/calls", params={"state": "ringing"}, headers=owner, timeout=5)
        assert r.status_code == 200, r.text
        ringing = r.json()["items"]
        time.sleep(0.2)
    call = ringing[0]["id"]
    r = httpx.post(f"{base}/calls/{call}/answer", headers=owner, timeout=5)
    assert r.status_code == 200 and r.json()["state"] == "answered", r.text
    r = httpx.post(f"{base}/calls/{call}/open", headers=owner, timeout=10)
    assert r.status_code == 201 and r.json()["status"] == "acknowledged", r.text
    assert r.json()["device_kind"] == "intercom"
    r = httpx.post(f"{base}/calls/{call}/hangup", headers=owner, timeout=5)
    assert r.status_code == 200 and r.json()["state"] == "ended", r.text
    r = httpx.post(f"{base}/calls/{call}/open", headers=owner, timeout=5)
    assert r.status_code == 409, r.text
    lines = httpx.get(f"{base}/events", params={"event": "call"}, headers=owner, timeout=5).json()[
        "items"
    ]
    changes = [e["body"]["change"] for e in lines if e["body"]["call"] == call]
    assert changes == ["ended", "answered", "rang"], changes


def _without_plugin(tmp: Path, plugin: str) -> dict[str, str]:
    """GStreamer's environment with every system plugin but ``plugin`` (a file
    name such as ``libgstpango.so``): a machine without the package that ships it."""
    inspect = subprocess.run(
        ["gst-inspect-1.0", "videotestsrc"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"^\s*Filename\s+(\S+)", inspect, re.MULTILINE)
    assert match
    plugins = tmp / "plugins"
    plugins.mkdir()
    for lib in Path(match.group(1)).parent.glob("*.so"):
        if lib.name != plugin:
            (plugins / lib.name).symlink_to(lib)
    return {
        **os.environ,
        "GST_PLUGIN_SYSTEM_PATH_1_0": str(plugins),
        "GST_REGISTRY_1_0": str(tmp / "registry.bin"),
    }


@pytest.mark.slow
def test_the_demo_says_clearly_when_its_camera_does_not_answer(tmp_path: Path) -> None:
    """Without ``gstreamer1.0-x`` (``clockoverlay`` is in its pango plugin) the
    camera's server runs but answers 503: the banner says the camera does not
    work and why, instead of printing its URL as if it did; the rest runs."""
    (tmp_path / "run").mkdir()
    demo = Demo(tmp_path / "run", _without_plugin(tmp_path, "libgstpango.so"))
    try:
        banner = demo.banner()
        line = next(line for line in banner if "test camera" in line)
        url = f"rtsp://127.0.0.1:{demo.rtsp_port}/demo"
        assert line.split("test camera", 1)[1].strip().startswith(f"NOT WORKING: {url}: "), line
        assert "503 Service Unavailable" in line and "make system-deps" in line, line
        demo.healthy()  # the rest of the demo runs
    finally:
        code = demo.stop()
    assert code == 0, demo.output


def _the_banner_opens_onto_the_pages(banner: list[str], http_port: int) -> list[str]:
    """The first lines: the cabinet and the dispatch console, each with a login that works
    (returned: the cabinet's URL, contract and password, the console's, login and password)."""
    cabinet = re.fullmatch(
        r"  cabinet +(http://\S+/app/) .* contract (\S+), password (\S+)", banner[1]
    )
    desk = re.fullmatch(
        r"  dispatch +(http://\S+/dispatch/) .* as (\S+), password (\S+)", banner[2]
    )
    assert cabinet and desk, banner
    assert cabinet[1] == f"http://127.0.0.1:{http_port}/app/"
    page = httpx.get(cabinet[1], timeout=5)
    assert page.status_code == 200 and 'src="/app/index.js"' in page.text
    api = f"http://127.0.0.1:{http_port}/api/v1"
    login = {"contract": cabinet[2], "password": cabinet[3]}
    assert httpx.post(f"{api}/auth/login", json=login, timeout=5).status_code == 200
    login = {"login": desk[2], "password": desk[3]}
    assert httpx.post(f"{api}/dispatch/login", json=login, timeout=5).status_code == 200
    return [*cabinet.groups(), *desk.groups()]


def _a_newcomer_uses_the_pages(printed: list[str], tmp_path: Path) -> None:
    """In Chromium, with only what the banner printed: the cabinet shows the simulated home
    and opens its gate; the dispatch console logs in and is connected."""
    cabinet, contract, password, console, desk, desk_password = printed
    with browser(tmp_path / "chromium", PHONE, service_workers="block") as context:
        page = context.new_page()
        page.goto(cabinet)
        expect(page).to_have_url(re.compile(r"/app/login\?next="))
        page.get_by_label("Номер договора, телефон или e-mail").fill(contract)
        page.get_by_label("Пароль").fill(password)
        page.get_by_role("button", name="Войти").click()
        expect(page.locator("#sensors")).to_contain_text("Прихожая", timeout=20_000)
        expect(page.locator("#sensors")).to_contain_text("Входная дверь")
        page.get_by_role("button", name="Открыть: Ворота во двор").click()
        expect(page.locator(".answer", has_text="открыто")).to_have_count(1, timeout=20_000)
        screenshot(page, "demo-cabinet")
        page = context.new_page()
        page.goto(console)
        page.get_by_label("Логин").fill(desk)
        page.get_by_label("Пароль").fill(desk_password)
        page.get_by_role("button", name="Войти").click()
        expect(page.locator("#link")).to_have_text("На связи", timeout=20_000)
        screenshot(page, "demo-dispatch")


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_demo_starts_serves_publishes_and_stops(tmp_path: Path, stop_signal: int) -> None:
    demo = Demo(tmp_path, dict(os.environ))
    mqtt_port, http_port, rtsp_port = demo.mqtt_port, demo.http_port, demo.rtsp_port
    try:
        base = f"http://127.0.0.1:{http_port}/api/v1"
        print(f"moydom demo ready in {demo.healthy():.2f}s")
        # The camera answered its DESCRIBE: the banner shows the bare URL.
        assert f"  test camera   rtsp://127.0.0.1:{rtsp_port}/demo" in demo.banner()
        printed = _the_banner_opens_onto_the_pages(demo.banner(), http_port)
        if stop_signal == signal.SIGINT:  # once is enough
            _a_newcomer_uses_the_pages(printed, tmp_path)

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
        gate = next(d for d in devices if d["kind"] == "gate")
        opened = httpx.post(
            f"{base}/homes/{gate['home']}/devices/{gate['id']}/commands",
            json={"action": "open"},
            headers=owner,
            timeout=10,
        )
        assert opened.status_code == 201 and opened.json()["status"] == "acknowledged", opened.text
        _a_visitor_rings_and_the_door_opens(demo, base, owner)

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
        code = demo.stop(stop_signal)
    assert code == 0, demo.output
    assert not _port_open(mqtt_port) and not _port_open(http_port) and not _port_open(rtsp_port)
