"""A gateway killed whole (SIGKILL of ``moydom run``): its embedded Mosquitto
does not outlive it, and the next ``moydom run`` on the same ports just starts.

Two guards, each tested on its own: the broker is told to die with its parent
(``setpriv --pdeathsig``), and where that did not happen (no ``setpriv``, or a
parent killed between fork and exec) the next start reaps the broker its
pidfile names — only if that process really is moydom's own Mosquitto."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from gateway.broker.embedded import BrokerError, EmbeddedBroker
from gateway.runtime import broker_config
from gateway.settings import Settings
from tests.support import MoydomProcess, free_port, moydom_env


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _wait_healthy(gw: MoydomProcess, http_port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert gw.proc is not None and gw.proc.poll() is None, gw.log.read_text()
        assert time.monotonic() < deadline, gw.log.read_text()
        try:
            r = httpx.get(f"http://127.0.0.1:{http_port}/api/v1/health", timeout=1)
            if r.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _path_without_setpriv(tmp_path: Path) -> str:
    """A PATH with only the Mosquitto tools on it: no ``setpriv``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mosquitto", "mosquitto_ctrl"):
        found = shutil.which(tool) or f"/usr/sbin/{tool}"
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.slow
@pytest.mark.parametrize("guard", ["pdeathsig", "pidfile"])
def test_a_gateway_killed_whole_starts_again(tmp_path: Path, guard: str) -> None:
    mqtt_port, http_port = free_port(), free_port()
    env = moydom_env(
        var_dir=str(tmp_path / "var"),
        mqtt_url=f"mqtt://127.0.0.1:{mqtt_port}",
        http_port=str(http_port),
    )
    if guard == "pidfile":
        env["PATH"] = _path_without_setpriv(tmp_path)
    first = MoydomProcess(env, tmp_path, ["api"], "first")
    second = MoydomProcess(env, tmp_path, ["api"], "second")
    broker = 0
    try:
        first.start()
        _wait_healthy(first, http_port)
        assert first.proc is not None
        (broker,) = _children(first.proc.pid)
        first.kill()
        if guard == "pdeathsig":
            assert _wait_gone(broker, 10), "the broker outlived its gateway"
        else:
            time.sleep(0.5)
            assert _alive(broker)  # nothing told it to go: the next start must
        second.start()
        _wait_healthy(second, http_port)
        assert not _alive(broker)
        second.stop()
        assert second.proc is not None and second.proc.returncode == 0
    finally:
        first.stop()
        second.stop()
        if broker and _alive(broker):
            os.kill(broker, signal.SIGKILL)


def test_a_pidfile_naming_another_process_is_left_alone(tmp_path: Path) -> None:
    """A stale pidfile whose pid now belongs to something else: that process
    is not ours to kill, and the broker starts regardless."""
    settings = Settings(var_dir=tmp_path / "var", mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    cfg = broker_config(settings)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        cfg.state_dir.mkdir(parents=True)
        (cfg.state_dir / "mosquitto.pid").write_text(f"{stranger.pid}\n")
        broker = EmbeddedBroker(cfg, "admin", "admin-password-1", "mosquitto")
        broker.start()
        try:
            assert stranger.poll() is None
            assert broker.pid is not None and broker.pid != stranger.pid
        finally:
            broker.stop()
    finally:
        stranger.kill()
        stranger.wait()


def test_a_foreign_broker_on_the_port_is_still_refused(tmp_path: Path) -> None:
    """Not moydom's (no pidfile of ours): refused with the system-Mosquitto hint."""
    port = free_port()
    other = EmbeddedBroker(
        broker_config(Settings(var_dir=tmp_path / "other", mqtt_url=f"mqtt://127.0.0.1:{port}")),
        "admin",
        "admin-password-1",
        "mosquitto",
    )
    other.start()
    try:
        ours = EmbeddedBroker(
            broker_config(Settings(var_dir=tmp_path / "ours", mqtt_url=f"mqtt://127.0.0.1:{port}")),
            "admin",
            "admin-password-1",
            "mosquitto",
        )
        with pytest.raises(BrokerError, match="already in use"):
            ours.start()
        assert other.pid is not None and _alive(other.pid)
    finally:
        other.stop()
