"""The bench rig: private broker and database, provisioned devices, warm-up publisher."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench.ingest.cpu import cpu_seconds
from bench.ingest.databases import Databases
from bench.ingest.publishers import (
    BenchDevice,
    CFleet,
    Fleet,
    Publishers,
    compile_publisher,
    motion_report,
)
from devices.kinds import DeviceKind
from gateway.broker.embedded import EmbeddedBroker
from gateway.runtime import broker_config, start_context
from gateway.settings import BrokerMode, Settings
from tests.support import MqttPeer, free_port, mqtt_connect

ADMIN_PASSWORD = "bench-admin-password"
SERVICE_PASSWORD = "bench-service-password"
ADMIN_TOKEN = "bench-admin-token-0123456789"
SECRET_KEY = "bench-secret-key-0123456789"


@dataclass(frozen=True)
class RigOptions:
    """What the rig is built from: ``bench.ingest``'s options, or what another
    benchmark borrowing the rig sets (typed, so a new option cannot be missed
    by one of them, as ``py_spy_samples`` once was by ``bench.alarms``)."""

    messages: int
    publishers: int
    database: str = "postgresql"
    publisher: str = "c"
    py_spy: str = ""
    py_spy_samples: str = "wall"
    ingest_env: dict[str, str] = field(default_factory=dict)
    keep: bool = False


class Bench:
    """What the timed runs share: the broker, the template database, the devices."""

    def __init__(self, args: RigOptions, stack: ExitStack, tmp: Path) -> None:
        self.n = args.messages
        self.m = args.publishers
        self.py_spy = args.py_spy
        self.py_spy_samples = args.py_spy_samples
        self.keep = args.keep
        self.publisher = args.publisher
        self.publisher_binary = compile_publisher(tmp) if args.publisher == "c" else None
        self.ingest_env = args.ingest_env
        self.stack = stack
        self.tmp = tmp
        self.dbs = Databases(args.database, tmp, stack)
        self.port = free_port()
        self.settings = Settings(
            var_dir=tmp / "var",
            database_url=self.dbs.template_url,
            mqtt_url=f"mqtt://127.0.0.1:{self.port}",
            mqtt_broker=BrokerMode.EXTERNAL,
            mqtt_admin_password=ADMIN_PASSWORD,
            mqtt_password=SERVICE_PASSWORD,
            admin_token=ADMIN_TOKEN,
            secret_key=SECRET_KEY,
            http_port=free_port(),
        )
        self.broker = EmbeddedBroker(
            broker_config(self.settings.model_copy(update={"var_dir": tmp / "broker"})),
            self.settings.mqtt_admin_username,
            ADMIN_PASSWORD,
            "mosquitto",
        )
        self.broker.start()
        stack.callback(self.broker.stop)
        ctx = start_context(self.settings, stack)  # migrations, service account
        self.devices: list[BenchDevice] = []
        for i in range(self.m + 1):
            ctx.provisioner.create_contract(f"bench-{i}", "bench-password-123", f"flat {i}")
            creds = ctx.provisioner.create_device(f"bench-{i}", DeviceKind.MOTION, "hall")
            username = creds.device.mqtt_username
            self.devices.append(BenchDevice(username, creds.password, username, creds.topics.state))
        if ctx.hub is not None:
            ctx.hub.stop()  # its LISTEN connection (PostgreSQL's notices) is one on it too
        ctx.db.dispose()  # no connection may stay open on the template
        warm = self.devices.pop()
        self.warm = self._connect(warm)
        self.warm_topic = warm.topic
        self.warm_sent = 0

    def _connect(self, device: BenchDevice) -> MqttPeer:
        peer = mqtt_connect(self.port, device.username, device.password, device.client_id)
        if not peer.connected.is_set():
            raise RuntimeError(f"{device.username} could not connect: {peer.connect_reason}")
        self.stack.callback(peer.close)
        return peer

    def warm_up(self) -> None:
        self.warm.publish(self.warm_topic, motion_report(10**9 + self.warm_sent))
        self.warm_sent += 1

    def fleet(self) -> Publishers:
        """The load generator for one timed run: the same kind for every run."""
        fleet: Publishers
        if self.publisher_binary is not None:
            fleet = CFleet(self.publisher_binary, self.port, self.devices, self.n)
        else:
            fleet = Fleet(self.port, self.devices, self.n)
        self.stack.callback(fleet.close)
        return fleet

    def warm_state(self) -> str:
        """The warm-up publisher's state, for a run that stored no warm-up."""
        client = self.warm.client
        pending = len(getattr(client, "_out_messages", {}))
        return (
            f"connected {client.is_connected()}, {self.warm_sent} published, "
            f"{pending} not acknowledged by the broker"
        )

    def broker_cpu(self) -> float:
        pid = self.broker.pid
        assert pid is not None
        return cpu_seconds(pid)

    def timeout(self) -> float:
        return 120 + self.n / 500

    def purge_session(self, client_id: str) -> None:
        user = self.settings.mqtt_username
        mqtt_connect(self.port, user, SERVICE_PASSWORD, client_id).close()

    def start_py_spy(self, pid: int) -> subprocess.Popen[bytes] | None:
        if not self.py_spy:
            return None
        binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(binary).exists():
            raise RuntimeError("--py-spy needs py-spy (pip install py-spy, for your own use)")
        fmt = {".json": "speedscope", ".txt": "raw"}.get(Path(self.py_spy).suffix, "flamegraph")
        # wall: waiting (on the database, the queue, the socket) is sampled too.
        mode = {"wall": ["--idle"], "cpu": [], "gil": ["--gil"]}[self.py_spy_samples]
        spy = [binary, "record", "--pid", str(pid), "--threads", *mode, "--nonblocking"]
        proc = subprocess.Popen(
            [*spy, "--rate", "250", "--format", fmt, "--output", self.py_spy],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.stack.callback(stop_process, proc)
        time.sleep(1.0)  # attached before the clock starts
        return proc


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
