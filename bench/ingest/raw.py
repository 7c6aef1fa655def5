"""The raw run: ``mosquitto_sub`` in a persistent session, the broker's own speed."""

from __future__ import annotations

import os
import subprocess
import threading
import time

from bench.ingest.cpu import CpuMeter, cpu_seconds
from bench.ingest.phase import Phase
from bench.ingest.publishers import summarise
from bench.ingest.rig import SERVICE_PASSWORD, Bench, stop_process
from devices.topics import all_devices_filter

RAW_CLIENT_ID = "bench-raw"


def run_raw(bench: Bench) -> Phase:
    """Time mosquitto_sub receiving every message (plus one warm-up)."""
    common = [
        "mosquitto_sub",
        "-h",
        "127.0.0.1",
        "-p",
        str(bench.port),
        "-V",
        "mqttv5",
        "-q",
        "1",
        "-c",
        "-i",
        RAW_CLIENT_ID,
        "-u",
        bench.settings.mqtt_username,
        "-P",
        SERVICE_PASSWORD,
        "-t",
        all_devices_filter(bench.settings.mqtt_topic_root),
    ]
    # Create the persistent session first: every message from now on is
    # owed to it, whether or not the client is connected yet.
    subprocess.run([*common, "-E"], check=True, timeout=15, capture_output=True)
    out = bench.tmp / "raw.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [*common, "-C", str(bench.n + 1)],
            stdout=sink,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    bench.stack.callback(stop_process, proc)
    bench.warm_up()  # the +1: seen once the subscriber is live
    deadline = time.monotonic() + 15
    while out.stat().st_size == 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("mosquitto_sub did not receive the warm-up message")
        time.sleep(0.01)

    fleet = bench.fleet()
    fleet.start()
    exited: dict[str, float] = {}

    def watch() -> None:
        # Wait for the exit without reaping, so /proc still has its CPU.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        exited["at"] = time.monotonic()
        exited["cpu"] = cpu_seconds(proc.pid)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    meter = CpuMeter({"broker": bench.broker_cpu})
    meter.start()
    fleet.fire()
    watcher.join(bench.timeout())
    meter.stop()
    if "at" not in exited:
        raise RuntimeError("mosquitto_sub did not receive every message in time")
    code = proc.wait()
    if code != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"mosquitto_sub exited with {code}: {err.strip()}")
    results = fleet.collect()
    first, last, acked = summarise(results, bench.n)
    with out.open("rb") as printed:
        lines = sum(1 for _ in printed)
    if lines != bench.n + 1:
        raise RuntimeError(f"mosquitto_sub printed {lines} lines, expected {bench.n + 1}")
    # Drop the persistent session, or the broker would keep a copy of every
    # later message for it.
    bench.purge_session(RAW_CLIENT_ID)
    cpu = {"consumer": exited["cpu"], **meter.used}
    return Phase(
        "raw mosquitto_sub",
        bench.n,
        first,
        exited["at"],
        last,
        acked,
        cpu,
        sum(r.cpu_s for r in results),
        "consumer CPU: whole life of mosquitto_sub",
    )
