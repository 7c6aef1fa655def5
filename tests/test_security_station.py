"""Issue 11: what a central station receives, read from a real DC-09 receiver
(pysiaalarm, in a child process): the right user for duress and lockouts, a
restore for every alarm, one frame per event whether the receiver is up, down
or back, the line account, a bad key refused at start, and a station that
does not receive made visible on health, the case and an operator alert.

Frames are compared as ``"QXYZ ri"`` strings, e.g. ``"1154 003"``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db.models import Device
from gateway.db.security_models import AlarmPanel, Case, Outbox
from gateway.security.panel import security_service
from gateway.security.resend import resend_due
from tests.conftest import Gateway
from tests.security_support import ACCOUNT, DURESS, WRONG, SecuredHome, secure
from tests.support import MOYDOM, free_port
from tests.test_cli import _env
from tests.test_ingest import wait_until
from tests.test_sia import KEY, WRONG_KEY, Receiver

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
ACK_TIMEOUT_S = 1.0


def frames(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['event_qualifier']}{e['event_type']} {e['ri']}" for e in events]


def collect(receiver: Receiver, count: int, settle: float = 1.5) -> list[str]:
    """``count`` frames, then whatever else comes within ``settle`` seconds."""
    got = [receiver.expect(15) for _ in range(count)]
    return frames(got + receiver.drain(settle))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    station = Receiver(free_port(), [ACCOUNT])
    station.start()
    yield station
    station.kill()


def station_gateway(gateway_factory: Any, receiver: Receiver, **overrides: Any) -> Gateway:
    gw: Gateway = gateway_factory(
        central_station_host="127.0.0.1",
        central_station_port=receiver.port,
        dispatch_ack_timeout_s=ACK_TIMEOUT_S,
        alarms_poll_s=0.2,
        **overrides,
    )
    return gw


def number(home: SecuredHome, name: str) -> str:
    with home.gw.ctx.db.session() as session:
        device_id = session.scalars(select(Device.id).where(Device.uid == home.devices[name]["id"]))
        return f"{device_id.one() % 1000:03d}"


def user_number(home: SecuredHome, name: str) -> str:
    url = f"/api/v1/homes/{home.home}/security/users"
    users = home.gw.http.get(url, headers=home.owner).json()
    return f"{next(u['id'] for u in users if u['name'] == name) % 1000:03d}"


@SQLITE
@pytest.mark.parametrize("source", ["keypad", "app"])
def test_duress_and_lockout_name_the_user_not_the_keypad(
    gateway_factory: Any, receiver: Receiver, source: str
) -> None:
    home = secure(station_gateway(gateway_factory, receiver), "5401", lockout_after=2)
    r = home.gw.http.post(
        f"/api/v1/homes/{home.home}/security/users",
        json={"name": "boris", "code": "5555"},
        headers=home.owner,
    )
    assert r.status_code == 201
    anna, keypad = user_number(home, "anna"), number(home, "keypad")
    assert anna != keypad  # else the test could not tell them apart

    def disarm(code: str, transaction: int) -> None:
        if source == "keypad":
            body = {"action": "disarm", "action_code": code, "action_transaction": transaction}
            home.send("keypad", body)
        else:
            home.disarm(code)

    home.arm()
    assert collect(receiver, 1, settle=0) == ["3407 000"]  # armed from the app, no code
    disarm(DURESS, 1)
    # The duress: once, with anna's number, and no copy when the case is
    # re-sent to the console (several acknowledgement timeouts pass).
    opening = "1407" if source == "app" else "1401"
    assert collect(receiver, 2, settle=3 * ACK_TIMEOUT_S) == [f"1121 {anna}", f"{opening} {anna}"]
    wait_until(lambda: home.cases()[0]["resends"] >= 2, 10)
    disarm(WRONG, 2)
    disarm(WRONG, 3)
    assert collect(receiver, 1) == ["1461 000"]  # a lockout's codes belong to nobody
    home.close()


@SQLITE
def test_every_alarm_is_followed_by_its_restore(gateway_factory: Any, receiver: Receiver) -> None:
    """The table "event → frames sent" of docs/central-station.md, measured."""
    home = secure(station_gateway(gateway_factory, receiver), "5402")
    body = {
        "account": ACCOUNT,
        "timing": {"armed_away": {"exit_delay_s": 0, "entry_delay_s": 1, "trigger_time_s": 60}},
        "zones": [{"device": home.devices["hall"]["id"], "type": "instant"}],
    }
    url = f"/api/v1/admin/homes/{home.home}/security"
    assert home.gw.http.put(url, json=body, headers=home.gw.admin).status_code == 200
    hall, door, bath = (number(home, n) for n in ("hall", "door", "bath"))
    anna = user_number(home, "anna")
    offline, online = b'{"state": "offline"}', b'{"state": "online"}'
    availability = home.devices["hall"]["topics"]["availability"]
    steps: list[tuple[str, Any, list[str]]] = [
        ("leak", lambda: home.send("bath", {"water_leak": True}), [f"1154 {bath}"]),
        ("leak dry", lambda: home.send("bath", {"water_leak": False}), [f"3154 {bath}"]),
        ("tamper", lambda: home.send("door", {"tamper": True}), [f"1137 {door}"]),
        ("tamper cleared", lambda: home.send("door", {"tamper": False}), [f"3137 {door}"]),
        ("armed from the app", home.arm, ["3407 000"]),
        ("instant zone trips", lambda: home.send("hall", {"occupancy": True}), [f"1130 {hall}"]),
        ("instant zone clears", lambda: home.send("hall", {"occupancy": False}), [f"3130 {hall}"]),
        (
            "sensor offline while armed",
            lambda: home.peer("hall").publish(availability, offline),
            [f"1381 {hall}"],
        ),
        (
            "sensor back online",
            lambda: home.peer("hall").publish(availability, online),
            [f"3381 {hall}"],
        ),
        (
            "disarmed from the app in alarm",
            lambda: home.disarm("1234"),
            [f"1406 {anna}", f"1407 {anna}"],
        ),
        ("armed again", home.arm, ["3407 000"]),
        (
            "entry door opens, delay runs out",
            lambda: home.send("door", {"contact": False}),
            [f"1134 {door}"],
        ),
        ("entry door closes", lambda: home.send("door", {"contact": True}), [f"3134 {door}"]),
    ]
    measured = []
    for label, action, expected in steps:
        action()
        got = collect(receiver, len(expected), settle=1.0)
        measured.append((label, got))
        assert got == expected, label
    print("\n".join(f"| {label} | {' '.join(got)} |" for label, got in measured))
    home.close()


@SQLITE
def test_one_frame_per_event_with_the_receiver_up_down_and_back(
    gateway_factory: Any, receiver: Receiver
) -> None:
    home = secure(station_gateway(gateway_factory, receiver), "5403")
    bath, door = number(home, "bath"), number(home, "door")
    http = home.gw.http
    home.send("bath", {"water_leak": True})
    # Up: one frame, however many times the case is re-sent to the console.
    assert collect(receiver, 1, settle=3 * ACK_TIMEOUT_S) == [f"1154 {bath}"]
    assert http.get("/api/v1/health").json()["status"] == "ok"

    receiver.kill()
    home.send("door", {"tamper": True})

    def stuck() -> list[str]:
        cases = [c for c in home.cases() if c["alarm"] == "tamper"]
        return [e["text"] for c in cases for e in c["timeline"] if e["kind"] == "central_station"]

    wait_until(lambda: bool(stuck()), 10)
    assert stuck()[0].startswith("central station not receiving: connection refused since ")
    health = http.get("/api/v1/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded" and health.json()["alerts"] == ["central-station"]
    time.sleep(4 * ACK_TIMEOUT_S)  # down: retries and console re-sends pile up
    assert len(stuck()) == 1, "one line per outage, not one per attempt"

    receiver.start()
    # Back: the alarm held back arrives once, within the retry cap.
    assert collect(receiver, 1, settle=3 * ACK_TIMEOUT_S) == [f"1137 {door}"]
    wait_until(lambda: http.get("/api/v1/health").json()["status"] == "ok", 10)
    wait_until(lambda: stuck()[-1].startswith("central station received it (ACK)"), 10)
    home.close()


def test_a_nakking_station_is_visible_on_health_the_case_and_an_operator_alert(
    gateway_factory: Any,
) -> None:
    station = Receiver(free_port(), [f"{ACCOUNT}:{KEY}"])
    station.start()
    try:
        gw = station_gateway(gateway_factory, station, central_station_key=WRONG_KEY)
        home = secure(gw, "5404")
        assert gw.http.get("/api/v1/health").json() == {
            "status": "ok",
            "database": "ok",
            "broker": "ok",
            "alerts": [],
        }
        home.send("bath", {"water_leak": True})

        def attempts() -> int:
            with gw.ctx.db.session() as session:
                rows = session.scalars(select(Outbox.attempts).where(Outbox.key.like("case-%")))
                return max(rows, default=0)

        wait_until(lambda: attempts() >= 3, 20)
        (case,) = home.cases()
        lines = [e["text"] for e in case["timeline"] if e["kind"] == "central_station"]
        assert len(lines) == 1, lines
        assert lines[0].startswith(
            "central station not receiving: NAK (wrong key or account?) since "
        )
        health = gw.http.get("/api/v1/health")
        assert health.status_code == 200
        assert (health.json()["status"], health.json()["alerts"]) == (
            "degraded",
            ["central-station"],
        )
        assert gw.http.get("/api/v1/admin/operator-alerts").status_code == 401
        (alert,) = gw.http.get("/api/v1/admin/operator-alerts", headers=gw.admin).json()
        assert (alert["key"], alert["text"], alert["open"]) == ("central-station", lines[0], True)
        assert alert["details"]["reason"] == "nak"
        with gw.ctx.db.session() as session:
            (error,) = session.scalars(select(Outbox.last_error).where(Outbox.key.like("case-%")))
        assert error is not None and "NAK (wrong key or account?)" in error
        assert station.nothing()
        home.close()
    finally:
        station.kill()


@SQLITE
@pytest.mark.parametrize(("line", "known"), [("9999", "9999"), ("", ACCOUNT)])
def test_line_account_in_the_header_home_account_in_the_data(
    gateway_factory: Any, line: str, known: str
) -> None:
    station = Receiver(free_port(), [known])
    station.start()
    try:
        gw = station_gateway(gateway_factory, station, central_station_account=line)
        home = secure(gw, "5405")
        home.send("bath", {"water_leak": True})
        got = station.expect(15)
        assert (got["account"], got["data_account"], got["event_type"]) == (known, ACCOUNT, "154")
        home.close()
    finally:
        station.kill()


def test_a_malformed_key_is_refused_at_start(tmp_path: Path) -> None:
    bad = KEY[:15]
    r = subprocess.run(
        [MOYDOM, "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(central_station_key=bad),
    )
    assert r.returncode == 2, r.stderr
    assert "configuration error" in r.stderr and "MOYDOM_CENTRAL_STATION_KEY" in r.stderr
    assert bad not in r.stderr, "a key is a secret, even a wrong one"


@SQLITE
def test_a_case_fired_late_is_resent_counted_from_when_it_became_visible(
    gateway_factory: Any, receiver: Receiver
) -> None:
    """Issue 12: the alarm keeps the deadline's time, its re-sends count from
    the moment dispatch could first see it."""
    gw = station_gateway(gateway_factory, receiver)

    def ingest_only() -> None:
        gw.start_ingest()  # no alarms role: the deadline waits for us

    home = secure(gw, "5406", start_roles=ingest_only)
    home.arm()
    home.send("door", {"contact": False})
    home.wait_status("pending")
    with gw.ctx.db.session() as session:
        deadline = session.scalars(select(AlarmPanel.next_deadline)).one()
    assert deadline is not None
    back = deadline + timedelta(seconds=41)  # the gateway was down until then
    timeout = timedelta(seconds=ACK_TIMEOUT_S)
    with gw.ctx.db.transaction() as session:
        security_service(gw.settings).tick_due(session, back)
    with gw.ctx.db.transaction() as session:
        (case,) = session.scalars(select(Case)).all()
        assert case.opened_at == deadline
        assert resend_due(session, back + timeout * 0.9, timeout).cases == []
    with gw.ctx.db.transaction() as session:
        assert resend_due(session, back + timeout, timeout).cases == [case.id]
    home.close()
