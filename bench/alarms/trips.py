"""One run: a fresh database and gateway, H secured homes, warm-up, the timed
trips (with or without background load), and what they cost."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial

from sqlalchemy import text

from bench.alarms.background import Background, BackgroundResult
from bench.alarms.gateway import Gateway, LeakHome
from bench.alarms.stored import Stored
from bench.alarms.stream import CaseWatcher
from bench.ingest.cpu import CpuMeter, cpu_seconds
from bench.ingest.rig import Bench
from gateway.db.engine import Database
from tests.support import MqttPeer, mqtt_connect

WET = b'{"water_leak":true}'
DRY = b'{"water_leak":false}'
TRIP_TIMEOUT_S = 30.0
RAMP_S = 3.0
"""Background load runs this long before the first timed trip."""


@dataclass
class RunResult:
    name: str
    latencies: list[float]
    """Seconds from the wet publish to the case on the stream, in trip order."""
    offsets: list[float]
    """When each trip started, in seconds from the first."""
    wall: float
    cpu: dict[str, float]
    background: BackgroundResult | None
    drain_s: float | None
    """After the background stopped: until the gateway had stored it all."""
    strays: int


@dataclass
class Sensor:
    home: LeakHome
    peer: MqttPeer

    def report(self, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the PUBACK."""
        self.peer.publish(self.home.device.topic, payload)


def run(
    bench: Bench, name: str, trips: int, homes: int, rate: float, extra: dict[str, str]
) -> RunResult:
    """Everything of one run; the gateway is stopped before this returns."""
    with ExitStack() as stack:
        db_url = bench.dbs.copy(f"alarms_{name}")
        gw = Gateway(bench, stack, name, db_url, extra)
        gw.wait_healthy()
        sensors = [
            _sensor(bench, stack, gw.secured_home(f"alarm-{name}-{i}")) for i in range(homes)
        ]
        token = gw.dispatcher(f"desk-{name}")
        watcher = CaseWatcher(gw.port, token)
        stack.callback(watcher.close)
        for sensor in sensors:
            sensor.report(DRY)
        _wait_for_ingest(gw, watcher, token, sensors[0])
        stored = Stored(db_url, [s.home.device.username for s in sensors])
        stack.callback(stored.close)
        trip = partial(_trip, gw, watcher, token, stored)
        for sensor in sensors:  # warm-up: every home's first case, unmeasured
            trip(sensor)

        background = None
        if rate > 0:
            background = Background(bench.port, bench.devices, rate)
            stack.callback(background.close)
            background.start()
            time.sleep(RAMP_S)
        sources: dict[str, Callable[[], float]] = {
            "gateway": partial(cpu_seconds, gw.pid),
            **bench.dbs.cpu_source(),
            "broker": bench.broker_cpu,
        }
        meter = CpuMeter(sources)
        latencies: list[float] = []
        offsets: list[float] = []
        meter.start()
        began = time.monotonic()
        for i in range(trips):
            offsets.append(time.monotonic() - began)
            latencies.append(trip(sensors[i % homes]))
            if (i + 1) % 100 == 0:
                print(f"    {name}: {i + 1} trips", flush=True)
        wall = time.monotonic() - began
        meter.stop()
        done = background.finish() if background is not None else None
        drain = _drain(db_url) if background is not None else None
        return RunResult(name, latencies, offsets, wall, meter.used, done, drain, watcher.strays)


def _sensor(bench: Bench, stack: ExitStack, home: LeakHome) -> Sensor:
    """Connected as the device itself, one connection per device."""
    d = home.device
    peer = mqtt_connect(bench.port, d.username, d.password, d.client_id)
    stack.callback(peer.close)
    if not peer.connected.is_set():
        raise RuntimeError(f"{d.username} could not connect: {peer.connect_reason}")
    return Sensor(home, peer)


def _trip(gw: Gateway, watcher: CaseWatcher, token: str, stored: Stored, sensor: Sensor) -> float:
    """Wet → the new case on the stream; then, untimed, dry, the case closed,
    and both reports stored before the next trip."""
    start = time.monotonic()
    sensor.report(WET)
    try:
        arrived, case = watcher.new_case(sensor.home.home, TRIP_TIMEOUT_S)
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}; gateway log:\n{gw.tail()}") from None
    sensor.report(DRY)
    username = sensor.home.device.username
    stored.published(username, 2)
    gw.close_case(token, case["id"])
    stored.wait(username, TRIP_TIMEOUT_S)
    return arrived - start


def _wait_for_ingest(gw: Gateway, watcher: CaseWatcher, token: str, sensor: Sensor) -> None:
    """Trip one home until a case shows: ingest is subscribed, the stream is live.
    A report sent before ingest subscribed is owed to no session and is lost."""
    deadline = time.monotonic() + 60
    while True:
        sensor.report(WET)
        try:
            _at, case = watcher.new_case(sensor.home.home, 2.0)
        except TimeoutError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no case within 60 s; gateway log:\n{gw.tail()}") from None
            sensor.report(DRY)
            continue
        gw.close_case(token, case["id"])
        sensor.report(DRY)
        watcher.forget_queued(settle=1.0)
        return


def _drain(db_url: str) -> float:
    """Seconds until the events table stops growing (for 1 s), from now."""
    db = Database(db_url)
    try:
        with db.engine.connect() as conn:
            began = last_change = time.monotonic()
            top = -1
            while time.monotonic() - last_change < 1.0:
                now_top = int(conn.execute(text("SELECT max(id) FROM events")).scalar() or 0)
                conn.rollback()  # a fresh snapshot each time
                if now_top != top:
                    top, last_change = now_top, time.monotonic()
                time.sleep(0.05)
            return max(0.0, last_change - began)
    finally:
        db.dispose()
