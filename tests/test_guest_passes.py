"""Guest passes (issue 15): the owner's link opens exactly the gates and doors
it names, inside its window, at most N times, until revoked — through the
command path, with the pass as the command's caller and in the audit trail.
Real broker, real database, the simulated controller."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.websockets import WebSocketDisconnect

from gateway.db.models import utcnow
from gateway.db.people_models import AuditEntry, GuestPass
from gateway.errors import NotFound
from gateway.people import passes
from tests.conftest import Gateway
from tests.test_commands import controller
from tests.test_people import invite, member_login

API = "/api/v1"


def _iso(at: datetime) -> str:
    return at.isoformat()


def make_pass(
    gw: Gateway, owner: dict[str, str], devices: list[str], *, uses: int = 3, **window: datetime
) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = {
        "name": "курьер",
        "devices": devices,
        "valid_from": _iso(window.get("valid_from", now - timedelta(minutes=1))),
        "valid_to": _iso(window.get("valid_to", now + timedelta(hours=1))),
        "max_uses": uses,
    }
    r = gw.http.post(f"{API}/passes", json=body, headers=owner)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def open_url(token: str, device: dict[str, Any]) -> str:
    return f"{API}/guest/{token}/devices/{device['id']}/open"


@pytest.fixture
def site(gateway: Gateway) -> Iterator[dict[str, Any]]:
    gateway.create_contract("7101")
    gateway.create_contract("7102")
    gateway.start_ingest()
    yield {
        "gate": gateway.create_device("7101", "gate", "yard-gate"),
        "door": gateway.create_device("7101", "intercom", "front-door"),
        "gate2": gateway.create_device("7101", "gate", "garage"),
        "camera": gateway.create_device("7101", "camera", "cam", rtsp_url="rtsp://127.0.0.1:1/x"),
        "b_gate": gateway.create_device("7102", "gate", "b-gate"),
        "a": gateway.login("7101"),
        "b": gateway.login("7102"),
    }


def test_a_pass_opens_its_gate_once_per_use_and_names_itself(
    gateway: Gateway, site: dict[str, Any]
) -> None:
    sim = controller(gateway, site["gate"])
    p = make_pass(gateway, site["a"], [site["gate"]["id"], site["door"]["id"]], uses=2)
    token = p["token"]
    assert p["link"] == f"{API}/guest/{token}" and p["uses"] == 0

    seen = gateway.http.get(f"{API}/guest/{token}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["uses_left"] == 2
    assert sorted(d["id"] for d in seen.json()["devices"]) == sorted(
        [site["gate"]["id"], site["door"]["id"]]
    )

    r = gateway.http.post(open_url(token, site["gate"]))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged" and r.json()["uses_left"] == 1
    assert sim.actions == [r.json()["command_id"]]

    # The owner sees the command, its caller naming the pass, and the audit entry.
    home = site["gate"]["home"]
    cmd = gateway.http.get(
        f"{API}/homes/{home}/commands/{r.json()['command_id']}", headers=site["a"]
    )
    assert cmd.status_code == 200 and cmd.json()["caller"] == f"pass:{p['id']}"
    with gateway.ctx.db.session() as s:
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "gate_opened_by_pass")
        ).all()
        assert [(e.actor_kind, e.actor, e.device) for e in entries] == [
            ("guest", f"pass:{p['id']}", site["gate"]["id"])
        ]
        stored = s.scalars(select(GuestPass.token_hash)).one()
        assert token not in stored and stored == passes.token_hash(token)
    listed = gateway.http.get(f"{API}/passes", headers=site["a"]).json()["items"]
    assert [(x["id"], x["uses"]) for x in listed] == [(p["id"], 1)] and "token" not in listed[0]

    # Second use, then used up: the same 404 as an unknown token.
    assert gateway.http.post(open_url(token, site["gate"])).status_code == 200
    used_up = gateway.http.post(open_url(token, site["gate"]))
    unknown = gateway.http.post(open_url("x" * 43, site["gate"]))
    assert used_up.status_code == unknown.status_code == 404
    assert used_up.json() == unknown.json()
    assert gateway.http.get(f"{API}/guest/{token}").status_code == 404
    assert len(sim.actions) == 2


def test_refused_outside_the_window_and_after_revocation(
    gateway: Gateway, site: dict[str, Any]
) -> None:
    gate = site["gate"]
    now = datetime.now(UTC)
    later = make_pass(gateway, site["a"], [gate["id"]], valid_from=now + timedelta(hours=1))
    expired = make_pass(gateway, site["a"], [gate["id"]])
    with gateway.ctx.db.transaction() as s:  # its window ended a second ago
        s.execute(
            update(GuestPass)
            .where(GuestPass.id == expired["id"])
            .values(valid_to=utcnow() - timedelta(seconds=1))
        )
    revoked = make_pass(gateway, site["a"], [gate["id"]])
    assert gateway.http.get(f"{API}/guest/{revoked['token']}").status_code == 200
    # Another contract can neither see nor revoke it.
    assert (
        gateway.http.delete(f"{API}/passes/{revoked['id']}", headers=site["b"]).status_code == 404
    )
    assert gateway.http.get(f"{API}/passes", headers=site["b"]).json()["items"] == []
    assert gateway.http.get(f"{API}/guest/{revoked['token']}").status_code == 200
    r = gateway.http.delete(f"{API}/passes/{revoked['id']}", headers=site["a"])
    assert r.status_code == 204, r.text

    answers = []
    for p in (later, expired, revoked):
        for r in (
            gateway.http.get(f"{API}/guest/{p['token']}"),
            gateway.http.post(open_url(p["token"], gate)),
        ):
            answers.append((r.status_code, r.json()))
    assert {code for code, _ in answers} == {404}
    assert len({str(body) for _, body in answers}) == 1  # never says which
    with gateway.ctx.db.session() as s:
        assert s.scalars(select(GuestPass.uses)).all() == [0, 0, 0]


def test_only_the_pass_devices_open(gateway: Gateway, site: dict[str, Any]) -> None:
    p = make_pass(gateway, site["a"], [site["gate"]["id"]])
    for device in (site["gate2"], site["door"], site["camera"], site["b_gate"]):
        r = gateway.http.post(open_url(p["token"], device))
        assert r.status_code == 404, (device["name"], r.text)
    # A pass cannot even be made for a camera or another contract's gate.
    for devices in ([site["camera"]["id"]], [site["b_gate"]["id"]], [site["gate"]["id"], "nope"]):
        r = gateway.http.post(
            f"{API}/passes",
            json={
                "name": "x",
                "devices": devices,
                "valid_from": _iso(datetime.now(UTC)),
                "valid_to": _iso(datetime.now(UTC) + timedelta(hours=1)),
                "max_uses": 1,
            },
            headers=site["a"],
        )
        assert r.status_code == 404, (devices, r.text)
    with gateway.ctx.db.session() as s:
        assert s.scalars(select(GuestPass.uses)).all() == [0]


def test_the_guest_token_opens_no_other_route(gateway: Gateway, site: dict[str, Any]) -> None:
    p = make_pass(gateway, site["a"], [site["gate"]["id"]])
    guest = {"Authorization": f"Bearer {p['token']}"}
    gate, cam = site["gate"], site["camera"]
    for method, path in (
        ("GET", "/me"),
        ("GET", "/devices"),
        ("GET", "/events"),
        ("GET", "/alerts"),
        ("GET", "/passes"),
        ("DELETE", f"/passes/{p['id']}"),
        ("GET", f"/cameras/{cam['id']}/timeline"),
        ("GET", f"/cameras/{cam['id']}/snapshot.jpg"),
        ("POST", f"/cameras/{cam['id']}/whep"),
        ("GET", f"/homes/{gate['home']}/commands"),
        ("POST", f"/homes/{gate['home']}/devices/{gate['id']}/commands"),
        ("GET", "/audit"),
    ):
        r = gateway.http.request(method, f"{API}{path}", headers=guest, json={"action": "open"})
        assert r.status_code == 401, (method, path, r.status_code, r.text)
    stream = gateway.http.websocket_connect(f"{API}/stream", headers=guest)
    with stream as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 4401
    # The pass's token is also no path to anything but its own routes.
    assert gateway.http.get(f"{API}/guest/{p['token']}/devices").status_code in (404, 405)


def test_members_cannot_hand_out_passes(gateway: Gateway, site: dict[str, Any]) -> None:
    invite(gateway, site["a"], "+79130007001", {site["gate"]["home"]: ["gates", "intercom"]})
    member = member_login(gateway, "+79130007001")
    p = make_pass(gateway, site["a"], [site["gate"]["id"]])
    body = {
        "name": "x",
        "devices": [site["gate"]["id"]],
        "valid_from": _iso(datetime.now(UTC)),
        "valid_to": _iso(datetime.now(UTC) + timedelta(hours=1)),
        "max_uses": 1,
    }
    assert gateway.http.post(f"{API}/passes", json=body, headers=member).status_code == 403
    assert gateway.http.get(f"{API}/passes", headers=member).status_code == 403
    assert gateway.http.delete(f"{API}/passes/{p['id']}", headers=member).status_code == 403
    assert gateway.http.get(f"{API}/guest/{p['token']}").status_code == 200


def test_a_suspended_contracts_pass_opens_nothing(gateway: Gateway, site: dict[str, Any]) -> None:
    p = make_pass(gateway, site["a"], [site["gate"]["id"]])
    assert gateway.http.get(f"{API}/guest/{p['token']}").status_code == 200
    r = gateway.http.post(f"{API}/admin/contracts/7101/suspend", headers=gateway.admin)
    assert r.status_code == 200, r.text
    assert gateway.http.get(f"{API}/guest/{p['token']}").status_code == 404
    assert gateway.http.post(open_url(p["token"], site["gate"])).status_code == 404
    with gateway.ctx.db.session() as s:
        assert s.scalars(select(GuestPass.uses)).one() == 0


def test_concurrent_uses_never_exceed_the_limit(gateway: Gateway, site: dict[str, Any]) -> None:
    p = make_pass(gateway, site["a"], [site["gate"]["id"]], uses=3)
    wins: list[str] = []
    refused: list[Exception] = []
    start = threading.Barrier(8)

    def one() -> None:
        start.wait()
        try:
            with gateway.ctx.db.transaction() as s:
                out, _, _ = passes.use(
                    s,
                    p["token"],
                    site["gate"]["id"],
                    ttl=timedelta(seconds=5),
                    root=gateway.settings.mqtt_topic_root,
                    now=utcnow(),
                    address=None,
                )
            wins.append(out.uid)
        except NotFound as exc:
            refused.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(wins) == 3 and len(refused) == 5, (wins, refused)
    with gateway.ctx.db.session() as s:
        assert s.scalars(select(GuestPass.uses)).one() == 3
