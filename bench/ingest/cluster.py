"""The private PostgreSQL cluster: tests.support's, with fsync on."""

from __future__ import annotations

import os
import shutil
from typing import Any

import psycopg

from tests.support import PG_BIN, PostgresCluster


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
