"""Helpers for tests: free ports, a private PostgreSQL cluster, MQTT clients,
moydom as a real process."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """A throw-away PostgreSQL cluster from Debian's server binaries.

    ``initdb`` refuses to run as root, so as root the data directory belongs
    to the ``postgres`` user and the binaries run through ``runuser``. fsync
    is off: these tests never claim durability across an OS crash.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.data = base / "data"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
            os.chmod(self.base, 0o700)
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-o",
            opts,
            "-l",
            str(self.base / "log"),
            "start",
        )

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


@dataclass
class MqttPeer:
    """A real paho client for tests: connection result, disconnections, messages."""

    client: mqtt.Client
    connect_reason: ReasonCode | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    answered: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    messages: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)
    granted: queue.Queue[list[ReasonCode]] = field(default_factory=queue.Queue)

    def subscribe(self, topic: str, timeout: float = 5.0) -> ReasonCode:
        self.client.subscribe(topic, qos=1)
        codes = self.granted.get(timeout=timeout)
        return codes[0]

    def publish(self, topic: str, payload: Any, timeout: float = 5.0) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(topic, data, qos=1)
        info.wait_for_publish(timeout)

    def expect(self, topic: str, timeout: float = 5.0) -> mqtt.MQTTMessage:
        while True:
            msg = self.messages.get(timeout=timeout)
            if msg.topic == topic:
                return msg

    def nothing_on(self, topic: str, wait: float = 1.0) -> bool:
        try:
            self.expect(topic, timeout=wait)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def device_connect(port: int, device: dict[str, Any], timeout: float = 5.0) -> MqttPeer:
    """Connect as a provisioned device (its username, password and client id)."""
    return mqtt_connect(port, device["username"], device["password"], device["client_id"], timeout)


def mqtt_connect(
    port: int, username: str, password: str, client_id: str | None = None, timeout: float = 5.0
) -> MqttPeer:
    """Connect (MQTT v5, no automatic reconnect) and wait for the broker's answer."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or "", protocol=mqtt.MQTTv5
    )
    peer = MqttPeer(client)
    client.username_pw_set(username, password)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        peer.connect_reason = reason
        if not reason.is_failure:
            peer.connected.set()
        peer.answered.set()

    def on_disconnect(_c: Any, _u: Any, _f: Any, _reason: ReasonCode, _p: Any) -> None:
        peer.disconnected.set()

    def on_subscribe(_c: Any, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
        peer.granted.put(codes)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_subscribe = on_subscribe
    client.on_message = lambda _c, _u, msg: peer.messages.put(msg)
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    peer.answered.wait(timeout)
    # A refused client is disconnected by the broker: stop paho retrying.
    if not peer.connected.is_set():
        client.loop_stop()
    return peer


MOYDOM = str(Path(sys.executable).with_name("moydom"))


class MoydomProcess:
    """``moydom run --role …`` as a real process, to be killed with SIGKILL."""

    def __init__(self, env: dict[str, str], cwd: Path, roles: list[str], name: str) -> None:
        self.env, self.cwd, self.roles = env, cwd, roles
        self.log = cwd / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [arg for role in self.roles for arg in ("--role", role)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [MOYDOM, "run", *args], env=self.env, cwd=self.cwd, stdout=log, stderr=log
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


def moydom_env(**settings: str) -> dict[str, str]:
    """This environment without any ``MOYDOM_`` variable, plus ``settings``
    (``var_dir="…"`` becomes ``MOYDOM_VAR_DIR``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOYDOM_")}
    env.update({f"MOYDOM_{k.upper()}": v for k, v in settings.items()})
    return env
