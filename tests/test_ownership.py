"""A contract sees only its own devices; another contract's ids are plain 404s."""

from __future__ import annotations

from tests.conftest import Gateway


def test_second_contract_gets_404_on_first_contracts_device(gateway: Gateway) -> None:
    gateway.create_contract("8001")
    gateway.create_contract("8002")
    mine = gateway.create_device("8001", "camera", "entrance", rtsp_url="rtsp://127.0.0.1:1/x")
    theirs_token = gateway.login("8002")
    own_token = gateway.login("8001")

    r = gateway.http.get(f"/api/v1/devices/{mine['id']}", headers=theirs_token)
    assert r.status_code == 404
    # Same answer as for an id that does not exist at all: no existence oracle.
    assert r.json() == {"detail": f"device {mine['id']} not found"}
    assert gateway.http.get("/api/v1/devices", headers=theirs_token).json() == []

    own = gateway.http.get(f"/api/v1/devices/{mine['id']}", headers=own_token)
    assert own.status_code == 200 and own.json()["name"] == "entrance"
    assert "password" not in own.json() and "rtsp_url" not in own.json()
    assert [d["id"] for d in gateway.http.get("/api/v1/devices", headers=own_token).json()] == [
        mine["id"]
    ]


def test_deleted_device_is_gone_for_its_owner(gateway: Gateway) -> None:
    gateway.create_contract("8003")
    dev = gateway.create_device("8003", "motion", "hall")
    token = gateway.login("8003")
    gateway.http.delete(f"/api/v1/admin/contracts/8003/devices/{dev['id']}", headers=gateway.admin)
    assert gateway.http.get(f"/api/v1/devices/{dev['id']}", headers=token).status_code == 404
