"""Opening gates and doors from the API (issue 14, the command path): the
command is recorded, published with its deadline, acted on once by the
controller, and its outcome reaches the caller — REST, history and stream —
and nobody else. Real broker, real ingest, the simulated controllers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devices.kinds import DeviceKind
from devices.simulator import SimSpec, SimulatedDevice
from devices.topics import DeviceTopics
from tests.conftest import Gateway
from tests.support import mqtt_connect


def controller(gw: Gateway, device: dict[str, Any]) -> SimulatedDevice:
    """The simulated controller of a provisioned device, connected."""
    root = gw.settings.mqtt_topic_root
    name = device["topics"]["state"].split("/", 2)[2]
    topics = DeviceTopics(root, device["home"], name)
    spec = SimSpec(DeviceKind(device["kind"]), name, device["username"], device["password"], topics)
    sim = SimulatedDevice(spec, "127.0.0.1", gw.mqtt_port, period_s=3600)
    sim.start()
    assert sim.wait_online(), "controller did not connect"
    gw.stack.callback(sim.stop)
    return sim


def url(device: dict[str, Any]) -> str:
    return f"/api/v1/homes/{device['home']}/devices/{device['id']}/commands"


def wait_status(
    gw: Gateway, auth: dict[str, str], command: dict[str, Any], want: str, timeout: float = 10
) -> dict[str, Any]:
    got: dict[str, Any] = {}
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        r = gw.http.get(f"/api/v1/homes/{command['home']}/commands/{command['id']}", headers=auth)
        assert r.status_code == 200, r.text
        got = r.json()
        if got["status"] == want:
            return got
        time.sleep(0.05)
    raise AssertionError(f"command stayed {got.get('status')}, wanted {want}")


@pytest.fixture
def home(gateway: Gateway) -> Iterator[dict[str, Any]]:
    gateway.create_contract("5101")
    gateway.create_contract("5102")
    gateway.start_ingest()
    gateway.start_alarms()
    yield {
        "gate": gateway.create_device("5101", "gate", "yard-gate"),
        "intercom": gateway.create_device("5101", "intercom", "front-door"),
        "motion": gateway.create_device("5101", "motion", "hall"),
        "b_gate": gateway.create_device("5102", "gate", "b-gate"),
        "a": gateway.login("5101"),
        "b": gateway.login("5102"),
    }


@pytest.mark.parametrize("kind", ["gate", "intercom"])
def test_an_online_controller_opens_once_and_the_caller_sees_it(
    gateway: Gateway, home: dict[str, Any], kind: str
) -> None:
    device = home[kind]
    sim = controller(gateway, device)
    with gateway.http.websocket_connect("/api/v1/stream", headers=home["a"]) as ws:
        time.sleep(0.3)  # subscribed before the command
        r = gateway.http.post(url(device), json={"action": "open"}, headers=home["a"])
        assert r.status_code == 201, r.text
        command = r.json()
        # The answer came within the POST's wait.
        assert command["status"] == "acknowledged" and command["result"] == "opened"
        assert command["caller"] == "5101" and command["device"] == device["id"]
        seen: list[dict[str, Any]] = []
        while len(seen) < 2:
            msg = ws.receive_json()
            if msg["type"] == "event" and msg["event"]["event"] == "command":
                seen.append(msg["event"]["body"])
    assert [b["status"] for b in seen] == ["sent", "acknowledged"]
    assert {b["command_id"] for b in seen} == {command["id"]}
    assert sim.actions == [command["id"]]
    # The home's history: the command list and the events, who and what.
    listed = gateway.http.get(f"/api/v1/homes/{device['home']}/commands", headers=home["a"])
    assert [c["id"] for c in listed.json()["items"]] == [command["id"]]
    events = gateway.http.get("/api/v1/events?event=command", headers=home["a"]).json()["items"]
    assert [(e["body"]["status"], e["body"]["caller"]) for e in events] == [
        ("acknowledged", "5101"),
        ("sent", "5101"),
    ]


def test_a_faulty_controller_is_a_failed_command(gateway: Gateway, home: dict[str, Any]) -> None:
    sim = controller(gateway, home["gate"])
    sim.fault = True
    r = gateway.http.post(url(home["gate"]), json={"action": "open"}, headers=home["a"])
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "failed" and r.json()["result"] == "fault"
    assert r.json()["detail"] == "motor overload"
    assert sim.actions == []


def test_an_unanswered_command_expires(gateway: Gateway, home: dict[str, Any]) -> None:
    with gateway.http.websocket_connect("/api/v1/stream", headers=home["a"]) as ws:
        time.sleep(0.3)
        r = gateway.http.post(
            url(home["gate"]), json={"action": "open", "deadline_s": 1}, headers=home["a"]
        )
        assert r.status_code == 201, r.text
        command = r.json()  # "sent", or already "expired" if the POST waited that long
        statuses = []
        while "expired" not in statuses:
            msg = ws.receive_json()
            if msg["type"] == "event" and msg["event"]["event"] == "command":
                assert msg["event"]["body"]["command_id"] == command["id"]
                statuses.append(msg["event"]["body"]["status"])
    assert statuses == ["sent", "expired"]  # the sweep's change reaches the stream too
    expired = wait_status(gateway, home["a"], command, "expired")
    assert expired["detail"] == "no answer" and expired["finished_at"] >= expired["deadline"]


def test_foreign_and_unopenable_devices_are_404_and_nothing_is_published(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    user, password = gateway.service_credentials()
    spy = mqtt_connect(gateway.mqtt_port, user, password)
    root = gateway.settings.mqtt_topic_root
    assert not spy.subscribe(f"{root}/+/+/set").is_failure
    a_home, b_home = home["gate"]["home"], home["b_gate"]["home"]
    b_gate, motion = home["b_gate"], home["motion"]
    refused = [
        url(b_gate).replace(b_home, a_home),  # B's gate, asked for in A's home
        url(b_gate),  # B's gate in B's home
        url(motion),  # a sensor cannot be opened
        url(home["gate"]).replace(a_home, b_home),  # A's gate in B's home
        f"/api/v1/homes/{a_home}/devices/nosuchdevice/commands",
    ]
    for path in refused:
        r = gateway.http.post(path, json={"action": "open"}, headers=home["a"])
        assert r.status_code == 404, (path, r.text)
        assert r.json()["detail"]
    assert spy.nothing_on(f"{root}/{b_home}/{b_gate['id']}/set", wait=1.0)
    assert spy.messages.empty()
    spy.close()


def test_a_second_contract_cannot_reach_a_command(gateway: Gateway, home: dict[str, Any]) -> None:
    controller(gateway, home["gate"])
    with gateway.http.websocket_connect("/api/v1/stream", headers=home["b"]) as ws_b:
        time.sleep(0.3)
        a_cmd = gateway.http.post(url(home["gate"]), json={"action": "open"}, headers=home["a"])
        assert a_cmd.json()["status"] == "acknowledged"
        # B's own command (its gate is offline) is the first thing B's stream shows.
        b_cmd = gateway.http.post(url(home["b_gate"]), json={"action": "open"}, headers=home["b"])
        msg = ws_b.receive_json()
    assert msg["event"]["body"]["command_id"] == b_cmd.json()["id"]
    a = a_cmd.json()
    for path in (
        f"/api/v1/homes/{a['home']}/commands/{a['id']}",
        f"/api/v1/homes/{b_cmd.json()['home']}/commands/{a['id']}",
    ):
        assert gateway.http.get(path, headers=home["b"]).status_code == 404
    b_list = gateway.http.get(f"/api/v1/homes/{a['home']}/commands", headers=home["b"])
    assert b_list.status_code == 404
    b_events = gateway.http.get("/api/v1/events?event=command", headers=home["b"]).json()
    assert {e["body"]["command_id"] for e in b_events["items"]} == {b_cmd.json()["id"]}


@pytest.mark.parametrize("body", [{}, {"action": "close"}, {"action": "open", "deadline_s": 0}])
def test_bad_requests_are_422(gateway: Gateway, home: dict[str, Any], body: Any) -> None:
    r = gateway.http.post(url(home["gate"]), json=body, headers=home["a"])
    assert r.status_code == 422 and r.json()["detail"]


def test_the_payload_carries_id_deadline_and_message_expiry(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    device = home["gate"]
    peer = mqtt_connect(
        gateway.mqtt_port, device["username"], device["password"], device["client_id"]
    )
    assert not peer.subscribe(device["topics"]["set"]).is_failure
    before = time.time()
    r = gateway.http.post(url(device), json={"action": "open", "deadline_s": 5}, headers=home["a"])
    msg = peer.expect(device["topics"]["set"])
    peer.close()
    payload = json.loads(msg.payload)
    assert payload["command"] == "open" and payload["command_id"] == r.json()["id"]
    assert before <= payload["ts"] < payload["deadline"] <= payload["ts"] + 5.001
    assert msg.qos == 1
    assert msg.properties is not None
    assert 1 <= msg.properties.MessageExpiryInterval <= 5  # type: ignore[attr-defined]
