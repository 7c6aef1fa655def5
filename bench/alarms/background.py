"""Background ingest load: motion reports at a target rate from a process of
its own, so that publishing competes with the gateway for the CPUs as real
devices' traffic would for the broker and ingest, but not for the bench's GIL."""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from bench.ingest.publishers import INFLIGHT, BenchDevice, motion_report

BEHIND_S = 1.0
"""A publisher more than this far behind its schedule forgets the rest of the
arrears rather than bursting: the achieved rate is what it could do."""


@dataclass(frozen=True)
class BackgroundResult:
    target: float
    first_publish: float
    last_puback: float
    acked: int
    refused: int
    reconnects: int
    cpu_s: float

    @property
    def rate(self) -> float:
        """Messages the broker acknowledged per second while publishing."""
        wall = self.last_puback - self.first_publish
        return self.acked / wall if wall > 0 else 0.0


def _connect(port: int, device: BenchDevice, tally: dict[str, int]) -> tuple[Any, Any]:
    """A paho client for ``device`` and the semaphore bounding its messages in flight."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=device.client_id, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(device.username, device.password)
    client.max_inflight_messages_set(INFLIGHT)
    client.max_queued_messages_set(0)
    slots = threading.BoundedSemaphore(INFLIGHT)
    connected = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if not reason.is_failure:
            tally["connects"] += 1
            connected.set()

    def on_publish(_c: Any, _u: Any, _mid: int, reason: ReasonCode, _p: Any) -> None:
        # "No matching subscribers" (16) is a success: the broker took it.
        tally["refused" if reason.is_failure else "acked"] += 1
        tally["last_ns"] = time.monotonic_ns()
        slots.release()

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    if not connected.wait(15):
        raise RuntimeError(f"{device.client_id} could not connect")
    return client, slots


def _pace(
    port: int, devices: list[BenchDevice], rate: float, go: Any, stop: Any, results: Any
) -> None:
    """Publish round-robin over ``devices`` at ``rate`` msg/s from ``go`` to ``stop``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us in order
    tally = {"acked": 0, "refused": 0, "connects": 0, "last_ns": 0}
    clients: list[tuple[Any, Any]] = []
    try:
        for device in devices:
            clients.append(_connect(port, device, tally))
        results.put(("ready", None))
        go.wait()
        cpu0 = time.process_time()
        first = start = time.monotonic()
        sent = 0
        while not stop.is_set():
            due = int((time.monotonic() - start) * rate)
            if due - sent > rate * BEHIND_S:
                start += (due - sent) / rate - BEHIND_S
                due = sent + int(rate * BEHIND_S)
            while sent < due:
                i = sent % len(devices)
                client, slots = clients[i]
                if not slots.acquire(timeout=1.0):
                    break
                client.publish(devices[i].topic, motion_report(sent), qos=1)
                sent += 1
            time.sleep(0.002)
        settle = time.monotonic() + 30
        while tally["acked"] + tally["refused"] < sent and time.monotonic() < settle:
            time.sleep(0.01)
        result = BackgroundResult(
            rate,
            first,
            tally["last_ns"] / 1e9,
            tally["acked"],
            tally["refused"],
            tally["connects"] - len(devices),
            time.process_time() - cpu0,
        )
        results.put(("done", result))
    except Exception as exc:  # reported to the parent, which raises it
        results.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        for client, _slots in clients:
            client.disconnect()
            client.loop_stop()


class Background:
    """The publisher process: connected on ``start``, publishing until ``finish``."""

    def __init__(self, port: int, devices: list[BenchDevice], rate: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.go = ctx.Event()
        self.stop = ctx.Event()
        self.results: Any = ctx.Queue()
        self.proc = ctx.Process(
            target=_pace,
            args=(port, devices, rate, self.go, self.stop, self.results),
            name="background",
            daemon=True,
        )

    def _expect(self, kind: str, timeout: float) -> Any:
        got, detail = self.results.get(timeout=timeout)
        if got != kind:
            raise RuntimeError(f"background publisher: {detail}")
        return detail

    def start(self) -> None:
        self.proc.start()
        self._expect("ready", 60)
        self.go.set()

    def finish(self) -> BackgroundResult:
        self.stop.set()
        result: BackgroundResult = self._expect("done", 60)
        self.proc.join(10)
        return result

    def close(self) -> None:
        self.stop.set()
        self.go.set()
        if self.proc.is_alive():
            self.proc.terminate()
        if self.proc.pid is not None:
            self.proc.join(5)
