"""The publishers: M provisioned devices, one process each, at QoS 1."""

from __future__ import annotations

import json
import multiprocessing
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

INFLIGHT = 1000


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
