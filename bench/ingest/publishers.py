"""The publishers: M provisioned devices, one process each, at QoS 1.

Two kinds, driven alike: ``CFleet`` runs ``publisher.c`` (libmosquitto,
compiled at run time), the default, because a load generator in Python eats
the CPU under test (at 10,000 messages/s, 4 paho publishers used about 1.1
of the machine's 2 cores); ``Fleet`` runs paho in Python processes, the
load generator of the first measurements.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

INFLIGHT = 1000
C_SOURCE = Path(__file__).with_name("publisher.c")


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


def summarise(results: list[PublishResult], expected: int) -> tuple[float, float, int]:
    """First publish, last PUBACK and messages acknowledged, once each, by the broker."""
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


class Publishers(Protocol):
    """What a timed run needs of its load generator."""

    def start(self) -> None: ...  # connected and waiting for the start signal
    def fire(self) -> None: ...
    def collect(self) -> list[PublishResult]: ...
    def close(self) -> None: ...


def compile_publisher(out_dir: Path) -> Path:
    """``publisher.c`` built into ``out_dir`` (gcc, Debian's libmosquitto-dev)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("the C publisher needs gcc (or use --publisher python)")
    binary = out_dir / "publisher"
    build = subprocess.run(
        [gcc, "-O2", "-o", str(binary), str(C_SOURCE), "-lmosquitto", "-lpthread"],
        check=False,
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        raise RuntimeError(
            "could not compile bench/ingest/publisher.c (is libmosquitto-dev installed? "
            f"make deps installs it; or use --publisher python):\n{build.stderr.strip()}"
        )
    return binary


class CFleet:
    """M publisher processes running the compiled ``publisher.c``."""

    def __init__(self, binary: Path, port: int, devices: list[BenchDevice], total: int) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.args: list[list[str]] = []
        per, extra = divmod(total, len(devices))
        seq = 0
        for i, device in enumerate(devices):
            count = per + (1 if i < extra else 0)
            self.args.append(
                [
                    str(binary),
                    "127.0.0.1",
                    str(port),
                    device.username,
                    device.password,
                    device.client_id,
                    device.topic,
                    str(seq),
                    str(count),
                    str(INFLIGHT),
                ]
            )
            seq += count

    def start(self) -> None:
        for args in self.args:
            self.procs.append(
                subprocess.Popen(
                    args,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            )
        for proc in self.procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"publisher failed: {self._stderr(proc)}")

    def fire(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

    def collect(self) -> list[PublishResult]:
        out = []
        for proc in self.procs:
            assert proc.stdout is not None
            words = proc.stdout.readline().split()
            if not words or words[0] != "done":
                raise RuntimeError(f"publisher failed: {self._stderr(proc)}")
            first, last, acked, refused, cpu, connects = words[1:7]
            out.append(
                PublishResult(
                    float(first), float(last), int(acked), int(refused), float(cpu), int(connects)
                )
            )
        for proc in self.procs:
            proc.wait(10)
        return out

    @staticmethod
    def _stderr(proc: subprocess.Popen[str]) -> str:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        return proc.stderr.read().strip() if proc.stderr else ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
