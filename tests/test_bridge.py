"""A home's Zigbee2MQTT bridge: one account publishing for the home's Zigbee
devices under their names or ids, and for nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from gateway.db.models import DeviceHealth, Event, RejectedMessage
from tests.conftest import Gateway
from tests.support import device_connect, mqtt_connect
from tests.test_ingest import count, publish, wait_until


@pytest.fixture
def home(gateway: Gateway) -> dict[str, Any]:
    gateway.create_contract("6101")
    devices = {
        "motion": gateway.create_device("6101", "motion", "hall-motion"),
        "leak": gateway.create_device("6101", "leak", "bath-leak"),
        "gate": gateway.create_device("6101", "gate", "yard"),
    }
    devices["bridge"] = gateway.create_device("6101", "zigbee_bridge", "zigbee")
    gateway.start_ingest()
    return devices


def events_by_device(gw: Gateway) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    with gw.ctx.db.session() as s:
        for e in s.scalars(select(Event).order_by(Event.id)):
            out.setdefault(e.device_id, []).append(e.body)
    return out


def test_bridge_speaks_for_its_zigbee_devices_by_name_or_id(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    bridge_info = home["bridge"]
    base = bridge_info["topics"]["base_topic"]
    bridge = device_connect(gateway.mqtt_port, bridge_info)
    assert bridge.connected.is_set()
    assert not bridge.subscribe(f"{base}/#").is_failure  # what Zigbee2MQTT subscribes
    publish(bridge, f"{base}/bridge/state", {"state": "online"})
    publish(bridge, f"{base}/bridge/logging", {"level": "info", "message": "hello"})
    publish(bridge, f"{base}/hall-motion", {"occupancy": True, "linkquality": 90})
    publish(bridge, f"{base}/{home['leak']['id']}", {"water_leak": True, "battery_low": False})
    publish(bridge, f"{base}/bath-leak/availability", {"state": "online"})
    publish(bridge, f"{base}/yard", {"event": "state", "state": "open"})  # not a Zigbee device
    wait_until(lambda: count(gateway, Event) == 4)

    listed = gateway.http.get("/api/v1/admin/contracts/6101/devices", headers=gateway.admin).json()
    ids = {d["name"]: d for d in listed}
    with gateway.ctx.db.session() as s:
        health = {h.device_id: h for h in s.scalars(select(DeviceHealth))}
        events = list(s.scalars(select(Event).order_by(Event.id)))
    assert [e.event for e in events] == ["availability", "motion", "leak", "availability"]
    assert ids["zigbee"]["health"]["online"] is True
    assert ids["yard"]["health"] is None  # the bridge could not speak for the gate
    assert len(health) == 3
    assert count(gateway, RejectedMessage) == 0  # bridge logs are not errors


def test_bridge_gets_commands_for_its_devices(gateway: Gateway, home: dict[str, Any]) -> None:
    bridge = device_connect(gateway.mqtt_port, home["bridge"])
    bridge.subscribe(f"{home['bridge']['topics']['base_topic']}/#")
    service = mqtt_connect(gateway.mqtt_port, *gateway.service_credentials())
    publish(service, home["leak"]["topics"]["set"], {"state": "ON"})
    assert bridge.expect(home["leak"]["topics"]["set"]).payload == b'{"state": "ON"}'


def test_bridge_follows_devices_added_and_removed(gateway: Gateway, home: dict[str, Any]) -> None:
    base = home["bridge"]["topics"]["base_topic"]
    door = gateway.create_device("6101", "contact", "front-door")
    r = gateway.http.delete(
        f"/api/v1/admin/contracts/6101/devices/{home['motion']['id']}", headers=gateway.admin
    )
    assert r.status_code == 204
    bridge = device_connect(gateway.mqtt_port, home["bridge"])
    publish(bridge, f"{base}/hall-motion", {"occupancy": True})  # removed: refused
    publish(bridge, f"{base}/front-door", {"contact": False})  # added: allowed
    wait_until(lambda: count(gateway, Event) == 1)
    with gateway.ctx.db.session() as s:
        [event] = list(s.scalars(select(Event)))
    assert event.event == "contact" and event.body == {"contact": False}
    assert door["id"] in {
        d["id"]
        for d in gateway.http.get(
            "/api/v1/admin/contracts/6101/devices", headers=gateway.admin
        ).json()
    }


def test_one_bridge_per_home_and_the_reserved_name(gateway: Gateway, home: dict[str, Any]) -> None:
    for body, status in (
        ({"kind": "zigbee_bridge", "name": "second"}, 409),
        ({"kind": "motion", "name": "bridge"}, 409),
        # would let the bridge speak as the gate
        ({"kind": "motion", "name": home["gate"]["id"]}, 409),
    ):
        r = gateway.http.post(
            "/api/v1/admin/contracts/6101/devices", json=body, headers=gateway.admin
        )
        assert r.status_code == status and r.json()["detail"], body


def test_another_homes_bridge_cannot_speak_for_this_home(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    gateway.create_contract("6102")
    foreign = gateway.create_device("6102", "zigbee_bridge", "zigbee")
    intruder = device_connect(gateway.mqtt_port, foreign)
    base = home["bridge"]["topics"]["base_topic"]
    assert intruder.subscribe(f"{base}/#").is_failure
    publish(intruder, f"{base}/hall-motion", {"occupancy": True})
    publish(intruder, f"{base}/bridge/state", {"state": "offline"})
    service = mqtt_connect(gateway.mqtt_port, *gateway.service_credentials())
    service.subscribe(f"{base}/#")
    assert service.nothing_on(f"{base}/hall-motion", wait=1.0)
    assert count(gateway, Event) == 0
