"""Invariant 2: an entry-delay deadline survives ``kill -9`` of the process
that runs ingest and the alarms role, and fires at its original time — or at
once, stamped with that time, if the gateway comes back after it."""

from __future__ import annotations

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
from tests.support import MoydomProcess, moydom_env
from tests.test_ingest import wait_until
from tests.test_sia import Receiver

__all__ = ["central_station", "mail"]  # fixtures
ENTRY_DELAY_S = 4.0


def roles_process(gw: Gateway, receiver: Receiver, cwd: Path) -> MoydomProcess:
    """``moydom run --role ingest --role alarms`` on the gateway's broker and database."""
    s = gw.settings
    env = moydom_env(
        var_dir=str(s.var_dir),
        database_url=s.database_url,
        mqtt_url=s.mqtt_url,
        mqtt_broker="external",
        ingest_worker="restart",
        alarms_poll_s="0.2",
        central_station_host="127.0.0.1",
        central_station_port=str(receiver.port),
    )
    return MoydomProcess(env, cwd, ["ingest", "alarms"], "roles")


@pytest.fixture
def roles(gateway_factory: Any, central_station: Receiver, tmp_path: Path) -> Iterator[Any]:
    gw: Gateway = gateway_factory()
    process = roles_process(gw, central_station, tmp_path)
    yield gw, process
    process.stop()


@pytest.mark.slow
@pytest.mark.parametrize("back", ["before", "after"])
def test_entry_delay_survives_kill_9(
    roles: tuple[Gateway, MoydomProcess], central_station: Receiver, back: str
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
