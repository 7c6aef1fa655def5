"""The gateway under test, ``moydom run`` with every role as a subprocess, and
the admin and dispatcher REST calls that set it up."""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx

from bench.ingest.moydom import MOYDOM
from bench.ingest.publishers import BenchDevice
from bench.ingest.rig import (
    ADMIN_PASSWORD,
    ADMIN_TOKEN,
    SECRET_KEY,
    SERVICE_PASSWORD,
    Bench,
    stop_process,
)
from gateway.broker.acls import SERVICE_ROLE
from gateway.broker.dynsec import DynSecClient
from tests.support import free_port

ACCOUNT = "1234"
PASSWORD = "bench-password-123"


@dataclass(frozen=True)
class LeakHome:
    """A secured home with one leak sensor; ``device.topic`` is its state topic."""

    number: str
    home: str
    device: BenchDevice


def release_service_role(bench: Bench) -> None:
    """Take the service role off the service account before a gateway starts.

    Each start with the api role deletes and recreates that role
    (``Provisioner.ensure_service_account``) while the account still holds
    it; Mosquitto 2.0.11's dynamic security keeps a dangling reference
    (eclipse-mosquitto/mosquitto#2660), ``getClient`` then answers with freed
    memory and the gateway refuses to start. With the role released first,
    the delete has no holder and the gateway adds the role back itself.
    """
    s = bench.settings
    dynsec = DynSecClient(s.mqtt_host, s.mqtt_port, s.mqtt_admin_username, ADMIN_PASSWORD)
    dynsec.connect()
    try:
        dynsec.command("removeClientRole", username=s.mqtt_username, rolename=SERVICE_ROLE)
    finally:
        dynsec.close()


class Gateway:
    """One ``moydom run`` on the bench's broker and a given database; stopped
    (and its ingest session dropped from the broker) when ``stack`` unwinds."""

    def __init__(
        self, bench: Bench, stack: ExitStack, name: str, db_url: str, extra: dict[str, str]
    ) -> None:
        self.port = free_port()
        self.log = bench.tmp / f"gateway-{name}.log"
        worker = f"alarms-{name}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOYDOM_")}
        env.update(
            MOYDOM_VAR_DIR=str(bench.settings.var_dir),
            MOYDOM_DATABASE_URL=db_url,
            MOYDOM_AUTO_MIGRATE="false",  # the template is migrated
            MOYDOM_MQTT_URL=bench.settings.mqtt_url,
            MOYDOM_MQTT_BROKER="external",
            MOYDOM_MQTT_PASSWORD=SERVICE_PASSWORD,
            MOYDOM_MQTT_ADMIN_PASSWORD=ADMIN_PASSWORD,
            MOYDOM_ADMIN_TOKEN=ADMIN_TOKEN,
            MOYDOM_SECRET_KEY=SECRET_KEY,
            MOYDOM_HTTP_HOST="127.0.0.1",
            MOYDOM_HTTP_PORT=str(self.port),
            MOYDOM_INGEST_WORKER=worker,
        )
        env.update(extra)
        release_service_role(bench)
        # Registered first, so it runs last: the persistent session would
        # otherwise keep a copy of every later message for a worker now gone.
        stack.callback(bench.purge_session, f"moydom-ingest-{worker}")
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [MOYDOM, "run"],
                env=env,
                cwd=bench.tmp,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the bench only; we stop it
            )
        stack.callback(stop_process, self.proc)
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}/api/v1",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
            trust_env=False,  # no proxy: traffic stays on 127.0.0.1
        )
        stack.callback(self.http.close)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Until ``GET /health`` says the database and the broker answer."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moydom run exited:\n{self.tail()}")
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"moydom run not healthy in {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.2)

    def _call(self, method: str, path: str, want: int, **kwargs: Any) -> Any:
        r = self.http.request(method, path, **kwargs)
        if r.status_code != want:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def secured_home(self, number: str) -> LeakHome:
        """A contract, its leak sensor and the security service sold (no central
        station configured: the case is all there is)."""
        body = {"number": number, "password": PASSWORD, "address": f"Novosibirsk, flat {number}"}
        self._call("POST", "/admin/contracts", 201, json=body)
        device = self._call(
            "POST",
            f"/admin/contracts/{number}/devices",
            201,
            json={"kind": "leak", "name": "bath"},
        )
        home = device["home"]
        self._call("PUT", f"/admin/homes/{home}/security", 200, json={"account": ACCOUNT})
        creds = BenchDevice(
            device["username"], device["password"], device["client_id"], device["topics"]["state"]
        )
        return LeakHome(number, home, creds)

    def dispatcher(self, login: str) -> str:
        """A new dispatcher account's access token."""
        password = "bench dispatch pass"
        body = {"login": login, "name": "Bench desk", "password": password}
        self._call("POST", "/admin/dispatchers", 201, json=body)
        token = self._call(
            "POST",
            "/dispatch/login",
            200,
            json={"login": login, "password": password},
        )["access_token"]
        return str(token)

    def close_case(self, token: str, case_id: int) -> None:
        self._call(
            "POST",
            f"/dispatch/cases/{case_id}/close",
            200,
            json={"resolution": "test", "note": "bench trip"},
            headers={"Authorization": f"Bearer {token}"},
        )
