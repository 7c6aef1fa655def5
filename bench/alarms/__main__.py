"""The command line, ``python -m bench.alarms``: the options are in the package docstring."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench import alarms
from bench.alarms.report import report
from bench.alarms.trips import run
from bench.ingest.rig import Bench, RigOptions


def main() -> None:
    doc = alarms.__doc__
    parser = argparse.ArgumentParser(
        prog="python -m bench.alarms", description=doc.split("\n\n")[0] if doc else None
    )
    parser.add_argument("--trips", type=int, default=1000)
    parser.add_argument("--homes", type=int, default=20)
    parser.add_argument("--background-devices", type=int, default=20)
    parser.add_argument(
        "--background-rate", type=float, default=2000, help="msg/s in total; 0 skips that run"
    )
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="MOYDOM_X=V",
        help="extra environment for the gateway, e.g. MOYDOM_INGEST_LINGER_MS=0 (repeatable)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs) for a look"
    )
    args = parser.parse_args()
    if args.trips < 1 or args.homes < 1 or args.background_devices < 1:
        parser.error("--trips, --homes and --background-devices must be positive")
    if any(not e.startswith("MOYDOM_") or "=" not in e for e in args.gateway_env):
        parser.error("--gateway-env takes MOYDOM_NAME=VALUE")
    extra = dict(e.split("=", 1) for e in args.gateway_env)
    if args.background_rate < 0:
        parser.error("--background-rate must not be negative")
    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="moydom-bench-alarms-"))
        if args.keep:
            stack.callback(print, f"kept {tmp}")
        else:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        # bench.ingest's rig: broker, migrated template database, and the
        # background devices (one motion sensor per contract, no security).
        rig = RigOptions(
            messages=args.trips,
            publishers=args.background_devices,
            database=args.database,
            publisher="python",  # not used here: no C publisher to compile
            keep=args.keep,
        )
        bench = Bench(rig, stack, tmp)
        print(
            f"alarm benchmark: {args.trips:,} leak trips over {args.homes} secured homes, "
            f"each → a new case on /api/v1/dispatch/stream"
        )
        print(
            f"machine: {os.cpu_count()} CPUs; broker: Mosquitto with moydom's generated config, "
            f"port {bench.port}; gateway: moydom run (api, ingest, alarms), one process"
        )
        print(f"database: {bench.dbs.describe()}; a fresh copy of the template per run")
        if extra:
            print("gateway: " + "; ".join(f"{k}={v}" for k, v in extra.items()))
        plan = [("idle", 0.0)]
        if args.background_rate > 0:
            plan.append(("background", args.background_rate))
            print(
                f"background: {args.background_devices} motion sensors, target "
                f"{args.background_rate:,.0f} msg/s in total at QoS 1, one publisher process"
            )
        results = []
        for name, rate in plan:
            print(f"  {name}: starting", flush=True)
            results.append(run(bench, name, args.trips, args.homes, rate, extra))
        report(results)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # everything started is stopped by now
        print("interrupted; everything it started is stopped", file=sys.stderr)
        raise SystemExit(130) from None
