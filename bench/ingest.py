"""Ingest throughput: QoS 1 device messages from the broker into the database.

In one run, on one private broker (moydom's generated config) and one private
database (PostgreSQL with fsync on, or a SQLite file):

- raw: ``mosquitto_sub -q 1 -c`` (a persistent MQTT v5 session, as the service
  account) receives the messages and prints them — the broker's own speed;
- moydom, 1 worker: ``moydom run --role ingest`` stores them, acknowledging
  each only after its commit; timed until ``events`` holds every one;
- moydom, 2 workers: the same with two processes sharing the MQTT v5 shared
  subscription (``MOYDOM_INGEST_SHARED_SUBSCRIPTION=true``; one worker runs
  with moydom's defaults).

Publishers are M provisioned devices (paho, MQTT v5, each in its own process)
publishing Zigbee2MQTT motion reports with a sequence number at QoS 1, with at
most 1,000 unacknowledged each; a message counts when its PUBACK arrives. Each
timing runs from the first publish to the last message received (raw) or
stored (moydom). Prints the rates, the ratios moydom/raw, and the CPU seconds
each process used during the timed window. A moydom run that stores nothing
for 30 s is reported as stalled, with its rate up to then and the last error
in the worker's log. Every stored count is checked: no message lost, doubled
or rejected.

    .venv/bin/python -m bench.ingest [--messages 100000] [--publishers 4]
        [--database postgresql|sqlite]
        [--ingest-env MOYDOM_INGEST_BATCH_MAX=2000 ...]  # worker settings to try
        [--py-spy FILE]  # profile the 1-worker run (py-spy installed by hand)
        [--keep]         # keep the temporary directory with the logs
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import text

from devices.kinds import DeviceKind
from devices.topics import all_devices_filter
from gateway.broker.embedded import EmbeddedBroker
from gateway.db.engine import Database
from gateway.runtime import broker_config, start_context
from gateway.settings import BrokerMode, Settings
from tests.support import PG_BIN, MqttPeer, PostgresCluster, free_port, mqtt_connect

MOYDOM = str(Path(sys.executable).with_name("moydom"))
ADMIN_PASSWORD = "bench-admin-password"
SERVICE_PASSWORD = "bench-service-password"
ADMIN_TOKEN = "bench-admin-token-0123456789"
SECRET_KEY = "bench-secret-key-0123456789"
INFLIGHT = 1000
RAW_CLIENT_ID = "bench-raw"
TARGET_RATIO = 0.5
TARGET_RATE = 10_000
STALL_S = 30.0
SHARED_SETTING = "MOYDOM_INGEST_SHARED_SUBSCRIPTION"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- CPU accounting -----------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, ...]."""
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_cpu(postmaster: int) -> float:
    """The cluster's CPU: the postmaster, its live children and the reaped ones."""
    fields = _stat(postmaster)
    total = sum(int(f) for f in fields[11:15])
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            child = _stat(int(entry))
        except (OSError, IndexError):
            continue
        if child[1] == str(postmaster):
            total += int(child[11]) + int(child[12])
    return total / CLK_TCK


class CpuMeter:
    """CPU seconds of named processes between ``start`` and ``stop``."""

    def __init__(self, sources: dict[str, Callable[[], float]]) -> None:
        self.sources = sources
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: read() for name, read in self.sources.items()}

    def stop(self) -> None:
        self.used = {name: read() - self._start[name] for name, read in self.sources.items()}


# --- publishers (one process each) ---------------------------------------------


@dataclass(frozen=True)
class BenchDevice:
    username: str
    password: str
    client_id: str
    topic: str


@dataclass(frozen=True)
class PublishResult:
    first_publish: float
    last_puback: float
    acked: int
    refused: int
    cpu_s: float
    connects: int


def motion_report(seq: int) -> bytes:
    """What Zigbee2MQTT publishes for an Aqara RTCGQ11LM, plus a sequence number."""
    return json.dumps(
        {
            "battery": 97,
            "device_temperature": 24,
            "illuminance": 41 + seq % 7,
            "illuminance_lux": 41 + seq % 7,
            "linkquality": 120 + seq % 30,
            "occupancy": seq % 2 == 0,
            "power_outage_count": 12,
            "voltage": 3005,
            "seq": seq,
        },
        separators=(",", ":"),
    ).encode()


def _publisher(
    port: int, device: BenchDevice, first_seq: int, count: int, go: Any, results: Any
) -> None:
    """Connect, report ready, wait for ``go``, publish ``count`` at QoS 1, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us in order
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=device.client_id, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(device.username, device.password)
    client.max_inflight_messages_set(INFLIGHT)
    client.max_queued_messages_set(0)
    slots = threading.BoundedSemaphore(INFLIGHT)
    connected = threading.Event()
    finished = threading.Event()
    tally = {"acked": 0, "refused": 0, "connects": 0}
    last = [0.0]

    def on_connect(_c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if not reason.is_failure:
            tally["connects"] += 1
            connected.set()

    def on_publish(_c: Any, _u: Any, _mid: int, reason: ReasonCode, _p: Any) -> None:
        # The network thread is the only writer. "No matching subscribers"
        # (16) is a success: the broker accepted the message.
        tally["refused" if reason.is_failure else "acked"] += 1
        last[0] = time.monotonic()
        slots.release()
        if tally["acked"] + tally["refused"] >= count:
            finished.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    try:
        if not connected.wait(15):
            results.put(("error", f"{device.client_id} could not connect"))
            return
        results.put(("ready", device.client_id))
        go.wait()
        cpu0 = time.process_time()
        first = time.monotonic()
        for seq in range(first_seq, first_seq + count):
            slots.acquire()
            client.publish(device.topic, motion_report(seq), qos=1)
        finished.wait(600)
        results.put(
            (
                "done",
                PublishResult(
                    first,
                    last[0],
                    tally["acked"],
                    tally["refused"],
                    time.process_time() - cpu0,
                    tally["connects"],
                ),
            )
        )
    finally:
        client.disconnect()
        client.loop_stop()


class Fleet:
    """M publisher processes, connected and waiting for the start signal."""

    def __init__(self, port: int, devices: list[BenchDevice], total: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.go = ctx.Event()
        self.results: Any = ctx.Queue()
        self.procs = []
        per, extra = divmod(total, len(devices))
        seq = 0
        for i, device in enumerate(devices):
            count = per + (1 if i < extra else 0)
            proc = ctx.Process(
                target=_publisher,
                args=(port, device, seq, count, self.go, self.results),
                name=f"publisher-{i}",
                daemon=True,
            )
            seq += count
            self.procs.append(proc)

    def start(self) -> None:
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            kind, detail = self.results.get(timeout=60)
            if kind != "ready":
                raise RuntimeError(f"publisher failed: {detail}")

    def fire(self) -> None:
        self.go.set()

    def collect(self) -> list[PublishResult]:
        out = []
        for _ in self.procs:
            kind, detail = self.results.get(timeout=660)
            if kind != "done":
                raise RuntimeError(f"publisher failed: {detail}")
            out.append(detail)
        for proc in self.procs:
            proc.join(10)
        return out

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
            if proc.pid is not None:
                proc.join(5)


# --- the private database ---------------------------------------------------------


class DurablePostgres(PostgresCluster):
    """tests.support's cluster, but with fsync on (the claim is "durable before
    PUBACK"), and in its own session so Ctrl-C reaches only the benchmark."""

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
            os.chmod(self.base, 0o700)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        log = str(self.base / "log")
        pg_ctl = str(PG_BIN / "pg_ctl")
        self._run(
            "setsid", "-w", pg_ctl, "-D", str(self.data), "-w", "-o", opts, "-l", log, "start"
        )

    @property
    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True)

    def describe(self) -> str:
        with self.admin() as conn:
            version = conn.execute("SHOW server_version").fetchone()
            shown = {
                name: conn.execute(f"SHOW {name}").fetchone()
                for name in ("fsync", "synchronous_commit", "wal_sync_method")
            }
        settings = ", ".join(f"{k}={v[0] if v else '?'}" for k, v in shown.items())
        return f"PostgreSQL {version[0] if version else '?'} (private cluster, {settings})"


class Databases:
    """A provisioned template database and a fresh copy of it per timed run."""

    def __init__(self, kind: str, tmp: Path, stack: ExitStack) -> None:
        self.kind = kind
        self.tmp = tmp
        self.cluster: DurablePostgres | None = None
        if kind == "postgresql":
            base = Path(tempfile.mkdtemp(prefix="moydom-bench-pg-"))
            stack.callback(shutil.rmtree, base, ignore_errors=True)
            self.cluster = DurablePostgres(base)
            self.cluster.start()
            stack.callback(self._stop_cluster)
            with self.cluster.admin() as conn:
                conn.execute("CREATE DATABASE bench_base")
            self.template_url = self.cluster.url("bench_base")
        else:
            self.template_url = f"sqlite:///{tmp / 'bench_base.db'}"

    def _stop_cluster(self) -> None:
        assert self.cluster is not None
        try:
            self.cluster.stop()
        except RuntimeError as exc:
            print(f"(stopping PostgreSQL: {exc})", file=sys.stderr)

    def copy(self, name: str) -> str:
        """A fresh database holding what the template holds (no connections open to it)."""
        if self.cluster is not None:
            with self.cluster.admin() as conn:
                conn.execute(f"CREATE DATABASE {name} TEMPLATE bench_base")
            return self.cluster.url(name)
        target = self.tmp / f"{name}.db"
        with (
            sqlite3.connect(self.tmp / "bench_base.db") as src,
            sqlite3.connect(target) as dst,
        ):
            src.backup(dst)
        src.close()
        dst.close()
        return f"sqlite:///{target}"

    def describe(self) -> str:
        if self.cluster is not None:
            return self.cluster.describe()
        return (
            f"SQLite {sqlite3.sqlite_version} file (WAL, synchronous=NORMAL: commits "
            "survive a process kill, not necessarily a power loss)"
        )

    def cpu_source(self) -> dict[str, Callable[[], float]]:
        if self.cluster is None:
            return {}
        postmaster = self.cluster.postmaster
        return {"postgres": partial(postgres_cpu, postmaster)}


# --- the consumers ------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    messages: int
    first_publish: float
    done: float
    last_puback: float
    acked: int
    cpu: dict[str, float]
    publisher_cpu: float
    note: str = ""
    failed: bool = False

    @property
    def wall(self) -> float:
        return self.done - self.first_publish

    @property
    def rate(self) -> float:
        return self.messages / self.wall

    @property
    def publish_rate(self) -> float:
        return self.acked / (self.last_puback - self.first_publish)


def _summarise_publishers(results: list[PublishResult], expected: int) -> tuple[float, float, int]:
    acked = sum(r.acked for r in results)
    refused = sum(r.refused for r in results)
    if refused or acked != expected:
        raise RuntimeError(f"broker acknowledged {acked} of {expected} ({refused} refused)")
    reconnects = sum(r.connects - 1 for r in results)
    if reconnects:
        # paho resends what was in flight: at least once, so the broker may
        # hold some messages twice, and the counts below would not add up.
        raise RuntimeError(f"publishers reconnected {reconnects} times during the run")
    return (
        min(r.first_publish for r in results),
        max(r.last_puback for r in results),
        acked,
    )


class Bench:
    def __init__(self, args: argparse.Namespace, stack: ExitStack, tmp: Path) -> None:
        self.n: int = args.messages
        self.m: int = args.publishers
        self.py_spy: str = args.py_spy
        self.keep: bool = args.keep
        self.ingest_env = dict(e.split("=", 1) for e in args.ingest_env)
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

    def broker_cpu(self) -> float:
        pid = self.broker.pid
        assert pid is not None
        return cpu_seconds(pid)

    # --- raw ------------------------------------------------------------------

    def raw(self) -> Phase:
        common = [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-c",
            "-i",
            RAW_CLIENT_ID,
            "-u",
            self.settings.mqtt_username,
            "-P",
            SERVICE_PASSWORD,
            "-t",
            all_devices_filter(self.settings.mqtt_topic_root),
        ]
        # Create the persistent session first: every message from now on is
        # owed to it, whether or not the client is connected yet.
        subprocess.run([*common, "-E"], check=True, timeout=15, capture_output=True)
        out = self.tmp / "raw.out"
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                [*common, "-C", str(self.n + 1)],
                stdout=sink,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        self.stack.callback(_stop_process, proc)
        self.warm_up()  # the +1: seen once the subscriber is live
        deadline = time.monotonic() + 15
        while out.stat().st_size == 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("mosquitto_sub did not receive the warm-up message")
            time.sleep(0.01)

        fleet = Fleet(self.port, self.devices, self.n)
        self.stack.callback(fleet.close)
        fleet.start()
        exited: dict[str, float] = {}

        def watch() -> None:
            # Wait for the exit without reaping, so /proc still has its CPU.
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            exited["at"] = time.monotonic()
            exited["cpu"] = cpu_seconds(proc.pid)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        meter = CpuMeter({"broker": self.broker_cpu})
        meter.start()
        fleet.fire()
        watcher.join(self._timeout())
        meter.stop()
        if "at" not in exited:
            raise RuntimeError("mosquitto_sub did not receive every message in time")
        code = proc.wait()
        if code != 0:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"mosquitto_sub exited with {code}: {err.strip()}")
        results = fleet.collect()
        first, last, acked = _summarise_publishers(results, self.n)
        with out.open("rb") as printed:
            lines = sum(1 for _ in printed)
        if lines != self.n + 1:
            raise RuntimeError(f"mosquitto_sub printed {lines} lines, expected {self.n + 1}")
        # Drop the persistent session, or the broker would keep a copy of every
        # later message for it.
        self._purge_session(RAW_CLIENT_ID)
        cpu = {"consumer": exited["cpu"], **meter.used}
        return Phase(
            "raw mosquitto_sub",
            self.n,
            first,
            exited["at"],
            last,
            acked,
            cpu,
            sum(r.cpu_s for r in results),
            "consumer CPU: whole life of mosquitto_sub",
        )

    # --- moydom ---------------------------------------------------------------

    def _timeout(self) -> float:
        return 120 + self.n / 500

    def moydom(self, workers: list[str], db_url: str) -> Phase:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOYDOM_")}
        env.update(
            MOYDOM_VAR_DIR=str(self.settings.var_dir),
            MOYDOM_DATABASE_URL=db_url,
            MOYDOM_MQTT_URL=self.settings.mqtt_url,
            MOYDOM_MQTT_BROKER="external",
            MOYDOM_MQTT_PASSWORD=SERVICE_PASSWORD,
            MOYDOM_MQTT_ADMIN_PASSWORD=ADMIN_PASSWORD,
            MOYDOM_ADMIN_TOKEN=ADMIN_TOKEN,
            MOYDOM_SECRET_KEY=SECRET_KEY,
            MOYDOM_AUTO_MIGRATE="false",
        )
        if len(workers) > 1:
            # Without it every worker has its own plain subscription and
            # stores every message (moydom's default is one worker).
            env[SHARED_SETTING] = "true"
        env.update(self.ingest_env)
        db = Database(db_url)
        self.stack.callback(db.dispose)
        procs: list[subprocess.Popen[bytes]] = []
        logs: list[Path] = []
        for name in workers:
            log = self.tmp / f"ingest-{name}-{len(workers)}w.log"
            logs.append(log)
            with log.open("wb") as sink:
                proc = subprocess.Popen(
                    [MOYDOM, "run", "--role", "ingest"],
                    env={**env, "MOYDOM_INGEST_WORKER": name},
                    cwd=self.tmp,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.stack.callback(_stop_process, proc)
            procs.append(proc)

        def scalar(conn: Any, sql: str) -> int:
            value = conn.execute(text(sql)).scalar()
            conn.rollback()  # a fresh snapshot each time (SQLite keeps one per transaction)
            return int(value or 0)

        fleet = Fleet(self.port, self.devices, self.n)
        self.stack.callback(fleet.close)
        with db.engine.connect() as conn:
            # Warm up until every worker has committed (its markers are in the
            # table), so all of them are connected and subscribed.
            sessions = {f"moydom-ingest-{name}" for name in workers}
            deadline = time.monotonic() + 60
            while True:
                for proc, log in zip(procs, logs, strict=True):
                    if proc.poll() is not None:
                        raise RuntimeError(f"ingest exited: {log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("ingest workers did not all store a warm-up message")
                self.warm_up()
                time.sleep(0.05)
                seen = {
                    row[0]
                    for row in conn.execute(text("SELECT DISTINCT session FROM ingest_markers"))
                }
                conn.rollback()
                if sessions <= seen:
                    break
            fleet.start()  # takes over a second: in-flight warm-ups settle meanwhile
            # Warm-ups published before a worker subscribed were owed to no one
            # and dropped; the baseline is what is stored once nothing moves.
            warm = scalar(conn, "SELECT count(*) FROM events")
            while True:
                time.sleep(0.3)
                again = scalar(conn, "SELECT count(*) FROM events")
                if again == warm:
                    break
                warm = again
            base_id = scalar(conn, "SELECT max(id) FROM events")
            target = warm + self.n

            sources: dict[str, Callable[[], float]] = {
                f"ingest {name}": partial(cpu_seconds, proc.pid)
                for name, proc in zip(workers, procs, strict=True)
            }
            sources["broker"] = self.broker_cpu
            sources.update(self.dbs.cpu_source())
            meter = CpuMeter(sources)
            spy = self._start_py_spy(procs[0].pid) if len(workers) == 1 else None
            meter.start()
            fleet.fire()
            stop_at = time.monotonic() + self._timeout()
            progress = (base_id, time.monotonic())
            failure = ""
            while True:
                # max(id) is an index probe; count(*) only to confirm the end.
                top = scalar(conn, "SELECT max(id) FROM events")
                now = time.monotonic()
                if top != progress[0]:
                    progress = (top, now)
                if top >= base_id + self.n:
                    stored = scalar(conn, "SELECT count(*) FROM events")
                    if stored >= target:
                        done = time.monotonic()
                        break
                if now - progress[1] > STALL_S or now > stop_at:
                    stored = scalar(conn, "SELECT count(*) FROM events")
                    done = progress[1]
                    failure = (
                        f"STALLED: {stored - warm:,} of {self.n:,} stored, none for "
                        f"{now - progress[1]:.0f} s; {_last_error(logs)}"
                    )
                    break
                time.sleep(0.005)
            meter.stop()
            if spy is not None:
                _stop_process(spy, signal.SIGINT)
            results = fleet.collect()
            first, last, acked = _summarise_publishers(results, self.n)
            time.sleep(1.0)  # anything beyond the count would be a duplicate
            final = scalar(conn, "SELECT count(*) FROM events")
            rejected = scalar(conn, "SELECT count(*) FROM rejected_messages")
        for proc in procs:
            _stop_process(proc)
        # End the workers' sessions, so the next run starts with none (after a
        # stall the broker would redeliver this run's messages into it).
        for name in workers:
            self._purge_session(f"moydom-ingest-{name}")
        if not failure and (final != target or rejected):
            raise RuntimeError(
                f"stored {final}, expected {target}; {rejected} rejected; "
                f"{self._duplicates(db)}; logs in {self.tmp if self.keep else '(use --keep)'}"
            )
        label = "1 worker" if len(workers) == 1 else f"{len(workers)} workers"
        return Phase(
            f"moydom {label}",
            final - warm,
            first,
            done,
            last,
            acked,
            meter.used,
            sum(r.cpu_s for r in results),
            failure or f"stored {final - warm} (+{warm} warm-up), none doubled or rejected",
            failed=bool(failure),
        )

    def _duplicates(self, db: Database) -> str:
        seq = "json_extract(body, '$.seq')" if db.is_sqlite else "body->>'seq'"
        with db.engine.connect() as conn:
            row = conn.execute(
                text(
                    f"SELECT count(*), min(seq), max(seq), sum(n) FROM (SELECT {seq} AS seq, "
                    "count(*) AS n FROM events GROUP BY 1 HAVING count(*) > 1) d"
                )
            ).one()
        return (
            f"{row[0]} sequence numbers stored more than once ({row[3]} rows, {row[1]}..{row[2]})"
        )

    def _purge_session(self, client_id: str) -> None:
        user = self.settings.mqtt_username
        mqtt_connect(self.port, user, SERVICE_PASSWORD, client_id).close()

    def _start_py_spy(self, pid: int) -> subprocess.Popen[bytes] | None:
        if not self.py_spy:
            return None
        binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(binary).exists():
            raise RuntimeError("--py-spy needs py-spy (pip install py-spy, for your own use)")
        fmt = {".json": "speedscope", ".txt": "raw"}.get(Path(self.py_spy).suffix, "flamegraph")
        # Waiting (on the database, the queue, the socket) is sampled too.
        spy = [binary, "record", "--pid", str(pid), "--threads", "--idle", "--nonblocking"]
        proc = subprocess.Popen(
            [*spy, "--rate", "250", "--format", fmt, "--output", self.py_spy],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.stack.callback(_stop_process, proc)
        time.sleep(1.0)  # attached before the clock starts
        return proc


def _last_error(logs: list[Path]) -> str:
    """The last exception line an ingest log shows, for a stalled run."""
    found = "no error in the ingest log"
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            head = line.split(":", 1)[0]
            if head.endswith(("Error", "Exception", "TooComplex")) and "." in head:
                found = f"{log.name}: {line[:300]}"
    return found


def _stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- report -------------------------------------------------------------------------


def _report(phases: list[Phase]) -> None:
    print()
    print(
        f"{'':<20} {'msg/s':>9} {'wall s':>7} {'pub msg/s':>10}  "
        "CPU s in the timed window (publishers separately)"
    )
    for p in phases:
        cpu = "  ".join(f"{name} {sec:.2f}" for name, sec in p.cpu.items())
        name = p.name + (" *" if p.failed else "")
        print(
            f"{name:<20} {p.rate:9.0f} {p.wall:7.2f} {p.publish_rate:10.0f}  "
            f"{cpu}  publishers {p.publisher_cpu:.2f}"
        )
    for p in phases:
        if p.note:
            print(f"  {p.name}: {p.note}")
    print("  pub msg/s: PUBACKs received / (last PUBACK - first publish)")
    if any(p.failed for p in phases):
        print("  *: stalled; msg/s and wall s up to the last progress")
    raw = phases[0]
    if raw.done - raw.last_puback < 0.05 * raw.wall:
        print(
            "  note: the raw consumer finished with the publishers; the baseline may be "
            "bounded by the publishers (or the shared CPUs), not by the broker"
        )
    print()
    for p in phases[1:]:
        ratio = p.rate / raw.rate
        per_msg = sum(v for k, v in p.cpu.items() if k.startswith("ingest")) / p.messages * 1e6
        stalled = " until it stalled" if p.failed else ""
        print(
            f"{p.name}: {p.rate:,.0f} msg/s{stalled}, {ratio:.2f} of raw; "
            f"ingest CPU {per_msg:.0f} µs/message"
        )
    one = phases[1] if len(phases) > 1 else None
    if one is not None:
        ratio = one.rate / raw.rate
        ok_ratio = "met" if ratio >= TARGET_RATIO and not one.failed else "NOT met"
        ok_rate = "met" if one.rate >= TARGET_RATE and not one.failed else "NOT met"
        print(
            f"targets (1 worker): ≥ {TARGET_RATIO:.0%} of raw — {ratio:.0%}, {ok_ratio}; "
            f"≥ {TARGET_RATE:,} msg/s — {one.rate:,.0f}, {ok_rate}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--py-spy",
        default="",
        metavar="FILE",
        help="record the 1-worker ingest with py-spy (.json speedscope, .txt collapsed, else svg)",
    )
    parser.add_argument(
        "--ingest-env",
        action="append",
        default=[],
        metavar="MOYDOM_X=V",
        help="extra environment for the ingest workers (repeatable)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs) for a look"
    )
    args = parser.parse_args()
    if args.messages < 1 or args.publishers < 1:
        parser.error("--messages and --publishers must be positive")
    if any(not e.startswith("MOYDOM_") or "=" not in e for e in args.ingest_env):
        parser.error("--ingest-env takes MOYDOM_NAME=VALUE")
    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="moydom-bench-"))
        if args.keep:
            stack.callback(print, f"kept {tmp}")
        else:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        bench = Bench(args, stack, tmp)
        print(
            f"ingest benchmark: {bench.n:,} QoS 1 messages from {bench.m} publishers "
            f"(paho, MQTT v5, one process each, ≤ {INFLIGHT} in flight each)"
        )
        print(
            f"machine: {os.cpu_count()} CPUs; broker: Mosquitto with moydom's generated config, "
            f"port {bench.port}"
        )
        print(f"database: {bench.dbs.describe()}")
        s = bench.settings
        print(
            f"ingest: receive_maximum {s.ingest_receive_maximum}, batch_max "
            f"{s.ingest_batch_max}, linger {s.ingest_linger_ms} ms (defaults); "
            f"two workers with {SHARED_SETTING}=true"
            + "".join(f"; {k}={v}" for k, v in bench.ingest_env.items())
        )
        phases = [bench.raw()]
        print(f"  raw: {phases[-1].rate:,.0f} msg/s", flush=True)
        phases.append(bench.moydom(["b1"], bench.dbs.copy("ingest_1w")))
        print(f"  moydom 1 worker: {phases[-1].rate:,.0f} msg/s", flush=True)
        phases.append(bench.moydom(["b1", "b2"], bench.dbs.copy("ingest_2w")))
        print(f"  moydom 2 workers: {phases[-1].rate:,.0f} msg/s", flush=True)
        _report(phases)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # everything started is stopped by now
        print("interrupted; everything it started is stopped", file=sys.stderr)
        raise SystemExit(130) from None
