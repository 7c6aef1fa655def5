"""Fixtures on real parts: a private Mosquitto started by moydom's own start-up
code with its generated config, SQLite and a private PostgreSQL cluster."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from gateway.context import AppContext
from gateway.ingest.worker import IngestWorker
from gateway.runtime import start_alarms, start_context, start_ingest
from gateway.security.role import AlarmsRole
from gateway.settings import Settings
from tests.support import PostgresCluster, free_port

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    # Not under pytest's tmp dir: that is private to root, and the server runs
    # as the postgres user.
    base = Path(tempfile.mkdtemp(prefix="moydom-pg-"))
    cluster = PostgresCluster(base)
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


def fresh_pg_database(cluster: PostgresCluster) -> str:
    """An empty database of its own for one test."""
    name = f"t{next(_db_counter)}"
    with psycopg.connect(cluster.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend, one per test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'moydom.db'}"
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    return fresh_pg_database(cluster)


@dataclass
class Gateway:
    """A running gateway (embedded broker, database, API) and helpers to drive it."""

    ctx: AppContext
    http: TestClient
    stack: ExitStack

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def mqtt_port(self) -> int:
        return self.settings.mqtt_port

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ctx.secrets.admin_token}"}

    def start_ingest(self, worker: str = "w1", **overrides: Any) -> IngestWorker:
        """An ingest worker on this gateway's broker and database, ready to receive."""
        settings = self.settings.model_copy(update={"ingest_worker": worker, **overrides})
        w = start_ingest(settings, self.ctx.secrets, self.ctx.db, self.stack)
        assert w.ready.wait(10), "ingest did not connect"
        return w

    def start_alarms(self, **overrides: Any) -> AlarmsRole:
        """The alarms role (deadlines, case re-sends, the outbox) on this gateway."""
        settings = self.settings.model_copy(update=overrides)
        role = start_alarms(settings, self.ctx.secrets, self.ctx.db, self.stack)
        assert role.ready.wait(10), "alarms role did not start"
        return role

    def service_credentials(self) -> tuple[str, str]:
        return self.settings.mqtt_username, self.ctx.secrets.mqtt_password

    def create_contract(
        self, number: str, password: str = "correct horse 1", address: str = "Novosibirsk"
    ) -> Any:
        r = self.http.post(
            "/api/v1/admin/contracts",
            json={"number": number, "password": password, "address": address},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        return r.json()

    def create_device(self, number: str, kind: str, name: str, **extra: Any) -> Any:
        r = self.http.post(
            f"/api/v1/admin/contracts/{number}/devices",
            json={"kind": kind, "name": name, **extra},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        return r.json()

    def login(self, number: str, password: str = "correct horse 1") -> dict[str, str]:
        r = self.http.post("/api/v1/auth/login", json={"contract": number, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


def make_settings(tmp_path: Path, db_url: str, **overrides: Any) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=db_url,
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
        http_port=free_port(),
        **overrides,
    )


@pytest.fixture
def gateway_factory(tmp_path: Path, db_url: str) -> Iterator[Any]:
    """Start gateways on a fresh database and private broker; tear all down after."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> Gateway:
            settings = make_settings(tmp_path, db_url, **overrides)
            ctx = start_context(settings, stack)
            http = stack.enter_context(TestClient(create_app(ctx)))
            return Gateway(ctx, http, stack)

        yield start


@pytest.fixture
def gateway(gateway_factory: Any) -> Gateway:
    gw: Gateway = gateway_factory()
    return gw
