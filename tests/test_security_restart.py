"""Invariant 2: an entry-delay deadline survives ``kill -9`` of the process
that runs ingest and the alarms role, and fires at its original time — or at
once, stamped with that time, if the gateway comes back after it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db.models import Event
from tests.conftest import Gateway
from tests.security_support import central_station, expect_codes, mail, secure
from tests.test_chaos import MOYDOM
from tests.test_ingest import wait_until
from tests.test_sia import Receiver

__all__ = ["central_station", "mail"]  # fixtures
ENTRY_DELAY_S = 4.0


class Roles:
    """``moydom run --role ingest --role alarms`` as a real process, to be killed."""

    def __init__(self, gw: Gateway, receiver: Receiver, cwd: Path) -> None:
        s = gw.settings
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MOYDOM_")}
        self.env.update(
            MOYDOM_VAR_DIR=str(s.var_dir),
            MOYDOM_DATABASE_URL=s.database_url,
            MOYDOM_MQTT_URL=s.mqtt_url,
            MOYDOM_MQTT_BROKER="external",
            MOYDOM_INGEST_WORKER="restart",
            MOYDOM_ALARMS_POLL_S="0.2",
            MOYDOM_CENTRAL_STATION_HOST="127.0.0.1",
            MOYDOM_CENTRAL_STATION_PORT=str(receiver.port),
        )
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.cwd / "roles.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [MOYDOM, "run", "--role", "ingest", "--role", "alarms"],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=log,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


@pytest.fixture
def roles(gateway_factory: Any, central_station: Receiver, tmp_path: Path) -> Iterator[Any]:
    gw: Gateway = gateway_factory()
    process = Roles(gw, central_station, tmp_path)
    yield gw, process
    process.stop()


@pytest.mark.slow
@pytest.mark.parametrize("back", ["before", "after"])
def test_entry_delay_survives_kill_9(
    roles: tuple[Gateway, Roles], central_station: Receiver, back: str
) -> None:
    gw, process = roles
    timing = {"armed_away": {"exit_delay_s": 0, "entry_delay_s": ENTRY_DELAY_S}}
    home = secure(gw, "5301", timing=timing, start_roles=process.start)

    def stored() -> int:
        with gw.ctx.db.session() as session:
            return len(session.scalars(select(Event.id)).all())

    # The ingest session must exist before a trip is published.
    def ingest_is_up() -> bool:
        home.send("hall", {"linkquality": 80})
        return stored() > 0

    wait_until(ingest_is_up, 20)
    home.arm()
    home.send("door", {"contact": False})
    home.wait_status("pending")
    deadline = datetime.fromisoformat(home.panel()["deadline"])
    process.kill()
    if back == "before":
        time.sleep(1.0)
    else:
        time.sleep((deadline - datetime.now(UTC)).total_seconds() + 2.0)
    process.start()
    wait_until(lambda: len(home.cases()) == 1, 20)
    (case,) = home.cases()
    opened = datetime.fromisoformat(case["opened_at"])
    assert opened == deadline, "the alarm carries the deadline's own time"
    assert home.panel()["status"] == "triggered"
    assert expect_codes(central_station, {"134"}, timeout=20)["event_qualifier"] == "1"
    if back == "before":
        # Fired while running: within a poll of its time, not at a restart.
        triggered = _first_alert_time(home.gw, "triggered")
        assert triggered is not None and triggered - deadline < timedelta(seconds=1)


def _first_alert_time(gw: Gateway, status: str) -> datetime | None:
    r = gw.http.get("/api/v1/alerts", params={"category": "security"}, headers=gw.login("5301"))
    for alert in r.json()["items"]:
        if alert["body"].get("new") == status:
            return datetime.fromisoformat(alert["at"])
    return None
