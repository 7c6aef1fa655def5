"""The moydom runs: ``moydom run --role ingest`` workers storing every message."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.ingest.cpu import CpuMeter, cpu_seconds
from bench.ingest.phase import Phase
from bench.ingest.publishers import summarise
from bench.ingest.rig import (
    ADMIN_PASSWORD,
    ADMIN_TOKEN,
    SECRET_KEY,
    SERVICE_PASSWORD,
    Bench,
    stop_process,
)
from gateway.db.engine import Database

MOYDOM = str(Path(sys.executable).with_name("moydom"))
STALL_S = 30.0
SHARED_SETTING = "MOYDOM_INGEST_SHARED_SUBSCRIPTION"


def run_moydom(bench: Bench, workers: list[str], db_url: str) -> Phase:
    """Time the workers storing every message, checking none is lost, doubled or rejected."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOYDOM_")}
    env.update(
        MOYDOM_VAR_DIR=str(bench.settings.var_dir),
        MOYDOM_DATABASE_URL=db_url,
        MOYDOM_MQTT_URL=bench.settings.mqtt_url,
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
    env.update(bench.ingest_env)
    db = Database(db_url)
    bench.stack.callback(db.dispose)
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    for name in workers:
        log = bench.tmp / f"ingest-{name}-{len(workers)}w.log"
        logs.append(log)
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [MOYDOM, "run", "--role", "ingest"],
                env={**env, "MOYDOM_INGEST_WORKER": name},
                cwd=bench.tmp,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        bench.stack.callback(stop_process, proc)
        procs.append(proc)

    def scalar(conn: Any, sql: str) -> int:
        value = conn.execute(text(sql)).scalar()
        conn.rollback()  # a fresh snapshot each time (SQLite keeps one per transaction)
        return int(value or 0)

    fleet = bench.fleet()
    with db.engine.connect() as conn:
        # Warm up until every worker has committed (its markers are in the
        # table), so all of them are connected and subscribed. A marker
        # lives only until the commit after the broker confirmed its
        # acknowledgement, some 20 ms (the linger) later, so the table is
        # polled every few ms, and what each poll sees is collected: two
        # workers need not be caught at once. (Polling once 50 ms after each
        # warm-up could miss every marker, by the same timing each time.)
        sessions = {f"moydom-ingest-{name}" for name in workers}
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        while True:
            for proc, log in zip(procs, logs, strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"ingest exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                tails = "; ".join(
                    f"{log.name}: {' | '.join(log.read_text(errors='replace').splitlines()[-5:])}"
                    for log in logs
                )
                raise RuntimeError(
                    "ingest workers did not all store a warm-up message in 60 s "
                    f"(seen: {sorted(seen) or 'none'}); {tails}"
                    + "".join(_stacks(proc.pid) for proc in procs)
                    + _broker_log(bench, sessions)
                    + f"\n--- warm-up publisher: {bench.warm_state()}"
                )
            bench.warm_up()
            until = time.monotonic() + 0.05
            while time.monotonic() < until and not sessions <= seen:
                seen |= {
                    row[0]
                    for row in conn.execute(text("SELECT DISTINCT session FROM ingest_markers"))
                }
                conn.rollback()
                time.sleep(0.003)
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
        target = warm + bench.n

        sources: dict[str, Callable[[], float]] = {
            f"ingest {name}": partial(cpu_seconds, proc.pid)
            for name, proc in zip(workers, procs, strict=True)
        }
        sources["broker"] = bench.broker_cpu
        sources.update(bench.dbs.cpu_source())
        meter = CpuMeter(sources)
        spy = bench.start_py_spy(procs[0].pid) if len(workers) == 1 else None
        meter.start()
        fleet.fire()
        stop_at = time.monotonic() + bench.timeout()
        progress = (base_id, time.monotonic())
        failure = ""
        while True:
            # max(id) is an index probe; count(*) only to confirm the end.
            top = scalar(conn, "SELECT max(id) FROM events")
            now = time.monotonic()
            if top != progress[0]:
                progress = (top, now)
            if top >= base_id + bench.n:
                stored = scalar(conn, "SELECT count(*) FROM events")
                if stored >= target:
                    done = time.monotonic()
                    break
            if now - progress[1] > STALL_S or now > stop_at:
                stored = scalar(conn, "SELECT count(*) FROM events")
                done = progress[1]
                failure = (
                    f"STALLED: {stored - warm:,} of {bench.n:,} stored, none for "
                    f"{now - progress[1]:.0f} s; {_last_error(logs)}"
                )
                break
            time.sleep(0.005)
        meter.stop()
        if spy is not None:
            stop_process(spy, signal.SIGINT)
        results = fleet.collect()
        first, last, acked = summarise(results, bench.n)
        time.sleep(1.0)  # anything beyond the count would be a duplicate
        final = scalar(conn, "SELECT count(*) FROM events")
        rejected = scalar(conn, "SELECT count(*) FROM rejected_messages")
    for proc in procs:
        stop_process(proc)
    # End the workers' sessions, so the next run starts with none (after a
    # stall the broker would redeliver this run's messages into it).
    for name in workers:
        bench.purge_session(f"moydom-ingest-{name}")
    if not failure and (final != target or rejected):
        raise RuntimeError(
            f"stored {final}, expected {target}; {rejected} rejected; "
            f"{_duplicates(db)}; logs in {bench.tmp if bench.keep else '(use --keep)'}"
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


def _broker_log(bench: Bench, sessions: set[str]) -> str:
    """What the broker logged about the workers (for a stuck run)."""
    path = bench.broker.cfg.log_path
    if not path.exists():
        return ""
    lines = [
        line
        for line in path.read_text(errors="replace").splitlines()
        if any(s in line for s in sessions)
    ]
    return "\n--- broker log:\n" + "\n".join(lines[-20:])


def _stacks(pid: int) -> str:
    """The threads' stacks of a worker, if py-spy is at hand (for a stuck run)."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(binary).exists():
        return ""
    dump = subprocess.run(
        [binary, "dump", "--pid", str(pid)], capture_output=True, text=True, check=False
    )
    return f"\n--- py-spy dump of {pid}:\n{dump.stdout}{dump.stderr}"


def _duplicates(db: Database) -> str:
    seq = "json_extract(body, '$.seq')" if db.is_sqlite else "body->>'seq'"
    with db.engine.connect() as conn:
        row = conn.execute(
            text(
                f"SELECT count(*), min(seq), max(seq), sum(n) FROM (SELECT {seq} AS seq, "
                "count(*) AS n FROM events GROUP BY 1 HAVING count(*) > 1) d"
            )
        ).one()
    return f"{row[0]} sequence numbers stored more than once ({row[3]} rows, {row[1]}..{row[2]})"


def _last_error(logs: list[Path]) -> str:
    """The last exception line an ingest log shows, for a stalled run."""
    found = "no error in the ingest log"
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            head = line.split(":", 1)[0]
            if head.endswith(("Error", "Exception", "TooComplex")) and "." in head:
                found = f"{log.name}: {line[:300]}"
    return found
