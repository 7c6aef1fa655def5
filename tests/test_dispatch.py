"""Dispatch: a case comes live to the console, is re-sent until someone
acknowledges it, and is closed with a resolution; and no one reaches what is
not theirs — a subscriber cannot act as a dispatcher, nor see another
contract's panel, codes or alerts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import Gateway
from tests.security_support import CODE, SecuredHome, central_station, expect_codes, secure
from tests.test_ingest import wait_until
from tests.test_sia import Receiver

__all__ = ["central_station"]  # fixture
Homes = tuple[SecuredHome, SecuredHome]


@pytest.fixture
def homes(
    gateway_factory: Any, central_station: Receiver
) -> Iterator[tuple[SecuredHome, SecuredHome]]:
    gw: Gateway = gateway_factory(
        central_station_host="127.0.0.1",
        central_station_port=central_station.port,
        dispatch_ack_timeout_s=1.5,
        alarms_poll_s=0.2,
    )
    a = secure(gw, "5201")
    b = secure(gw, "5202", start_roles=lambda: None)
    yield a, b
    a.close()
    b.close()


def test_case_is_resent_until_acknowledged_then_closed(
    homes: Homes, central_station: Receiver
) -> None:
    a, _ = homes
    with a.gw.http.websocket_connect("/api/v1/dispatch/stream", headers=a.dispatcher) as ws:
        a.send("bath", {"water_leak": True})
        opened = ws.receive_json()
        assert opened["type"] == "case" and opened["case"]["alarm"] == "leak"
        case_id = opened["case"]["id"]
        assert expect_codes(central_station, {"154"})["event_qualifier"] == "1"
        # Nobody acknowledges: it comes again on the console's stream, but the
        # station, whose receiver ACKed it, gets no second copy (issue 11, 5).
        while (resent := ws.receive_json()["case"])["resends"] < 2:
            pass
        assert resent["id"] == case_id and resent["timeline"][-1]["kind"] == "resent"
        assert [e["event_type"] for e in central_station.drain(0.5)] == []

        r = a.gw.http.post(f"/api/v1/dispatch/cases/{case_id}/ack", headers=a.dispatcher)
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        resends = r.json()["resends"]
        r = a.gw.http.post(
            f"/api/v1/dispatch/cases/{case_id}/team", json={"team": "ГБР-7"}, headers=a.dispatcher
        )
        assert r.json()["status"] == "dispatched"
    time.sleep(2.5)  # more than an acknowledgement timeout
    (case,) = a.cases()
    assert case["resends"] == resends, "acknowledged cases are not re-sent"
    r = a.gw.http.post(
        f"/api/v1/dispatch/cases/{case_id}/close",
        json={"resolution": "real", "note": "pipe burst, water shut off"},
        headers=a.dispatcher,
    )
    assert r.status_code == 200
    closed = r.json()
    assert closed["status"] == "closed" and closed["resolution"] == "real"
    kinds = [e["kind"] for e in closed["timeline"]]
    assert kinds[0] == "opened" and {"resent", "acknowledged", "team_sent", "closed"} <= set(kinds)
    assert a.cases(state="active") == []
    r = a.gw.http.post(f"/api/v1/dispatch/cases/{case_id}/ack", headers=a.dispatcher)
    assert r.status_code == 409


def test_subscriber_tokens_get_nothing_from_dispatch(
    homes: Homes,
) -> None:
    a, _ = homes
    assert a.gw.http.get("/api/v1/dispatch/cases", headers=a.owner).status_code == 401
    assert a.gw.http.post("/api/v1/dispatch/cases/1/ack", headers=a.owner).status_code == 401
    url = "/api/v1/dispatch/stream"
    with (
        a.gw.http.websocket_connect(url, headers=a.owner) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4401
    # A number past 64 bits is refused, not handed to the database.
    huge = 2**64
    assert a.gw.http.get(f"/api/v1/dispatch/cases/{huge}", headers=a.dispatcher).status_code == 422
    r = a.gw.http.delete(f"/api/v1/homes/{a.home}/security/users/{huge}", headers=a.owner)
    assert r.status_code == 422
    # And a dispatcher's token is no subscriber's.
    assert a.gw.http.get("/api/v1/events", headers=a.dispatcher).status_code == 401
    assert (
        a.gw.http.get(f"/api/v1/homes/{a.home}/security", headers=a.dispatcher).status_code == 401
    )


def test_another_contracts_panel_is_404(homes: Homes) -> None:
    a, b = homes
    http = a.gw.http
    base = f"/api/v1/homes/{b.home}/security"
    assert http.get(base, headers=a.owner).status_code == 404
    assert http.post(f"{base}/arm", json={"mode": "armed_away"}, headers=a.owner).status_code == 404
    assert http.post(f"{base}/disarm", json={"code": CODE}, headers=a.owner).status_code == 404
    assert http.get(f"{base}/users", headers=a.owner).status_code == 404
    r = http.post(f"{base}/users", json={"name": "x", "code": "4321"}, headers=a.owner)
    assert r.status_code == 404
    user_id = http.get(f"{base}/users", headers=b.owner).json()[0]["id"]
    assert http.delete(f"{base}/users/{user_id}", headers=a.owner).status_code == 404
    assert (
        http.delete(f"/api/v1/homes/{a.home}/security/users/{user_id}", headers=a.owner).status_code
        == 404
    )
    assert b.panel()["status"] == "disarmed"


def test_alerts_are_the_callers_own(homes: Homes) -> None:
    a, b = homes
    with a.gw.http.websocket_connect("/api/v1/stream", headers=b.owner) as ws_b:
        a.send("bath", {"water_leak": True})
        wait_until(lambda: len(a.cases()) == 1, 10)
        b.send("bath", {"water_leak": True})
        got = ws_b.receive_json()
        while got["type"] != "alert":
            got = ws_b.receive_json()
        assert got["alert"]["home"] == b.home
    mine = a.gw.http.get("/api/v1/alerts", headers=a.owner).json()["items"]
    theirs = a.gw.http.get("/api/v1/alerts", headers=b.owner).json()["items"]
    assert mine and theirs
    assert {x["home"] for x in mine} == {a.home} and {x["home"] for x in theirs} == {b.home}
