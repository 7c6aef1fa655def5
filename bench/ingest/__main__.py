"""The command line, ``python -m bench.ingest``: the options are in the package docstring."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench import ingest
from bench.ingest.moydom import SHARED_SETTING, run_moydom
from bench.ingest.publishers import INFLIGHT
from bench.ingest.raw import run_raw
from bench.ingest.report import report
from bench.ingest.rig import Bench, RigOptions


def main() -> None:
    doc = ingest.__doc__
    # prog: the name the usage line showed when this was bench/ingest.py.
    parser = argparse.ArgumentParser(
        prog="ingest.py", description=doc.split("\n\n")[0] if doc else None
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--publisher",
        choices=["c", "python"],
        default="c",
        help="load generator: libmosquitto (compiled at run time, default) or paho",
    )
    parser.add_argument(
        "--py-spy",
        default="",
        metavar="FILE",
        help="record the 1-worker ingest with py-spy (.json speedscope, .txt collapsed, else svg)",
    )
    parser.add_argument(
        "--py-spy-samples",
        choices=["wall", "cpu", "gil"],
        default="wall",
        help="what py-spy samples: every thread also while it waits (wall, the default), "
        "only threads not idle in the kernel (cpu), or only the thread holding the GIL (gil)",
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
        options = RigOptions(
            messages=args.messages,
            publishers=args.publishers,
            database=args.database,
            publisher=args.publisher,
            py_spy=args.py_spy,
            py_spy_samples=args.py_spy_samples,
            ingest_env=dict(e.split("=", 1) for e in args.ingest_env),
            keep=args.keep,
        )
        bench = Bench(options, stack, tmp)
        print(
            f"ingest benchmark: {bench.n:,} QoS 1 messages from {bench.m} publishers "
            f"({'libmosquitto (C)' if args.publisher == 'c' else 'paho (Python)'}, MQTT v5, "
            f"one process each, ≤ {INFLIGHT} in flight each)"
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
        phases = [run_raw(bench)]
        print(f"  raw: {phases[-1].rate:,.0f} msg/s", flush=True)
        phases.append(run_moydom(bench, ["b1"], bench.dbs.copy("ingest_1w")))
        print(f"  moydom 1 worker: {phases[-1].rate:,.0f} msg/s", flush=True)
        phases.append(run_moydom(bench, ["b1", "b2"], bench.dbs.copy("ingest_2w")))
        print(f"  moydom 2 workers: {phases[-1].rate:,.0f} msg/s", flush=True)
        report(phases)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # everything started is stopped by now
        print("interrupted; everything it started is stopped", file=sys.stderr)
        raise SystemExit(130) from None
