"""The ``moydom`` command as an operator uses it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect

from gateway.broker.config import BrokerConfig
from gateway.broker.embedded import EmbeddedBroker
from gateway.db.engine import make_engine
from gateway.runtime import broker_config
from gateway.settings import Settings
from tests.conftest import fresh_pg_database
from tests.support import MOYDOM, PostgresCluster, device_connect, free_port, mqtt_connect


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOYDOM_")}
    env.update({f"MOYDOM_{k.upper()}": v for k, v in values.items()})
    return env


def test_help_lists_the_commands() -> None:
    out = subprocess.run([MOYDOM, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("run", "demo", "db", "broker"):
        assert command in out


def test_an_unknown_role_is_refused_clearly(tmp_path: Path) -> None:
    r = subprocess.run(
        [MOYDOM, "run", "--role", "recorders"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
    )
    assert r.returncode == 2 and "recorders" in r.stderr


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    r = subprocess.run(
        [MOYDOM, "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(http_port="nope"),
    )
    assert r.returncode == 2 and "http_port" in r.stderr


def test_db_upgrade_on_postgresql(pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    url = fresh_pg_database(pg_cluster).replace("+psycopg", "")
    r = subprocess.run(
        [MOYDOM, "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(database_url=url),
    )
    assert r.returncode == 0, r.stderr
    engine = make_engine(url)
    assert {"contracts", "devices"} <= set(inspect(engine).get_table_names())
    engine.dispose()


@pytest.mark.slow
def test_run_api_role_against_an_external_broker(tmp_path: Path) -> None:
    """An operator's own Mosquitto (here: started from moydom's generated config
    with a dynsec admin account), and `moydom run --role api` that only connects."""
    port = free_port()
    settings = Settings(var_dir=tmp_path / "ext", mqtt_url=f"mqtt://127.0.0.1:{port}")
    cfg: BrokerConfig = broker_config(settings)
    broker = EmbeddedBroker(cfg, "ops-admin", "ops-admin-password-1", "mosquitto")
    broker.start()
    http_port = free_port()
    env = _env(
        mqtt_url=f"mqtt://127.0.0.1:{port}",
        mqtt_broker="external",
        mqtt_admin_username="ops-admin",
        mqtt_admin_password="ops-admin-password-1",
        mqtt_password="service-password-123",
        admin_token="billing-system-token-1",
        http_port=str(http_port),
    )
    proc = subprocess.Popen([MOYDOM, "run", "--role", "api"], cwd=tmp_path, env=env)
    try:
        base = f"http://127.0.0.1:{http_port}/api/v1"
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        admin = {"Authorization": "Bearer billing-system-token-1"}
        r = httpx.post(
            f"{base}/admin/contracts",
            json={"number": "6001", "password": "long-enough", "address": "a"},
            headers=admin,
        )
        assert r.status_code == 201
        dev = httpx.post(
            f"{base}/admin/contracts/6001/devices",
            json={"kind": "motion", "name": "m"},
            headers=admin,
        )
        assert dev.status_code == 201
        body = dev.json()
        assert device_connect(port, body).connected.is_set()
        assert mqtt_connect(port, "moydom", "service-password-123").connected.is_set()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        # moydom only connected: the operator's broker outlives it.
        assert mqtt_connect(port, "moydom", "service-password-123").connected.is_set()
        broker.stop()
