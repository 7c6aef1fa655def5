"""Device messages through the real broker into the database: events, health,
rejected messages, and a worker that outlives bad input and its own restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.db.models import DeviceHealth, Event, IngestMarker, RejectedMessage
from tests.conftest import Gateway
from tests.support import MqttPeer, device_connect, mqtt_connect


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def count(gw: Gateway, model: Any) -> int:
    with gw.ctx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def home(gateway: Gateway) -> dict[str, Any]:
    gateway.create_contract("3001")
    return {
        "motion": gateway.create_device("3001", "motion", "hall"),
        "leak": gateway.create_device("3001", "leak", "bath"),
        "keypad": gateway.create_device("3001", "keypad", "keypad"),
        "gate": gateway.create_device("3001", "gate", "yard"),
    }


def publish(peer: MqttPeer, topic: str, payload: Any) -> None:
    peer.publish(topic, payload if isinstance(payload, bytes) else json.dumps(payload).encode())


def test_zigbee2mqtt_messages_become_events_and_health(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    gateway.start_ingest()
    motion = device_connect(gateway.mqtt_port, home["motion"])
    publish(motion, home["motion"]["topics"]["availability"], {"state": "online"})
    publish(
        motion,
        home["motion"]["topics"]["state"],
        {"occupancy": True, "battery": 97, "voltage": 3005, "linkquality": 120, "illuminance": 12},
    )
    keypad = device_connect(gateway.mqtt_port, home["keypad"])
    publish(
        keypad,
        home["keypad"]["topics"]["state"],
        {
            "action": "arm_all_zones",
            "action_code": "1234",
            "action_transaction": 7,
            "linkquality": 60,
        },
    )
    wait_until(lambda: count(gateway, Event) == 3)
    with gateway.ctx.db.session() as s:
        events = {e.event: e for e in s.scalars(select(Event))}
        health = s.get(DeviceHealth, events["motion"].device_id)
    assert events["motion"].body["occupancy"] is True
    assert events["keypad_action"].body["action_transaction"] == 7
    assert "1234" not in json.dumps(events["keypad_action"].body)  # the PIN is never stored
    assert health is not None and (health.online, health.battery, health.linkquality) == (
        True,
        97,
        120,
    )
    assert health.last_seen_at is not None


def test_bad_input_is_stored_aside_and_the_loop_goes_on(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    gateway.start_ingest()
    leak = device_connect(gateway.mqtt_port, home["leak"])
    state = home["leak"]["topics"]["state"]
    bad: list[bytes] = [
        b"not json",
        b"\xff\xfe\xfd",
        b"[1, 2, 3]",
        json.dumps({"water_leak": "yes"}).encode(),
        b"[" * 5000 + b"]" * 5000,
        b'{"water_leak": NaN}',
    ]
    for payload in bad:
        publish(leak, state, payload)
    publish(leak, state, {"water_leak": True, "battery_low": False})
    service = mqtt_connect(gateway.mqtt_port, *gateway.service_credentials())
    publish(service, "moydom/nohome/nodevice", {"occupancy": True})
    publish(service, "moydom/a/b//d", b"{}")  # an empty level: outside the layout
    wait_until(lambda: count(gateway, RejectedMessage) == len(bad) + 2)
    wait_until(lambda: count(gateway, Event) == 1)
    with gateway.ctx.db.session() as s:
        reasons = sorted(r.reason for r in s.scalars(select(RejectedMessage)))
        first = s.scalars(select(RejectedMessage).order_by(RejectedMessage.id)).first()
    assert reasons == sorted(
        [
            "not_json",
            "not_utf8",
            "not_object",
            "invalid",
            "too_deep",
            "not_json",
            "unknown_device",
            "bad_topic",
        ]
    )
    assert first is not None and first.payload == b"not json" and first.topic == state


def test_messages_sent_while_ingest_is_down_arrive_once(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    worker = gateway.start_ingest()
    motion = device_connect(gateway.mqtt_port, home["motion"])
    publish(motion, home["motion"]["topics"]["state"], {"occupancy": True, "seq": 0})
    wait_until(lambda: count(gateway, Event) == 1)
    worker.stop()
    for n in range(1, 51):
        publish(motion, home["motion"]["topics"]["state"], {"occupancy": n % 2 == 0, "seq": n})
    gateway.start_ingest()  # same worker name: the same persistent session
    wait_until(lambda: count(gateway, Event) == 51)
    time.sleep(0.5)
    with gateway.ctx.db.session() as s:
        seqs = sorted(e.body["seq"] for e in s.scalars(select(Event)))
    assert seqs == list(range(51))
    # Acknowledged and confirmed: no markers left behind.
    wait_until(lambda: count(gateway, IngestMarker) == 0)


def test_gateway_commands_to_devices_are_not_events(gateway: Gateway, home: dict[str, Any]) -> None:
    gateway.start_ingest()
    service = mqtt_connect(gateway.mqtt_port, *gateway.service_credentials())
    publish(service, home["gate"]["topics"]["set"], {"command": "open"})
    gate = device_connect(gateway.mqtt_port, home["gate"])
    publish(gate, home["gate"]["topics"]["state"], {"event": "heartbeat"})
    wait_until(lambda: count(gateway, Event) == 1)
    assert count(gateway, RejectedMessage) == 0


def test_operators_see_health_and_rejected_messages(gateway: Gateway, home: dict[str, Any]) -> None:
    gateway.start_ingest()
    keypad = device_connect(gateway.mqtt_port, home["keypad"])
    publish(keypad, home["keypad"]["topics"]["availability"], {"state": "online"})
    publish(keypad, home["keypad"]["topics"]["state"], {"battery": 55, "linkquality": 33})
    # Malformed (action_transaction must be a number), and it carries a PIN.
    publish(
        keypad,
        home["keypad"]["topics"]["state"],
        b'{"action": "disarm", "action_code": "4321", "action_transaction": "x"}',
    )
    wait_until(lambda: count(gateway, RejectedMessage) == 1)
    wait_until(lambda: count(gateway, Event) == 2)

    devices = gateway.http.get("/api/v1/admin/contracts/3001/devices", headers=gateway.admin).json()
    by_name = {d["name"]: d for d in devices}
    assert by_name["keypad"]["health"]["online"] is True
    assert by_name["keypad"]["health"]["battery"] == 55
    assert by_name["keypad"]["health"]["last_seen_at"]
    assert by_name["hall"]["health"] is None  # never reported

    page = gateway.http.get("/api/v1/admin/rejected", headers=gateway.admin).json()
    [rejected] = page["items"]
    assert rejected["reason"] == "invalid" and rejected["device"] == home["keypad"]["id"]
    assert (
        "4321" not in rejected["payload_text"]
        and '"action_code": "***"' in rejected["payload_text"]
    )
    assert gateway.http.get("/api/v1/admin/rejected").status_code == 401
    user = gateway.login("3001")
    assert gateway.http.get("/api/v1/admin/rejected", headers=user).status_code == 401


def test_two_workers_share_the_load_and_either_may_die(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    first = gateway.start_ingest("w1", ingest_shared_subscription=True)
    second = gateway.start_ingest("w2", ingest_shared_subscription=True)
    motion = device_connect(gateway.mqtt_port, home["motion"])
    for n in range(200):
        publish(motion, home["motion"]["topics"]["state"], {"occupancy": True, "seq": n})
    wait_until(lambda: count(gateway, Event) == 200)
    assert first.stored > 0 and second.stored > 0, (first.stored, second.stored)
    second.stop()
    for n in range(200, 300):
        publish(motion, home["motion"]["topics"]["state"], {"occupancy": True, "seq": n})
    gateway.start_ingest("w2", ingest_shared_subscription=True)  # its queued share arrives now
    wait_until(lambda: count(gateway, Event) == 300)
    time.sleep(0.5)
    with gateway.ctx.db.session() as s:
        assert sorted(e.body["seq"] for e in s.scalars(select(Event))) == list(range(300))


def test_redelivery_of_a_committed_message_is_not_stored_twice(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    """The crash this guards against: committed, then gone before the PUBACK."""
    crashing = gateway.start_ingest("w1")
    crashing._link.ack = lambda epoch, packet_ids: False  # type: ignore[method-assign]
    motion = device_connect(gateway.mqtt_port, home["motion"])
    for n in range(20):
        publish(motion, home["motion"]["topics"]["state"], {"occupancy": True, "seq": n})
    wait_until(lambda: count(gateway, Event) == 20)
    crashing.stop()  # session kept; 20 deliveries never acknowledged
    successor = gateway.start_ingest("w1")
    wait_until(lambda: successor.duplicates == 20)
    publish(motion, home["motion"]["topics"]["state"], {"occupancy": True, "seq": 20})
    wait_until(lambda: count(gateway, Event) == 21)
    time.sleep(0.3)
    assert count(gateway, Event) == 21
    wait_until(lambda: count(gateway, IngestMarker) == 0)  # confirmed and cleaned up


def test_switching_between_shared_and_plain_never_doubles(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    gateway.start_ingest("w1", ingest_shared_subscription=True).stop()
    gateway.start_ingest("w1", ingest_shared_subscription=False)  # same session, plain now
    motion = device_connect(gateway.mqtt_port, home["motion"])
    for n in range(10):
        publish(motion, home["motion"]["topics"]["state"], {"occupancy": True, "seq": n})
    wait_until(lambda: count(gateway, Event) == 10)
    time.sleep(0.5)
    assert count(gateway, Event) == 10
