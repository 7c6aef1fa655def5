"""Intercom calls end to end, on the real broker and both databases: a panel
at a shared entrance publishes a call for a flat; ingest routes it to that
flat's home; every member's live stream rings; the first answer wins and the
others are told «отвечено»; decline, hang-up and missed calls are recorded,
and a missed call is an alert told by the contract's channels. Another
contract never sees, nor answers, the call."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from email.header import decode_header, make_header
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession

from tests.conftest import Gateway
from tests.security_support import OWNER_EMAIL, MailSink, mail
from tests.support import device_connect
from tests.test_events import send
from tests.test_ingest import wait_until

__all__ = ["mail"]  # fixtures

MEMBERS = ("Анна", "Борис", "Вера")


def entrance(gw: Gateway, rtsp_url: str | None = None) -> dict[str, Any]:
    """A building whose entrance panel (the operator's device) serves flat 12
    (contract 4312) and flat 14 (contract 4314); ingest running."""
    gw.create_contract("9000", address="управляющая компания")
    camera = {"rtsp_url": rtsp_url} if rtsp_url else {}
    panel = gw.create_device("9000", "intercom", "entrance-1", **camera)
    homes = {}
    for number in ("4312", "4314"):
        gw.create_contract(number)
        r = gw.http.get(f"/api/v1/admin/contracts/{number}", headers=gw.admin)
        homes[number] = r.json()["homes"][0]["id"]
    building = gw.http.post(
        "/api/v1/admin/buildings", json={"address": "ул. Ленина 1"}, headers=gw.admin
    ).json()["id"]
    base = f"/api/v1/admin/buildings/{building}"
    r = gw.http.post(f"{base}/panels", json={"device": panel["id"]}, headers=gw.admin)
    assert r.status_code == 200, r.text
    for flat, number in (("12", "4312"), ("14", "4314")):
        body = {"contract": number, "home": homes[number]}
        assert gw.http.put(f"{base}/flats/{flat}", json=body, headers=gw.admin).status_code == 201
    gw.start_ingest()
    return {"panel": panel, "homes": homes, "building": building}


def ring(gw: Gateway, panel: dict[str, Any], payload: dict[str, Any]) -> None:
    peer = device_connect(gw.mqtt_port, panel)
    peer.publish(panel["topics"]["state"], {"ts": time.time(), **payload})
    peer.close()


@contextmanager
def streams(gw: Gateway, logins: list[dict[str, str]]) -> Iterator[list[WebSocketTestSession]]:
    """One live stream per login, each subscribed (its position sent) on return."""
    with ExitStack() as stack:
        sockets = [
            stack.enter_context(gw.http.websocket_connect("/api/v1/stream?after=now", headers=h))
            for h in logins
        ]
        for ws in sockets:
            assert ws.receive_json()["type"] == "position"
        yield sockets


def next_call(ws: WebSocketTestSession) -> dict[str, Any]:
    """The stream's next call message (events and alerts are skipped)."""
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] == "call":
            return message


def rung_on_all(sockets: list[WebSocketTestSession]) -> int:
    """The id of the call every stream is ringing now."""
    rung = [next_call(ws) for ws in sockets]
    assert all(m["ring"] for m in rung)
    ids = {m["call"]["id"] for m in rung}
    assert len(ids) == 1
    return int(ids.pop())


def calls_of(gw: Gateway, login: dict[str, str]) -> list[dict[str, Any]]:
    r = gw.http.get("/api/v1/calls", headers=login)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_three_members_ring_the_first_answer_wins_the_others_are_told(
    gateway: Gateway,
) -> None:
    site = entrance(gateway)
    members = [gateway.login("4312") for _ in MEMBERS]
    neighbour = gateway.login("4314")
    neighbour_motion = gateway.create_device("4314", "motion", "hall")
    with streams(gateway, [*members, neighbour]) as sockets:
        ring(gateway, site["panel"], {"event": "call", "call_id": "c1", "apartment": "12"})
        rung = [next_call(ws) for ws in sockets[:3]]
        assert all(m["ring"] and m["call"]["state"] == "ringing" for m in rung)
        assert {m["call"]["home"] for m in rung} == {site["homes"]["4312"]}
        assert rung[0]["call"]["flat"] == "12"
        assert rung[0]["call"]["panel"] == site["panel"]["id"]
        call = rung[0]["call"]["id"]

        # The neighbour (flat 14, another contract) can neither see nor take it.
        assert gateway.http.get(f"/api/v1/calls/{call}", headers=neighbour).status_code == 404
        r = gateway.http.post(f"/api/v1/calls/{call}/answer", headers=neighbour)
        assert r.status_code == 404 and "detail" in r.json()
        assert (
            gateway.http.post(f"/api/v1/calls/{call}/decline", headers=neighbour).status_code == 404
        )
        assert calls_of(gateway, neighbour) == []

        r = gateway.http.post(
            f"/api/v1/calls/{call}/answer", json={"member": MEMBERS[0]}, headers=members[0]
        )
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "answered" and r.json()["answered_by"] == MEMBERS[0]
        late = gateway.http.post(
            f"/api/v1/calls/{call}/answer", json={"member": MEMBERS[1]}, headers=members[1]
        )
        assert late.status_code == 409 and "отвечено" in late.json()["detail"]

        for ws in sockets[:3]:
            told = next_call(ws)
            assert told["ring"] is False and told["notice"] == "отвечено"
            assert told["call"]["state"] == "answered"
            assert told["call"]["answered_by"] == MEMBERS[0]

        # The neighbour's stream carried none of it: its first message is its own event.
        send(gateway, neighbour_motion, {"occupancy": True})
        assert sockets[3].receive_json()["type"] == "event"

        r = gateway.http.post(f"/api/v1/calls/{call}/hangup", headers=members[0])
        assert r.status_code == 200 and r.json()["state"] == "ended"
        assert r.json()["ended_by"] == "member"
        for ws in sockets[:3]:
            assert next_call(ws)["call"]["state"] == "ended"

    history = calls_of(gateway, members[2])
    assert [(c["id"], c["state"], c["home"]) for c in history] == [
        (call, "ended", site["homes"]["4312"])
    ]
    r = gateway.http.get(
        "/api/v1/calls",
        params={"home": site["homes"]["4312"], "state": "ended"},
        headers=members[1],
    )
    assert [c["id"] for c in r.json()["items"]] == [call]


def test_a_call_to_flat_12_reaches_only_flat_12s_home(gateway: Gateway) -> None:
    site = entrance(gateway)
    a, b = gateway.login("4312"), gateway.login("4314")
    # A home's own intercom (at no building's entrance) rings its own home.
    own = gateway.create_device("4314", "intercom", "door")
    ring(gateway, site["panel"], {"event": "call", "call_id": "c12", "apartment": "12"})
    ring(gateway, site["panel"], {"event": "call", "call_id": "c99", "apartment": "99"})
    ring(gateway, site["panel"], {"event": "call", "call_id": "c14", "apartment": "14"})
    ring(gateway, own, {"event": "call", "call_id": "d1", "apartment": "12"})
    wait_until(lambda: len(calls_of(gateway, b)) == 2)
    assert [c["flat"] for c in calls_of(gateway, a)] == ["12"]
    assert [(c["flat"], c["panel"]) for c in calls_of(gateway, b)] == [
        ("12", own["id"]),
        ("14", site["panel"]["id"]),
    ]
    # Flat 99 is nobody's: no home got a call for it, the panel's owner neither.
    assert calls_of(gateway, gateway.login("9000")) == []


@pytest.fixture
def quick(gateway_factory: Any, mail: tuple[MailSink, int]) -> Gateway:
    """Calls missed after 1 s; e-mail through a local SMTP sink."""
    gw: Gateway = gateway_factory(
        call_ring_timeout_s=1.0, smtp_host="127.0.0.1", smtp_port=mail[1], alarms_poll_s=0.2
    )
    return gw


def test_an_unanswered_call_is_missed_and_told_by_the_chosen_channels(
    quick: Gateway, mail: tuple[MailSink, int]
) -> None:
    site = entrance(quick)
    quick.start_alarms()
    member = quick.login("4312")
    body = {"email": OWNER_EMAIL, "channels": {"intercom": ["app", "email"]}}
    assert quick.http.put("/api/v1/me/notifications", json=body, headers=member).status_code == 200
    with streams(quick, [member]) as (ws,):
        ring(quick, site["panel"], {"event": "call", "call_id": "m1", "apartment": "12"})
        assert next_call(ws)["ring"] is True
        missed = next_call(ws)
        assert missed["ring"] is False
        assert (missed["call"]["state"], missed["call"]["ended_by"]) == ("missed", "timeout")
    call = missed["call"]["id"]
    r = quick.http.post(f"/api/v1/calls/{call}/answer", headers=member)
    assert r.status_code == 409
    alerts = quick.http.get("/api/v1/alerts", headers=member).json()["items"]
    assert [(a["category"], a["kind"]) for a in alerts] == [("intercom", "missed_call")]
    # Told twice by e-mail: when it rang (app members ring instead), and missed.
    subjects = {_subject(mail[0]) for _ in range(2)}
    assert subjects == {
        "Вызов домофона, кв. 12 — Novosibirsk",
        "Пропущенный вызов домофона — Novosibirsk",
    }
    # The neighbour got no alert.
    assert quick.http.get("/api/v1/alerts", headers=quick.login("4314")).json()["items"] == []


def _subject(sink: MailSink) -> str:
    message = sink.expect()
    assert message["To"] == OWNER_EMAIL
    return str(make_header(decode_header(message["Subject"])))


def test_a_ringing_call_is_told_at_once_by_the_chosen_channels(
    gateway_factory: Any, mail: tuple[MailSink, int]
) -> None:
    """Members without the app open learn of the visitor while it still rings:
    the contract's e-mail (or SMS) for intercom is sent at the call's start,
    once; a contract that chose only the app gets no e-mail."""
    quick: Gateway = gateway_factory(
        call_ring_timeout_s=5.0, smtp_host="127.0.0.1", smtp_port=mail[1], alarms_poll_s=0.2
    )
    site = entrance(quick)
    quick.start_alarms()
    member, neighbour = quick.login("4312"), quick.login("4314")
    body = {"email": OWNER_EMAIL, "channels": {"intercom": ["app", "email"]}}
    assert quick.http.put("/api/v1/me/notifications", json=body, headers=member).status_code == 200
    body = {"email": "neighbour@example.org", "channels": {"intercom": ["app"]}}
    r = quick.http.put("/api/v1/me/notifications", json=body, headers=neighbour)
    assert r.status_code == 200
    with streams(quick, [member]) as (ws,):
        for _ in range(2):  # the panel repeats itself: one call, one e-mail
            ring(quick, site["panel"], {"event": "call", "call_id": "t1", "apartment": "12"})
        ring(quick, site["panel"], {"event": "call", "call_id": "t2", "apartment": "14"})
        call = next_call(ws)["call"]
        assert _subject(mail[0]) == "Вызов домофона, кв. 12 — Novosibirsk"
        # Still ringing when the e-mail arrived: it was sent at the start.
        r = quick.http.post(f"/api/v1/calls/{call['id']}/answer", headers=member)
        assert r.status_code == 200, r.text
        quick.http.post(f"/api/v1/calls/{call['id']}/hangup", headers=member)
    # Flat 14's call rang its (app-only) home and was missed: no e-mail for it.
    wait_until(lambda: [c["state"] for c in calls_of(quick, neighbour)] == ["missed"])
    assert mail[0].messages.empty()
    assert len(calls_of(quick, member)) == 1


def test_decline_and_the_panels_hang_ups_are_recorded(gateway: Gateway) -> None:
    site = entrance(gateway)
    members = [gateway.login("4312") for _ in range(2)]
    panel = site["panel"]
    with streams(gateway, members) as sockets:
        ring(gateway, panel, {"event": "call", "call_id": "d1", "apartment": "12"})
        first = rung_on_all(sockets)
        r = gateway.http.post(f"/api/v1/calls/{first}/decline", headers=members[1])
        assert r.status_code == 200 and r.json()["state"] == "declined"
        for ws in sockets:
            stopped = next_call(ws)
            assert stopped["ring"] is False and stopped["call"]["state"] == "declined"
        assert (
            gateway.http.post(f"/api/v1/calls/{first}/answer", headers=members[0]).status_code
            == 409
        )
        assert (
            gateway.http.post(f"/api/v1/calls/{first}/hangup", headers=members[0]).status_code
            == 409
        )

        # The visitor gives up before anyone answers: missed, by the panel.
        ring(gateway, panel, {"event": "call", "call_id": "d2", "apartment": "12"})
        second = rung_on_all(sockets)
        ring(gateway, panel, {"event": "call_ended", "call_id": "d2", "outcome": "missed"})
        for ws in sockets:
            ended = next_call(ws)["call"]
            assert (ended["id"], ended["state"], ended["ended_by"]) == (second, "missed", "panel")

        # An answered call the panel ends.
        ring(gateway, panel, {"event": "call", "call_id": "d3", "apartment": "12"})
        third = rung_on_all(sockets)
        assert (
            gateway.http.post(f"/api/v1/calls/{third}/answer", headers=members[0]).status_code
            == 200
        )
        [next_call(ws) for ws in sockets]
        ring(gateway, panel, {"event": "call_ended", "call_id": "d3", "outcome": "answered"})
        for ws in sockets:
            ended = next_call(ws)["call"]
            assert (ended["id"], ended["state"], ended["ended_by"]) == (third, "ended", "panel")
            assert ended["answered_by"] == "4312"

    states = {c["id"]: c["state"] for c in calls_of(gateway, members[0])}
    assert states == {first: "declined", second: "missed", third: "ended"}
    alerts = gateway.http.get("/api/v1/alerts", headers=members[0]).json()["items"]
    assert [a["kind"] for a in alerts] == ["missed_call"]


def test_a_repeated_call_message_rings_once(gateway: Gateway) -> None:
    site = entrance(gateway)
    member = gateway.login("4312")
    for _ in range(2):
        ring(gateway, site["panel"], {"event": "call", "call_id": "r1", "apartment": "12"})
    ring(gateway, site["panel"], {"event": "call", "call_id": "r2", "apartment": "12"})
    # Once the panel's three messages are stored, so are the calls they made.
    operator = gateway.login("9000")
    wait_until(
        lambda: len(gateway.http.get("/api/v1/events", headers=operator).json()["items"]) == 3
    )
    assert len(calls_of(gateway, member)) == 2


@pytest.mark.parametrize(
    "path", ["/api/v1/calls/0", "/api/v1/calls/x/answer", "/api/v1/calls/99999999999999999999"]
)
def test_malformed_call_ids_are_422(gateway: Gateway, path: str) -> None:
    gateway.create_contract("4312")
    r = gateway.http.request(
        "POST" if path.endswith("answer") else "GET", path, headers=gateway.login("4312")
    )
    assert r.status_code == 422 and "detail" in r.json()
