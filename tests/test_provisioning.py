"""Device provisioning goes live in the real broker: credentials, ACLs, removal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway
from tests.support import device_connect, mqtt_connect


@pytest.fixture
def home(gateway: Gateway) -> dict[str, Any]:
    gateway.create_contract("1001")
    return {
        "motion": gateway.create_device("1001", "motion", "hall"),
        "leak": gateway.create_device("1001", "leak", "bath"),
        "gate": gateway.create_device("1001", "gate", "yard"),
    }


def test_device_message_reaches_subscriber(gateway: Gateway, home: dict[str, Any]) -> None:
    motion = home["motion"]
    sub = mqtt_connect(gateway.mqtt_port, *gateway.service_credentials())
    assert sub.subscribe(motion["topics"]["state"]).value == 1
    dev = device_connect(gateway.mqtt_port, motion)
    assert dev.connected.is_set(), dev.connect_reason
    dev.publish(motion["topics"]["state"], {"occupancy": True, "battery": 100})
    msg = sub.expect(motion["topics"]["state"])
    assert b'"occupancy": true' in msg.payload
    dev.close()
    sub.close()


def test_wrong_password_is_refused(gateway: Gateway, home: dict[str, Any]) -> None:
    motion = home["motion"]
    peer = mqtt_connect(
        gateway.mqtt_port, motion["username"], "not-the-password", motion["client_id"]
    )
    assert not peer.connected.is_set()
    assert peer.connect_reason is not None and peer.connect_reason.is_failure


def test_device_is_bound_to_its_client_id(gateway: Gateway, home: dict[str, Any]) -> None:
    motion, leak = home["motion"], home["leak"]
    assert motion["client_id"] == motion["username"]
    owner = device_connect(gateway.mqtt_port, motion)
    assert owner.connected.is_set()
    # Right password, wrong id: refused.
    assert not mqtt_connect(
        gateway.mqtt_port, motion["username"], motion["password"], "x"
    ).connected.is_set()
    # Another device cannot take over (and so kick) the motion sensor's session.
    thief = mqtt_connect(gateway.mqtt_port, leak["username"], leak["password"], motion["client_id"])
    assert not thief.connected.is_set()
    assert not owner.disconnected.wait(0.5)


def test_device_cannot_publish_to_another_devices_topic(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    motion, leak = home["motion"], home["leak"]
    sub = mqtt_connect(gateway.mqtt_port, *gateway.service_credentials())
    sub.subscribe(leak["topics"]["state"])
    sub.subscribe(leak["topics"]["availability"])
    dev = device_connect(gateway.mqtt_port, motion)
    dev.publish(leak["topics"]["state"], {"water_leak": True})
    dev.publish(leak["topics"]["availability"], {"state": "offline"})
    assert sub.nothing_on(leak["topics"]["state"], wait=1.0)
    assert sub.nothing_on(leak["topics"]["availability"], wait=0.2)


def test_device_subscribes_only_to_its_own_commands(gateway: Gateway, home: dict[str, Any]) -> None:
    motion, gate = home["motion"], home["gate"]
    dev = device_connect(gateway.mqtt_port, gate)
    assert not dev.subscribe(gate["topics"]["set"]).is_failure
    thief = device_connect(gateway.mqtt_port, motion)
    for topic in (gate["topics"]["set"], gate["topics"]["state"], "moydom/#", "#"):
        assert thief.subscribe(topic).is_failure, topic
    service = mqtt_connect(gateway.mqtt_port, *gateway.service_credentials())
    service.publish(gate["topics"]["set"], {"command": "open"})
    assert dev.expect(gate["topics"]["set"]).payload == b'{"command": "open"}'
    assert thief.nothing_on(gate["topics"]["set"], wait=0.5)


def test_delete_drops_connection_and_refuses_credentials(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    motion, leak = home["motion"], home["leak"]
    victim = device_connect(gateway.mqtt_port, motion)
    bystander = device_connect(gateway.mqtt_port, leak)
    assert victim.connected.is_set() and bystander.connected.is_set()

    r = gateway.http.delete(
        f"/api/v1/admin/contracts/1001/devices/{motion['id']}", headers=gateway.admin
    )
    assert r.status_code == 204
    assert victim.disconnected.wait(5), "deleted device still connected"
    again = device_connect(gateway.mqtt_port, motion)
    assert not again.connected.is_set()
    assert not bystander.disconnected.is_set()
    sub = mqtt_connect(gateway.mqtt_port, *gateway.service_credentials())
    sub.subscribe(leak["topics"]["state"])
    bystander.publish(leak["topics"]["state"], {"water_leak": False})
    sub.expect(leak["topics"]["state"])

    listed = gateway.http.get("/api/v1/admin/contracts/1001/devices", headers=gateway.admin).json()
    assert motion["id"] not in {d["id"] for d in listed}
    assert (
        gateway.http.get(
            f"/api/v1/admin/contracts/1001/devices/{motion['id']}", headers=gateway.admin
        ).status_code
        == 404
    )
    assert (
        gateway.http.delete(
            f"/api/v1/admin/contracts/1001/devices/{motion['id']}", headers=gateway.admin
        ).status_code
        == 404
    )


def test_suspension_drops_and_refuses_devices_until_resumed(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    gateway.create_contract("2002")
    other = gateway.create_device("2002", "motion", "hall")
    other_conn = device_connect(gateway.mqtt_port, other)
    motion = home["motion"]
    conn = device_connect(gateway.mqtt_port, motion)

    r = gateway.http.post("/api/v1/admin/contracts/1001/suspend", headers=gateway.admin)
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert conn.disconnected.wait(5)
    assert not device_connect(gateway.mqtt_port, motion).connected.is_set()
    assert not other_conn.disconnected.is_set()
    # A device added while suspended is refused too.
    late = gateway.create_device("1001", "contact", "door")
    assert not device_connect(gateway.mqtt_port, late).connected.is_set()

    r = gateway.http.post("/api/v1/admin/contracts/1001/resume", headers=gateway.admin)
    assert r.json()["status"] == "active"
    assert device_connect(gateway.mqtt_port, motion).connected.is_set()
    assert device_connect(gateway.mqtt_port, late).connected.is_set()


def test_reconcile_removes_orphan_accounts(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory()
    gw.create_contract("3003")
    dev = gw.create_device("3003", "leak", "bath")
    # An account the database does not know: as after a crash between the
    # broker step and the commit of a create.
    gw.ctx.provisioner.dynsec.create_client("dev-orphan", "pw-orphan-123", [])
    counts = gw.ctx.provisioner.reconcile()
    assert counts == {"removed": 1, "disabled": 0, "missing": 0}
    assert gw.ctx.provisioner.dynsec.get_client("dev-orphan") is None
    assert device_connect(gw.mqtt_port, dev).connected.is_set()


def test_service_account_refresh_keeps_the_broker_sane(gateway: Gateway) -> None:
    """Refreshing the service role while the account holds it (every API
    start against a running broker) must not trip Mosquitto 2.0.11's
    dangling-role bug: the account stays readable and can still connect."""
    username, password = gateway.service_credentials()
    for _ in range(3):
        gateway.ctx.provisioner.ensure_service_account(username, password)
        client = gateway.ctx.provisioner.dynsec.get_client(username)
        assert client is not None
        assert [r["rolename"] for r in client["roles"]] == ["moydom-service"]
    peer = mqtt_connect(gateway.mqtt_port, username, password, "refresh-check")
    assert peer.connected.is_set()
    peer.close()
