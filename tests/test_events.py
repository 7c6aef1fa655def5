"""Subscribers see their own events: REST history with a cursor, and the live
WebSocket stream — and never another contract's."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from gateway.db.models import Event
from tests.conftest import Gateway
from tests.support import device_connect
from tests.test_ingest import count, wait_until


@pytest.fixture
def two_homes(gateway: Gateway) -> dict[str, Any]:
    gateway.create_contract("4101")
    gateway.create_contract("4102")
    gateway.start_ingest()
    return {
        "a_motion": gateway.create_device("4101", "motion", "hall"),
        "a_leak": gateway.create_device("4101", "leak", "bath"),
        "b_motion": gateway.create_device("4102", "motion", "hall"),
        "a": gateway.login("4101"),
        "b": gateway.login("4102"),
    }


def send(gw: Gateway, device: dict[str, Any], payload: dict[str, Any]) -> None:
    peer = device_connect(gw.mqtt_port, device)
    peer.publish(device["topics"]["state"], json.dumps(payload).encode())
    peer.close()


def test_history_is_own_newest_first_and_paginated(
    gateway: Gateway, two_homes: dict[str, Any]
) -> None:
    for n in range(5):
        send(gateway, two_homes["a_motion"], {"occupancy": True, "seq": n})
    send(gateway, two_homes["a_leak"], {"water_leak": True})
    send(gateway, two_homes["b_motion"], {"occupancy": True, "seq": 99})
    wait_until(lambda: count(gateway, Event) == 7)

    page = gateway.http.get("/api/v1/events", headers=two_homes["b"]).json()
    assert [e["body"]["seq"] for e in page["items"]] == [99] and page["next_cursor"] is None

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = gateway.http.get("/api/v1/events", params=params, headers=two_homes["a"]).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6
    assert [e["id"] for e in seen] == sorted((e["id"] for e in seen), reverse=True)
    assert {e["device"] for e in seen} == {two_homes["a_motion"]["id"], two_homes["a_leak"]["id"]}


def test_history_filters(gateway: Gateway, two_homes: dict[str, Any]) -> None:
    send(gateway, two_homes["a_motion"], {"occupancy": True})
    send(gateway, two_homes["a_leak"], {"water_leak": False, "battery_low": False})
    wait_until(lambda: count(gateway, Event) == 2)

    def get(**params: Any) -> list[dict[str, Any]]:
        r = gateway.http.get("/api/v1/events", params=params, headers=two_homes["a"])
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    motion_id = two_homes["a_motion"]["id"]
    assert [e["event"] for e in get(event="leak")] == ["leak"]
    assert [e["device"] for e in get(device=motion_id)] == [motion_id]
    assert len(get(home=two_homes["a_motion"]["home"])) == 2
    assert get(device=two_homes["b_motion"]["id"]) == []  # another contract's device: nothing
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert get(since=future) == [] and len(get(since=past, until=future)) == 2


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "!!"},
        {"cursor": "bm9wZQ"},
        {"cursor": "9" * 19},
        {"limit": 0},
        {"limit": 501},
        {"since": "2026-01-01T00:00:00"},
        {"device": "A/B"},
    ],
)
def test_bad_queries_are_422(
    gateway: Gateway, two_homes: dict[str, Any], params: dict[str, Any]
) -> None:
    r = gateway.http.get("/api/v1/events", params=params, headers=two_homes["a"])
    assert r.status_code == 422 and r.json()["detail"]


def test_history_needs_a_token(gateway: Gateway) -> None:
    assert gateway.http.get("/api/v1/events").status_code == 401


def test_live_stream_sends_only_own_events(gateway: Gateway, two_homes: dict[str, Any]) -> None:
    a_token = two_homes["a"]["Authorization"].split()[1]
    with (
        gateway.http.websocket_connect(
            "/api/v1/stream", subprotocols=["moydom", f"bearer.{a_token}"]
        ) as ws_a,
        gateway.http.websocket_connect("/api/v1/stream", headers=two_homes["b"]) as ws_b,
    ):
        time.sleep(0.3)  # both subscribed
        send(gateway, two_homes["b_motion"], {"occupancy": True, "seq": 2})
        send(gateway, two_homes["a_motion"], {"occupancy": True, "seq": 1})
        got_a = ws_a.receive_json()
        got_b = ws_b.receive_json()
    assert got_a["type"] == "event" and got_a["event"]["body"]["seq"] == 1
    assert got_a["event"]["device"] == two_homes["a_motion"]["id"]
    assert got_b["event"]["body"]["seq"] == 2


@pytest.mark.parametrize("token", [None, "garbage"])
def test_stream_without_a_valid_token_is_closed_4401(gateway: Gateway, token: str | None) -> None:
    url = "/api/v1/stream" + (f"?access_token={token}" if token else "")
    with gateway.http.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 4401


def test_stream_with_expired_token_is_closed_4401(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(access_token_ttl_s=1)
    gw.create_contract("4103")
    headers = gw.login("4103")
    time.sleep(2.1)
    with (
        gw.http.websocket_connect("/api/v1/stream", headers=headers) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4401


def test_open_stream_is_closed_when_the_contract_is_suspended(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(stream_recheck_s=0.3)
    gw.create_contract("4104")
    headers = gw.login("4104")
    with (
        gw.http.websocket_connect("/api/v1/stream", headers=headers) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        gw.http.post("/api/v1/admin/contracts/4104/suspend", headers=gw.admin)
        ws.receive_json()
    assert closed.value.code == 4401
