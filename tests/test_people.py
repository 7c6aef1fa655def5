"""Members of a contract: invited by the owner with their own login and
per-home permissions, checked on every route by the dependency layer; removal
and password changes end their sessions at once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from gateway.db.people_models import Member
from tests.conftest import Gateway
from tests.support import device_connect
from tests.test_calls import entrance, next_call, ring, streams

API = "/api/v1"
PW = "member password 1"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def member_login(gw: Gateway, login: str, password: str = PW) -> dict[str, str]:
    r = gw.http.post(f"{API}/auth/login", json={"contract": login, "password": password})
    assert r.status_code == 200, r.text
    return _bearer(r.json()["access_token"])


def invite(
    gw: Gateway, owner: dict[str, str], login: str, permissions: dict[str, list[str]]
) -> dict[str, Any]:
    r = gw.http.post(
        f"{API}/members",
        json={"login": login, "password": PW, "name": "Маша", "permissions": permissions},
        headers=owner,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
def family(gateway: Gateway) -> dict[str, Any]:
    gateway.create_contract("6001")
    camera = gateway.create_device("6001", "camera", "hall cam", rtsp_url="rtsp://127.0.0.1:1/x")
    gate = gateway.create_device("6001", "gate", "yard gate")
    leak = gateway.create_device("6001", "leak", "bath")
    owner = gateway.login("6001")
    return {"owner": owner, "home": camera["home"], "camera": camera, "gate": gate, "leak": leak}


def test_owner_invites_lists_changes_and_removes_a_member(
    gateway: Gateway, family: dict[str, Any]
) -> None:
    owner, home = family["owner"], family["home"]
    made = invite(gateway, owner, "+79130000002", {home: ["gates", "cameras"]})
    assert made["role"] == "member" and made["permissions"] == {home: ["cameras", "gates"]}
    assert [m["login"] for m in gateway.http.get(f"{API}/members", headers=owner).json()] == [
        "+79130000002"
    ]
    member = member_login(gateway, "+79130000002")
    me = gateway.http.get(f"{API}/me", headers=member).json()
    assert me["role"] == "member" and me["contract"] == "6001" and me["login"] == "+79130000002"
    assert me["permissions"] == {home: ["cameras", "gates"]}
    shown = {d["id"] for d in gateway.http.get(f"{API}/devices", headers=member).json()}
    assert shown == {family["camera"]["id"], family["gate"]["id"]}  # no leak sensor: no arm

    r = gateway.http.patch(
        f"{API}/members/{made['id']}", json={"permissions": {home: ["arm"]}}, headers=owner
    )
    assert r.status_code == 200 and r.json()["permissions"] == {home: ["arm"]}
    shown = {d["id"] for d in gateway.http.get(f"{API}/devices", headers=member).json()}
    assert shown == {family["leak"]["id"]}  # effective on the next request, same token

    assert gateway.http.delete(f"{API}/members/{made['id']}", headers=owner).status_code == 204
    assert gateway.http.get(f"{API}/me", headers=member).status_code == 401
    r = gateway.http.post(f"{API}/auth/login", json={"contract": "+79130000002", "password": PW})
    assert r.status_code == 401
    assert gateway.http.get(f"{API}/members", headers=owner).json() == []


def test_member_bodies_and_conflicts(gateway: Gateway, family: dict[str, Any]) -> None:
    owner, home = family["owner"], family["home"]
    invite(gateway, owner, "masha@example.org", {home: ["cameras"]})
    r = gateway.http.post(
        f"{API}/members", json={"login": "masha@example.org", "password": PW}, headers=owner
    )
    assert r.status_code == 409
    gateway.create_contract("6002")
    other_home = gateway.http.get(f"{API}/me", headers=gateway.login("6002")).json()["homes"][0]
    for body in (
        {"login": "6001", "password": PW},  # a contract number is no member login
        {"login": "89130000003", "password": PW},  # a phone needs its plus
        {"login": "+79130000003", "password": "short"},
        {"login": "+79130000003", "password": PW, "permissions": {home: ["everything"]}},
        {"login": "+79130000003", "password": PW, "permissions": {other_home["id"]: ["arm"]}},
    ):
        r = gateway.http.post(f"{API}/members", json=body, headers=owner)
        assert r.status_code == 422, (body, r.text)
    with gateway.ctx.db.session() as session:
        assert list(session.scalars(select(Member.login))) == ["masha@example.org"]
    # Another contract's owner sees none of them and cannot touch them.
    theirs = gateway.login("6002")
    assert gateway.http.get(f"{API}/members", headers=theirs).json() == []
    (mine,) = gateway.http.get(f"{API}/members", headers=owner).json()
    assert gateway.http.delete(f"{API}/members/{mine['id']}", headers=theirs).status_code == 404
    assert gateway.http.get(f"{API}/members/{mine['id']}", headers=theirs).status_code == 404


def test_permissions_are_checked_per_home_and_per_device(
    gateway: Gateway, family: dict[str, Any]
) -> None:
    owner, home = family["owner"], family["home"]
    second = gateway.http.post(
        f"{API}/admin/contracts/6001/homes", json={"address": "Dacha"}, headers=gateway.admin
    ).json()
    invite(gateway, owner, "+79130000004", {home: ["gates"], second["id"]: ["cameras"]})
    member = member_login(gateway, "+79130000004")
    camera, gate = family["camera"]["id"], family["gate"]["id"]
    window = "start=2026-12-05T00:00:00Z&end=2026-12-05T01:00:00Z"
    # Cameras only in the second home: not this camera in the first.
    r = gateway.http.get(f"{API}/cameras/{camera}/timeline?{window}", headers=member)
    assert r.status_code == 403
    assert gateway.http.get(f"{API}/devices/{camera}", headers=member).status_code == 403
    assert gateway.http.get(f"{API}/devices/{gate}", headers=member).status_code == 200
    assert gateway.http.get(f"{API}/homes/{home}/security", headers=member).status_code == 403
    assert gateway.http.get(f"{API}/homes/{home}/commands", headers=member).status_code == 200
    r = gateway.http.get(f"{API}/homes/{second['id']}/commands", headers=member)
    assert r.status_code == 403
    # Owner-only: members, notifications, audit; history shows the member's homes only
    # (tests/test_people_filtering.py).
    for path in ("/members", "/me/notifications", "/audit"):
        assert gateway.http.get(f"{API}{path}", headers=member).status_code == 403, path
    for path in ("/events", "/alerts", "/calls"):
        assert gateway.http.get(f"{API}{path}", headers=member).status_code == 200, path
    owner_view = gateway.http.get(f"{API}/cameras/{camera}/timeline?{window}", headers=owner)
    assert owner_view.status_code == 200


def test_a_member_with_everything_sees_the_contract_like_the_owner(
    gateway: Gateway, family: dict[str, Any]
) -> None:
    everything = ["arm", "cameras", "gates", "intercom"]
    invite(gateway, family["owner"], "papa@example.org", {family["home"]: everything})
    member = member_login(gateway, "papa@example.org")
    for path in ("/events", "/alerts", "/calls"):
        assert gateway.http.get(f"{API}{path}", headers=member).status_code == 200, path
    assert gateway.http.get(f"{API}/members", headers=member).status_code == 403  # still no owner


def test_password_changes_end_a_members_sessions(gateway: Gateway, family: dict[str, Any]) -> None:
    owner, home = family["owner"], family["home"]
    made = invite(gateway, owner, "+79130000005", {home: ["gates"]})
    first, second = member_login(gateway, "+79130000005"), member_login(gateway, "+79130000005")
    r = gateway.http.post(
        f"{API}/me/password",
        json={"old_password": PW, "new_password": "member password 2"},
        headers=first,
    )
    assert r.status_code == 200
    renewed = _bearer(r.json()["access_token"])
    assert gateway.http.get(f"{API}/me", headers=second).status_code == 401
    assert gateway.http.get(f"{API}/me", headers=renewed).status_code == 200
    assert gateway.http.get(f"{API}/me", headers=owner).status_code == 200  # the owner's untouched
    # The owner sets a new one: the member's sessions end again.
    r = gateway.http.patch(
        f"{API}/members/{made['id']}", json={"password": "from the owner 3"}, headers=owner
    )
    assert r.status_code == 200
    assert gateway.http.get(f"{API}/me", headers=renewed).status_code == 401
    member_login(gateway, "+79130000005", "from the owner 3")


def _stream_closes_4401(gw: Gateway, token: str) -> None:
    protocols = ["moydom", f"bearer.{token}"]
    with (
        gw.http.websocket_connect(f"{API}/stream", subprotocols=protocols) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4401


def test_a_members_stream_carries_only_their_homes_and_rings_only_with_intercom(
    gateway: Gateway,
) -> None:
    """Contract 4312 has its flat (rung by the entrance panel) and a dacha with a
    sensor. A member with «gates» in the flat sees the flat's events, not the
    dacha's, and is not rung; one with «intercom» there is rung; the owner gets all."""
    site = entrance(gateway)
    flat = site["homes"]["4312"]
    r = gateway.http.post(
        f"{API}/admin/contracts/4312/homes", json={"address": "дача"}, headers=gateway.admin
    )
    assert r.status_code == 201, r.text
    dacha_sensor = gateway.create_device("4312", "motion", "dacha", home=r.json()["id"])
    flat_sensor = gateway.create_device("4312", "motion", "hall")
    owner = gateway.login("4312")
    invite(gateway, owner, "+79130000006", {flat: ["gates"]})
    invite(gateway, owner, "+79130000007", {flat: ["intercom"]})
    gates, intercom = member_login(gateway, "+79130000006"), member_login(gateway, "+79130000007")

    def send(sensor: dict[str, Any], seq: int) -> None:
        peer = device_connect(gateway.mqtt_port, sensor)
        peer.publish(sensor["topics"]["state"], {"occupancy": seq % 2 == 0, "seq": seq})
        peer.close()

    def until_seq(ws: Any, seq: int) -> tuple[list[str], list[dict[str, Any]]]:
        """The motion events' devices and the calls ``ws`` got, up to event ``seq``."""
        devices: list[str] = []
        calls: list[dict[str, Any]] = []
        while True:
            message = ws.receive_json()
            if message["type"] == "call":
                calls.append(message)
            elif message["type"] == "event" and "seq" in message["event"]["body"]:
                devices.append(message["event"]["device"])
                if message["event"]["body"]["seq"] == seq:
                    return devices, calls

    with streams(gateway, [owner, gates, intercom]) as (owner_ws, gates_ws, intercom_ws):
        ring(gateway, site["panel"], {"event": "call", "call_id": "s1", "apartment": "12"})
        assert next_call(owner_ws)["ring"] and next_call(intercom_ws)["ring"]
        send(dacha_sensor, 1)
        send(flat_sensor, 2)
        devices, _ = until_seq(owner_ws, 2)
        assert devices == [dacha_sensor["id"], flat_sensor["id"]]
        # Whatever the hub gave the gates-only member came before this (one order for all).
        devices, calls = until_seq(gates_ws, 2)
        assert devices == [flat_sensor["id"]]
        assert calls == [], "rung without the intercom permission"
    # What a member's stream replays after a reconnect is filtered the same way.
    with gateway.http.websocket_connect(f"{API}/stream?after=0.0", headers=gates) as ws:
        replayed: list[dict[str, Any]] = []
        while (message := ws.receive_json())["type"] != "position":
            replayed.append(message)
    homes = {m["event"]["home"] for m in replayed if m["type"] == "event"}
    homes |= {m["alert"]["home"] for m in replayed if m["type"] == "alert"}
    assert homes == {flat}


def test_removal_closes_the_members_open_stream_at_once(
    gateway: Gateway, family: dict[str, Any]
) -> None:
    """The stream's own re-check runs every 30 s by default; removal does not wait for it."""
    assert gateway.settings.stream_recheck_s >= 30
    owner, home = family["owner"], family["home"]
    made = invite(gateway, owner, "+79130000008", {home: ["arm", "cameras", "gates", "intercom"]})
    token = member_login(gateway, "+79130000008")["Authorization"].removeprefix("Bearer ")
    owners = owner["Authorization"].removeprefix("Bearer ")
    with (
        gateway.http.websocket_connect(
            f"{API}/stream?after=now", subprotocols=["moydom", f"bearer.{token}"]
        ) as ws,
        gateway.http.websocket_connect(
            f"{API}/stream?after=now", subprotocols=["moydom", f"bearer.{owners}"]
        ) as owner_ws,
    ):
        assert ws.receive_json()["type"] == "position"
        assert owner_ws.receive_json()["type"] == "position"
        assert gateway.http.delete(f"{API}/members/{made['id']}", headers=owner).status_code == 204
        started = time.monotonic()  # the removal has answered: the stream must end now
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401
        assert time.monotonic() - started < 1.0
        # The owner's stream is untouched: a change in the home still reaches it.
        r = gateway.http.put(
            f"{API}/me/notifications", json={"email": None, "phone": None}, headers=owner
        )
        assert r.status_code == 200
        owner_ws.send_text("still here?")  # the stream ignores what the client says
    assert gateway.http.get(f"{API}/me", headers=owner).status_code == 200


@pytest.mark.parametrize("how", ["own change", "support reset", "suspension"])
def test_password_changes_and_suspension_close_the_owners_streams(
    gateway: Gateway, family: dict[str, Any], how: str
) -> None:
    owner = family["owner"]
    token = owner["Authorization"].removeprefix("Bearer ")
    with gateway.http.websocket_connect(
        f"{API}/stream?after=now", subprotocols=["moydom", f"bearer.{token}"]
    ) as ws:
        assert ws.receive_json()["type"] == "position"
        if how == "own change":
            r = gateway.http.post(
                f"{API}/me/password",
                json={"old_password": "correct horse 1", "new_password": "another one 9"},
                headers=owner,
            )
        elif how == "support reset":
            r = gateway.http.post(
                f"{API}/admin/contracts/6001/password",
                json={"password": "another one 9"},
                headers=gateway.admin,
            )
        else:
            r = gateway.http.post(f"{API}/admin/contracts/6001/suspend", headers=gateway.admin)
        assert r.status_code in (200, 204)
        started = time.monotonic()  # the change has answered: the stream must end now
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401
        assert time.monotonic() - started < 1.0
