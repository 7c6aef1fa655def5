"""The admin API as the billing system calls it; bad input changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.db.models import Contract, Device, Home
from tests.conftest import Gateway


def _counts(gw: Gateway) -> tuple[int, int, int]:
    with gw.ctx.db.session() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m)) or 0 for m in (Contract, Home, Device)
        )  # type: ignore[return-value]


def test_create_get_and_duplicate_contract(gateway: Gateway) -> None:
    body = gateway.create_contract("7001", address="Новосибирск, Красный проспект, 1")
    assert body["number"] == "7001" and body["status"] == "active"
    assert body["homes"][0]["address"] == "Новосибирск, Красный проспект, 1"
    assert "password" not in str(body)
    r = gateway.http.post(
        "/api/v1/admin/contracts",
        json={"number": "7001", "password": "another-pass", "address": "x"},
        headers=gateway.admin,
    )
    assert r.status_code == 409 and "7001" in r.json()["detail"]
    assert gateway.http.get("/api/v1/admin/contracts/7001", headers=gateway.admin).json() == body
    assert (
        gateway.http.get("/api/v1/admin/contracts/nope", headers=gateway.admin).status_code == 404
    )


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}]
)
def test_admin_routes_need_the_admin_token(gateway: Gateway, headers: dict[str, str]) -> None:
    r = gateway.http.post(
        "/api/v1/admin/contracts",
        json={"number": "7002", "password": "long-enough", "address": "a"},
        headers=headers,
    )
    assert r.status_code == 401 and r.json()["detail"]
    assert _counts(gateway) == (0, 0, 0)


def test_subscriber_token_is_not_an_admin_token(gateway: Gateway) -> None:
    gateway.create_contract("7003")
    user = gateway.login("7003")
    assert gateway.http.get("/api/v1/admin/contracts/7003", headers=user).status_code == 401


BAD_CONTRACTS: list[Any] = [
    {},
    {"number": "7004", "password": "short", "address": "a"},
    {"number": "", "password": "long-enough", "address": "a"},
    {"number": "a/b", "password": "long-enough", "address": "a"},
    {"number": "7004", "password": "long-enough", "address": ""},
    {"number": 7004, "password": "long-enough", "address": "a"},
    {"number": "7004", "password": "long-enough", "address": "a", "admin": True},
    {"number": "x" * 33, "password": "long-enough", "address": "a"},
    [],
    "not an object",
]


@pytest.mark.parametrize("body", BAD_CONTRACTS)
def test_bad_contract_bodies_are_4xx_and_change_nothing(gateway: Gateway, body: Any) -> None:
    r = gateway.http.post("/api/v1/admin/contracts", json=body, headers=gateway.admin)
    assert 400 <= r.status_code < 500 and r.json()["detail"]
    assert _counts(gateway) == (0, 0, 0)


def test_malformed_json_is_4xx(gateway: Gateway) -> None:
    r = gateway.http.post(
        "/api/v1/admin/contracts",
        content=b'{"number": "1", ',
        headers={**gateway.admin, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"]


def test_device_response_carries_credentials_and_topics(gateway: Gateway) -> None:
    gateway.create_contract("7005")
    dev = gateway.create_device("7005", "leak", "bathroom")
    assert dev["kind"] == "leak" and dev["payload_format"] == "zigbee2mqtt"
    assert dev["username"].startswith("dev-") and len(dev["password"]) >= 20
    topics = dev["topics"]
    assert topics["state"] == f"{topics['base_topic']}/{dev['id']}"
    assert topics["publishes"] == [topics["state"], topics["availability"]]
    assert topics["listens"] == [topics["set"]]
    listed = gateway.http.get("/api/v1/admin/contracts/7005/devices", headers=gateway.admin).json()
    assert [d["id"] for d in listed] == [dev["id"]]
    assert "password" not in listed[0]


@pytest.mark.parametrize(
    "kind", ["motion", "leak", "contact", "keypad", "siren", "intercom", "gate", "alarm_panel"]
)
def test_every_kind_can_be_provisioned(gateway: Gateway, kind: str) -> None:
    gateway.create_contract("7006")
    dev = gateway.create_device("7006", kind, f"my-{kind}")
    expected = "native" if kind in ("intercom", "gate", "alarm_panel") else "zigbee2mqtt"
    assert dev["payload_format"] == expected


def test_camera_takes_rtsp_url(gateway: Gateway) -> None:
    gateway.create_contract("7007")
    cam = gateway.create_device("7007", "camera", "parking", rtsp_url="rtsp://10.0.0.5:554/stream1")
    assert cam["rtsp_url"] == "rtsp://10.0.0.5:554/stream1"


BAD_DEVICES: list[Any] = [
    {"kind": "toaster", "name": "x"},
    {"kind": "camera", "name": "cam"},  # no rtsp_url
    {"kind": "motion", "name": "m", "rtsp_url": "rtsp://h/s"},
    {"kind": "camera", "name": "cam", "rtsp_url": "http://h/s"},
    {"kind": "motion", "name": "a//b"},
    {"kind": "motion", "name": "a#"},
    {"kind": "motion", "name": ""},
    {"kind": "motion", "name": "x" * 65},
    {"kind": "motion"},
    {"kind": "motion", "name": "m", "home": "nohome"},
]


@pytest.mark.parametrize("body", BAD_DEVICES)
def test_bad_device_bodies_are_4xx_and_change_nothing(gateway: Gateway, body: Any) -> None:
    gateway.create_contract("7008")
    before = _counts(gateway)
    clients_before = gateway.ctx.provisioner.dynsec.list_clients()
    r = gateway.http.post("/api/v1/admin/contracts/7008/devices", json=body, headers=gateway.admin)
    assert 400 <= r.status_code < 500 and r.json()["detail"], r.text
    assert _counts(gateway) == before
    assert gateway.ctx.provisioner.dynsec.list_clients() == clients_before


def test_duplicate_device_name_in_a_home_is_409(gateway: Gateway) -> None:
    gateway.create_contract("7009")
    gateway.create_device("7009", "motion", "hall")
    r = gateway.http.post(
        "/api/v1/admin/contracts/7009/devices",
        json={"kind": "leak", "name": "hall"},
        headers=gateway.admin,
    )
    assert r.status_code == 409


def test_devices_of_unknown_contract_are_404(gateway: Gateway) -> None:
    r = gateway.http.post(
        "/api/v1/admin/contracts/nope/devices",
        json={"kind": "motion", "name": "m"},
        headers=gateway.admin,
    )
    assert r.status_code == 404 and r.json()["detail"]


def test_second_home_and_device_in_it(gateway: Gateway) -> None:
    gateway.create_contract("7010", address="flat")
    r = gateway.http.post(
        "/api/v1/admin/contracts/7010/homes", json={"address": "dacha"}, headers=gateway.admin
    )
    assert r.status_code == 201
    home = r.json()["id"]
    dev = gateway.create_device("7010", "gate", "dacha-gate", home=home)
    assert dev["home"] == home and dev["topics"]["base_topic"].endswith(home)
    homes = gateway.http.get("/api/v1/admin/contracts/7010", headers=gateway.admin).json()["homes"]
    assert [h["address"] for h in homes] == ["flat", "dacha"]


def test_malformed_path_parameters_are_422_not_500(gateway: Gateway) -> None:
    gateway.create_contract("7011")
    for path in (
        "/api/v1/admin/contracts/%00",
        "/api/v1/admin/contracts/a%20b/devices",
        "/api/v1/admin/contracts/7011/devices/%00x",
    ):
        r = gateway.http.get(path, headers=gateway.admin)
        assert r.status_code == 422 and r.json()["detail"], path
    user = gateway.login("7011")
    assert gateway.http.get("/api/v1/devices/%00", headers=user).status_code == 422


def test_unknown_route_and_openapi_and_health(gateway: Gateway) -> None:
    r = gateway.http.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["detail"]
    spec = gateway.http.get("/openapi.json").json()
    assert "/api/v1/admin/contracts" in spec["paths"]
    assert "/api/v1/auth/login" in spec["paths"]
    health = gateway.http.get("/api/v1/health")
    assert health.status_code == 200 and health.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "alerts": [],
    }
