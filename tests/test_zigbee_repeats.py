"""Zigbee2MQTT repeats a device's cached state in later reports; only a change
is news. Published as a bridge publishes them, through the real broker,
ingest and alarm panel: one motion reported twice is one knock, heartbeats and
keypad polls raise nothing, a siren's ``alarm`` is read, and friendly names
with ``/`` work on their nested topics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from devices.edges import OCCUPANCY_TIMEOUT_S, observe
from devices.kinds import DeviceKind
from devices.payloads import parse
from devices.topics import Channel
from gateway.db.models import DeviceState, Event
from tests.conftest import Gateway
from tests.security_support import (
    CODE,
    MailSink,
    SecuredHome,
    central_station,
    keypad_reply,
    mail,
    secure,
    secured_gateway,
)
from tests.support import device_connect
from tests.test_ingest import count, publish, wait_until
from tests.test_sia import Receiver

__all__ = ["central_station", "mail"]  # fixtures

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _news(kind: DeviceKind, reports: list[tuple[float, dict[str, Any]]]) -> list[str]:
    """The event class of each report, fed in order to one device's memory."""
    memory: dict[str, Any] = {}
    classes = []
    for seconds, body in reports:
        msg = parse(kind, Channel.STATE, json.dumps(body).encode())
        msg, memory = observe(kind, memory, msg, T0 + timedelta(seconds=seconds))
        classes.append(msg.event)
    return classes


def test_a_repeated_state_is_telemetry_and_a_change_is_news() -> None:
    assert _news(
        DeviceKind.LEAK,
        [(0, {"water_leak": True}), (3600, {"water_leak": True, "battery": 97}),
         (7200, {"water_leak": False}), (7300, {"water_leak": False})],
    ) == ["leak", "telemetry", "leak", "telemetry"]  # fmt: skip
    assert _news(
        DeviceKind.KEYPAD,
        [(0, {"tamper": True}), (60, {"occupancy": True, "tamper": True}),
         (90, {"action": "arm_all_zones", "action_code": "1", "tamper": True})],
    ) == ["tamper", "telemetry", "keypad_action"]  # fmt: skip
    assert _news(
        DeviceKind.SIREN, [(0, {"alarm": True}), (5, {"alarm": True}), (9, {"alarm": False})]
    ) == ["siren", "telemetry", "siren"]


def test_motion_is_one_trip_until_false_or_the_occupancy_timeout() -> None:
    late = OCCUPANCY_TIMEOUT_S + 1
    assert _news(
        DeviceKind.MOTION,
        [(0, {"occupancy": True}), (1, {"occupancy": True, "illuminance": 23}),
         (50, {"occupancy": True}), (50 + late, {"occupancy": True}),
         (200, {"occupancy": False}), (201, {"occupancy": True})],
    ) == ["motion", "telemetry", "telemetry", "motion", "motion", "motion"]  # fmt: skip


@pytest.fixture
def home(
    gateway_factory: Any, central_station: Receiver, mail: tuple[MailSink, int]
) -> Iterator[SecuredHome]:
    secured = secure(secured_gateway(gateway_factory, central_station, mail), "7101")
    yield secured
    secured.close()


def _stored(gw: Gateway, n: int) -> list[tuple[str, dict[str, Any]]]:
    """The first ``n`` events, waited for: (class, body)."""
    wait_until(lambda: count(gw, Event) >= n)
    with gw.ctx.db.session() as s:
        return [(e.event, e.body) for e in s.scalars(select(Event).order_by(Event.id))][:n]


def _settings(home: SecuredHome, **zone: Any) -> None:
    r = home.gw.http.put(
        f"/api/v1/admin/homes/{home.home}/security",
        json={
            "account": "1234",
            "timing": {"armed_away": {"exit_delay_s": 0, "entry_delay_s": 0, "trigger_time_s": 30}},
            "zones": [{"device": home.devices["hall"]["id"], **zone}],
        },
        headers=home.gw.admin,
    )
    assert r.status_code == 200, r.text


def test_one_motion_reported_twice_is_one_knock(home: SecuredHome) -> None:
    _settings(home, type="instant", confirm_within_s=30)
    assert home.arm().json()["status"] == "armed_away"
    # An Aqara sensor: the motion, then its illuminance report with the cached occupancy.
    home.send("hall", {"occupancy": True, "linkquality": 120})
    home.send("hall", {"occupancy": True, "illuminance": 23, "linkquality": 120})
    events = _stored(home.gw, 2)
    assert [c for c, _ in events] == ["motion", "telemetry"]
    assert home.panel()["status"] == "armed_away"  # stepped in the same commit
    assert home.cases() == []
    # A second, distinct motion after the first ended is the second knock.
    home.send("hall", {"occupancy": False})
    home.send("hall", {"occupancy": True})
    home.wait_status("triggered")
    assert len(home.cases()) == 1


def test_heartbeats_and_keypad_polls_raise_nothing_new(home: SecuredHome) -> None:
    alerts = "/api/v1/alerts"
    home.send("bath", {"water_leak": True, "battery_low": False})
    home.send("keypad", {"tamper": True, "battery": 80})
    wait_until(lambda: len(home.cases()) == 2)  # the leak and the tamper
    before = home.gw.http.get(alerts, headers=home.owner).json()["items"]
    for _ in range(2):  # hourly heartbeats, polls
        home.send("bath", {"water_leak": True, "battery": 97, "voltage": 3005, "linkquality": 90})
        home.send("keypad", {"occupancy": True, "tamper": True, "battery": 80})
        home.send("door", {"contact": True, "battery": 100})
    events = _stored(home.gw, 8)
    assert [c for c, _ in events] == [
        "leak", "tamper",
        "telemetry", "telemetry", "contact",
        "telemetry", "telemetry", "telemetry",
    ]  # fmt: skip
    assert events[2][1]["water_leak"] is True  # stored as published, shown as a report
    assert len(home.cases()) == 2
    assert home.gw.http.get(alerts, headers=home.owner).json()["items"] == before
    # The leak dries and comes back: that is news again.
    home.send("bath", {"water_leak": False})
    home.send("bath", {"water_leak": True})
    assert [c for c, _ in _stored(home.gw, 10)[8:]] == ["leak", "leak"]
    wait_until(lambda: len(home.cases()) == 3)


def test_the_memory_survives_a_restart_of_ingest(gateway: Gateway) -> None:
    gateway.create_contract("7301")
    bath = gateway.create_device("7301", "leak", "bath")
    worker = gateway.start_ingest()
    peer = device_connect(gateway.mqtt_port, bath)
    publish(peer, bath["topics"]["state"], {"water_leak": True})
    _stored(gateway, 1)
    worker.stop()
    publish(peer, bath["topics"]["state"], {"water_leak": True, "battery": 90})
    gateway.start_ingest()  # a new worker: nothing in memory but the rows
    assert [c for c, _ in _stored(gateway, 2)] == ["leak", "telemetry"]
    with gateway.ctx.db.session() as s:
        [state] = s.scalars(select(DeviceState)).all()
    assert state.state == {"water_leak": True}
    peer.close()


def test_workers_sharing_a_device_report_one_change_once(gateway: Gateway) -> None:
    gateway.create_contract("7302")
    bath = gateway.create_device("7302", "leak", "bath")
    first = gateway.start_ingest("w1", ingest_shared_subscription=True)
    second = gateway.start_ingest("w2", ingest_shared_subscription=True)
    peer = device_connect(gateway.mqtt_port, bath)
    for n in range(200):
        publish(peer, bath["topics"]["state"], {"water_leak": True, "seq": n})
    events = _stored(gateway, 200)
    assert first.stored > 0 and second.stored > 0, (first.stored, second.stored)
    assert sorted(c for c, _ in events) == ["leak"] + ["telemetry"] * 199
    peer.close()


def test_a_sirens_alarm_is_a_siren_event(home: SecuredHome) -> None:
    home.send("siren", {"alarm": True, "battery": 100})
    home.send("siren", {"alarm": True, "linkquality": 80})
    home.send("siren", {"alarm": False})
    assert [c for c, _ in _stored(home.gw, 3)] == ["siren", "telemetry", "siren"]


def test_friendly_names_with_slashes_work_on_nested_topics(home: SecuredHome) -> None:
    gw = home.gw
    leak = gw.create_device("7101", "leak", "AV2010/29A")
    gw.create_device("7101", "keypad", "hall/keypad")
    bridge_info = gw.create_device("7101", "zigbee_bridge", "zigbee")
    assert leak["name"] == "AV2010/29A"
    listed = gw.http.get("/api/v1/admin/contracts/7101/devices", headers=gw.admin).json()
    assert {"AV2010/29A", "hall/keypad"} <= {d["name"] for d in listed}
    base = bridge_info["topics"]["base_topic"]
    bridge = device_connect(gw.mqtt_port, bridge_info)
    assert not bridge.subscribe(f"{base}/#").is_failure
    publish(bridge, f"{base}/AV2010/29A/availability", {"state": "online"})
    publish(bridge, f"{base}/AV2010/29A", {"water_leak": False, "battery": 99})
    publish(
        bridge,
        f"{base}/hall/keypad",
        {"action": "arm_all_zones", "action_code": CODE, "action_transaction": 7},
    )
    reply = keypad_reply(bridge, f"{base}/hall/keypad/set")
    assert reply == {"transaction": 7, "mode": "arm_all_zones"}
    assert [c for c, _ in _stored(gw, 3)] == ["availability", "leak", "keypad_action"]
    bridge.close()


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("a//b", 422),  # the schema says these
        ("/a", 422),
        ("a/", 422),
        ("hall/set", 409),  # the core says these: reserved, like a name shaped as an id
        ("hall/availability", 409),
        ("bridge/x", 409),
        ("lamp/1", 409),
    ],
)
def test_names_a_topic_could_misread_are_refused(gateway: Gateway, name: str, status: int) -> None:
    gateway.create_contract("7201")
    r = gateway.http.post(
        "/api/v1/admin/contracts/7201/devices",
        json={"kind": "leak", "name": name},
        headers=gateway.admin,
    )
    assert r.status_code == status and r.json()["detail"], (name, r.text)
