"""The admin API of shared entrances: buildings, the intercom panels at their
entrances, and which contract's home each flat number is; and an intercom
that carries its camera's RTSP URL like a camera does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway

RTSP = "rtsp://10.0.0.7:554/door"


@pytest.fixture
def site(gateway: Gateway) -> dict[str, Any]:
    gateway.create_contract("9000", address="ул. Ленина 1, управляющая компания")
    gateway.create_contract("4312")
    gateway.create_contract("4314")
    panel = gateway.create_device("9000", "intercom", "entrance-1", rtsp_url=RTSP)
    r = gateway.http.post(
        "/api/v1/admin/buildings", json={"address": "ул. Ленина 1"}, headers=gateway.admin
    )
    assert r.status_code == 201, r.text
    return {
        "building": r.json()["id"],
        "panel": panel,
        "home12": gateway.http.get("/api/v1/admin/contracts/4312", headers=gateway.admin).json()[
            "homes"
        ][0]["id"],
        "home14": gateway.http.get("/api/v1/admin/contracts/4314", headers=gateway.admin).json()[
            "homes"
        ][0]["id"],
    }


def test_an_intercom_carries_its_camera_url(gateway: Gateway, site: dict[str, Any]) -> None:
    assert site["panel"]["rtsp_url"] == RTSP
    plain = gateway.create_device("9000", "intercom", "entrance-2")
    assert plain["rtsp_url"] is None
    bad = {"kind": "gate", "name": "gate", "rtsp_url": RTSP}
    r = gateway.http.post("/api/v1/admin/contracts/9000/devices", json=bad, headers=gateway.admin)
    assert r.status_code == 422
    r = gateway.http.post(
        "/api/v1/admin/contracts/9000/devices",
        json={"kind": "intercom", "name": "x", "rtsp_url": "http://not-rtsp"},
        headers=gateway.admin,
    )
    assert r.status_code == 422 and "detail" in r.json()


def test_building_panels_and_flats(gateway: Gateway, site: dict[str, Any]) -> None:
    base = f"/api/v1/admin/buildings/{site['building']}"
    admin = gateway.admin
    r = gateway.http.post(f"{base}/panels", json={"device": site["panel"]["id"]}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["panels"] == [site["panel"]["id"]]
    # Attaching it again is the same; to another building it is a conflict.
    assert (
        gateway.http.post(
            f"{base}/panels", json={"device": site["panel"]["id"]}, headers=admin
        ).status_code
        == 200
    )
    other = gateway.http.post("/api/v1/admin/buildings", json={"address": "b"}, headers=admin)
    r = gateway.http.post(
        f"/api/v1/admin/buildings/{other.json()['id']}/panels",
        json={"device": site["panel"]["id"]},
        headers=admin,
    )
    assert r.status_code == 409 and "another building" in r.json()["detail"]

    r = gateway.http.put(
        f"{base}/flats/12", json={"contract": "4312", "home": site["home12"]}, headers=admin
    )
    assert r.status_code == 201, r.text
    r = gateway.http.put(
        f"{base}/flats/14", json={"contract": "4314", "home": site["home14"]}, headers=admin
    )
    assert r.status_code == 201
    # A flat moves to another home: 200, and it is listed once.
    r = gateway.http.put(
        f"{base}/flats/14", json={"contract": "4312", "home": site["home12"]}, headers=admin
    )
    assert r.status_code == 200
    flats = {f["number"]: (f["contract"], f["home"]) for f in r.json()["flats"]}
    assert flats == {"12": ("4312", site["home12"]), "14": ("4312", site["home12"])}
    assert gateway.http.get(base, headers=admin).json()["flats"] == r.json()["flats"]

    assert gateway.http.delete(f"{base}/flats/14", headers=admin).status_code == 204
    assert gateway.http.delete(f"{base}/flats/14", headers=admin).status_code == 404
    r = gateway.http.delete(f"{base}/panels/{site['panel']['id']}", headers=admin)
    assert r.status_code == 204
    assert gateway.http.get(base, headers=admin).json()["panels"] == []


def test_bad_input_is_refused_and_changes_nothing(gateway: Gateway, site: dict[str, Any]) -> None:
    base = f"/api/v1/admin/buildings/{site['building']}"
    admin = gateway.admin
    motion = gateway.create_device("9000", "motion", "hall")
    cases = [
        ("post", f"{base}/panels", {"device": motion["id"]}, 409),
        ("post", f"{base}/panels", {"device": "ffffffffffff"}, 404),
        ("post", f"{base}/panels", {"device": "NOT AN ID"}, 422),
        # The home must be the named contract's.
        ("put", f"{base}/flats/12", {"contract": "4314", "home": site["home12"]}, 404),
        ("put", f"{base}/flats/12", {"contract": "4312", "home": "ffffffffff"}, 404),
        ("put", f"{base}/flats/-12", {"contract": "4312", "home": site["home12"]}, 422),
        ("put", f"{base}/flats/12", {"contract": "4312", "home": site["home12"], "x": 1}, 422),
        (
            "put",
            "/api/v1/admin/buildings/ffffffffff/flats/1",
            {"contract": "4312", "home": "a"},
            404,
        ),
    ]
    for method, url, body, expected in cases:
        r = gateway.http.request(method, url, json=body, headers=admin)
        assert r.status_code == expected, (url, body, r.text)
        assert "detail" in r.json()
    shown = gateway.http.get(base, headers=admin).json()
    assert shown["panels"] == [] and shown["flats"] == []


def test_the_admin_token_is_required(gateway: Gateway, site: dict[str, Any]) -> None:
    base = f"/api/v1/admin/buildings/{site['building']}"
    subscriber = gateway.login("4312")
    for headers in ({}, subscriber):
        assert gateway.http.get(base, headers=headers).status_code == 401
        r = gateway.http.post("/api/v1/admin/buildings", json={"address": "x"}, headers=headers)
        assert r.status_code == 401
        r = gateway.http.put(
            f"{base}/flats/12", json={"contract": "4312", "home": site["home12"]}, headers=headers
        )
        assert r.status_code == 401
