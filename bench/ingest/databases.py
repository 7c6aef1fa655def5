"""The database under test: a provisioned template and a fresh copy per timed run."""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from bench.ingest.cluster import DurablePostgres
from bench.ingest.cpu import postgres_cpu


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
