"""A member sees the history of exactly the homes they hold a permission in:
events, alerts and calls of the contract's other homes are not theirs to see
(issue 15). And a home's command history is its contract's alone: another
contract's home is a 404, like an unknown one. Real broker and database."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.support import device_connect
from tests.test_events import send
from tests.test_ingest import wait_until
from tests.test_people import invite, member_login

API = "/api/v1"


def _homes(gw: Gateway, number: str) -> list[str]:
    body = gw.http.get(f"{API}/admin/contracts/{number}", headers=gw.admin).json()
    return [h["id"] for h in body["homes"]]


def _ring(gw: Gateway, door: dict[str, Any], call_id: str) -> None:
    peer = device_connect(gw.mqtt_port, door)
    peer.publish(
        door["topics"]["state"],
        {"ts": time.time(), "event": "call", "call_id": call_id, "apartment": "1"},
    )
    peer.close()


def _homes_seen(gw: Gateway, path: str, who: dict[str, str], **params: str) -> list[str]:
    r = gw.http.get(f"{API}/{path}", headers=who, params=params)
    assert r.status_code == 200, r.text
    return sorted({item["home"] for item in r.json()["items"]})


@pytest.fixture
def family(gateway: Gateway) -> dict[str, Any]:
    gw = gateway
    gw.create_contract("6301")
    r = gw.http.post(
        f"{API}/admin/contracts/6301/homes", json={"address": "дача"}, headers=gw.admin
    )
    assert r.status_code == 201, r.text
    flat, dacha = _homes(gw, "6301")
    gw.start_ingest()
    devices = {
        (home, kind): gw.create_device("6301", kind, f"{kind}-{n}", home=home)
        for n, home in enumerate((flat, dacha))
        for kind in ("motion", "leak", "intercom", "gate")
    }
    for account, home in (("6311", flat), ("6312", dacha)):
        body = {
            "account": account,
            "timing": {"armed_away": {"exit_delay_s": 0, "entry_delay_s": 2, "trigger_time_s": 30}},
        }
        r = gw.http.put(f"{API}/admin/homes/{home}/security", json=body, headers=gw.admin)
        assert r.status_code == 200, r.text
    owner = gw.login("6301")
    invite(gw, owner, "+79130006301", {flat: ["gates"]})
    invite(gw, owner, "+79130006302", {})
    for home in (flat, dacha):
        send(gw, devices[(home, "motion")], {"occupancy": True})
        send(gw, devices[(home, "leak")], {"water_leak": True})
        _ring(gw, devices[(home, "intercom")], f"call-{home}")
    for path in ("events", "alerts", "calls"):
        wait_until(lambda p=path: len(_homes_seen(gw, p, owner)) == 2, timeout=15)  # type: ignore[misc]
    return {
        "owner": owner,
        "flat_member": member_login(gw, "+79130006301"),
        "no_home_member": member_login(gw, "+79130006302"),
        "flat": flat,
        "dacha": dacha,
        "gate": devices[(flat, "gate")],
    }


@pytest.mark.parametrize("path", ["events", "alerts", "calls"])
def test_a_member_sees_the_homes_they_hold_a_permission_in(
    gateway: Gateway, family: dict[str, Any], path: str
) -> None:
    flat, dacha = family["flat"], family["dacha"]
    assert _homes_seen(gateway, path, family["owner"]) == sorted([flat, dacha])
    assert _homes_seen(gateway, path, family["flat_member"]) == [flat]
    assert _homes_seen(gateway, path, family["no_home_member"]) == []
    if path != "alerts":  # alerts take no home filter
        assert _homes_seen(gateway, path, family["flat_member"], home=dacha) == []
        assert _homes_seen(gateway, path, family["owner"], home=dacha) == [dacha]


def test_another_contracts_home_has_no_command_history(
    gateway: Gateway, family: dict[str, Any]
) -> None:
    gateway.create_contract("6302")
    stranger = gateway.login("6302")
    own = gateway.http.get(f"{API}/homes/{family['flat']}/commands", headers=family["owner"])
    assert own.status_code == 200, own.text
    for who in (stranger, family["flat_member"]):
        home = family["flat"] if who is stranger else _homes(gateway, "6302")[0]
        r = gateway.http.get(f"{API}/homes/{home}/commands", headers=who)
        assert r.status_code == 404 and r.json()["detail"], r.text
        # The same answer as for a home that does not exist: no existence oracle.
        unknown = gateway.http.get(f"{API}/homes/ffffffffff/commands", headers=who)
        assert unknown.status_code == 404
        assert r.json()["detail"].replace(home, "ffffffffff") == unknown.json()["detail"]
