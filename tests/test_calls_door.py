"""The door during a call (issue 14): a panel's own door opens for the called
flat's residents while their call rings or is answered — a shared entrance's
only that way — through the command path, recorded in their home's history
with the caller. Not for another flat's home, not once the call is over, and
nothing is published to the panel when refused. Real broker, real ingest, the
simulated panel acknowledging (devices.commands)."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Gateway
from tests.support import mqtt_connect
from tests.test_calls import calls_of, entrance
from tests.test_commands import controller, url
from tests.test_ingest import wait_until


def ringing(gw: Gateway, login: dict[str, str], panel_call: str) -> int:
    """Our id of the panel's call ``panel_call`` once it rings in the login's home."""
    found: list[int] = []

    def rung() -> bool:
        found[:] = [c["id"] for c in calls_of(gw, login) if c["state"] == "ringing"]
        return len(found) == 1

    wait_until(rung)
    return found[0]


def test_the_door_opens_during_the_call_for_the_called_flat_only(gateway: Gateway) -> None:
    site = entrance(gateway)
    panel = site["panel"]
    sim = controller(gateway, panel)
    flat12, flat14 = gateway.login("4312"), gateway.login("4314")
    home12 = site["homes"]["4312"]
    spy = mqtt_connect(gateway.mqtt_port, *gateway.service_credentials())
    spy.subscribe(panel["topics"]["set"])

    # Outside a call the shared panel is nobody's door to open: not theirs (404).
    outside = {**panel, "home": home12}
    r = gateway.http.post(url(outside), json={"action": "open"}, headers=flat12)
    assert r.status_code == 404 and "detail" in r.json()

    call = ringing(gateway, flat12, sim.dial("12"))
    # Flat 14's home (another contract) cannot open flat 12's call's door.
    r = gateway.http.post(f"/api/v1/calls/{call}/open", headers=flat14)
    assert r.status_code == 404 and "detail" in r.json()

    # Flat 12 opens while it rings: acknowledged by the panel, once.
    r = gateway.http.post(f"/api/v1/calls/{call}/open", headers=flat12)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["status"] == "acknowledged" and first["result"] == "opened"
    assert (first["home"], first["device"], first["caller"]) == (home12, panel["id"], "4312")
    # The first thing ever published to the panel is this command: the refused
    # attempts (outside the call, from flat 14) published nothing.
    assert _command_id(spy.expect(panel["topics"]["set"])) == first["id"]
    assert sim.actions == [first["id"]]

    # Answered, still open-able; then hung up, refused with 409.
    assert gateway.http.post(f"/api/v1/calls/{call}/answer", headers=flat12).status_code == 200
    r = gateway.http.post(f"/api/v1/calls/{call}/open", headers=flat12)
    assert r.status_code == 201 and r.json()["status"] == "acknowledged", r.text
    second = r.json()["id"]
    assert _command_id(spy.expect(panel["topics"]["set"])) == second
    assert gateway.http.post(f"/api/v1/calls/{call}/hangup", headers=flat12).status_code == 200
    r = gateway.http.post(f"/api/v1/calls/{call}/open", headers=flat12)
    assert r.status_code == 409 and "only during the call" in r.json()["detail"]
    r = gateway.http.post(url(outside), json={"action": "open"}, headers=flat12)
    assert r.status_code == 404

    # Declined at the door: over too. Nothing of the refusals reached the panel:
    # the next command it gets is the one of the next call.
    declined = ringing(gateway, flat12, refused_call := sim.dial("12"))
    sim.end_call(refused_call, "declined")
    wait_until(lambda: calls_of(gateway, flat12)[0]["state"] == "declined")
    assert gateway.http.post(f"/api/v1/calls/{declined}/open", headers=flat12).status_code == 409
    third_call = ringing(gateway, flat12, sim.dial("12"))
    r = gateway.http.post(f"/api/v1/calls/{third_call}/open", headers=flat12)
    assert r.status_code == 201 and r.json()["status"] == "acknowledged", r.text
    third = r.json()["id"]
    assert _command_id(spy.expect(panel["topics"]["set"])) == third
    assert sim.actions == [first["id"], second, third]
    assert sim.commands_seen == sim.actions
    spy.close()

    # Flat 12's history: every command, with who and when, the call named;
    # flat 14 sees none of it, nor the command itself.
    listed = gateway.http.get(f"/api/v1/homes/{home12}/commands", headers=flat12).json()["items"]
    assert [(c["id"], c["caller"], c["status"]) for c in listed] == [
        (third, "4312", "acknowledged"),
        (second, "4312", "acknowledged"),
        (first["id"], "4312", "acknowledged"),
    ]
    lines = gateway.http.get("/api/v1/events?event=command", headers=flat12).json()["items"]
    sent = {
        e["body"]["command_id"]: e["body"].get("call")
        for e in lines
        if e["body"]["status"] == "sent"
    }
    assert sent == {first["id"]: call, second: call, third: third_call}
    assert all(e["home"] == home12 and e["device"] == panel["id"] for e in lines)
    assert gateway.http.get("/api/v1/events?event=command", headers=flat14).json()["items"] == []
    r = gateway.http.get(f"/api/v1/homes/{home12}/commands/{third}", headers=flat14)
    assert r.status_code == 404
    # The panel's owner (the operator) does not get the flat's history either.
    operator = gateway.login("9000")
    assert gateway.http.get("/api/v1/events?event=command", headers=operator).json()["items"] == []


def _command_id(message: Any) -> str:
    return str(json.loads(message.payload)["command_id"])


def test_a_call_ringing_past_its_timeout_opens_nothing(gateway_factory: Any) -> None:
    """Without the call timer (no alarms role) a call stays ``ringing`` after its
    ring timeout: it is not answered in time all the same, and its door stays
    shut — 409, no command recorded (none is published without its record)."""
    gw: Gateway = gateway_factory(call_ring_timeout_s=0.001)
    site = entrance(gw)
    sim = controller(gw, site["panel"])
    flat12 = gw.login("4312")
    call = ringing(gw, flat12, sim.dial("12"))
    r = gw.http.post(f"/api/v1/calls/{call}/open", headers=flat12)
    assert r.status_code == 409 and "not answered in time" in r.json()["detail"]
    r = gw.http.get(f"/api/v1/homes/{site['homes']['4312']}/commands", headers=flat12)
    assert r.json()["items"] == []
    assert sim.commands_seen == []


def test_a_member_opens_the_door_if_allowed_the_intercom_and_is_named(gateway: Gateway) -> None:
    """Members (issue 15): one allowed the home's intercom opens the door during
    the call and is the command's caller, by their own login; one allowed only
    the cameras is refused (403) and nothing is recorded for them."""
    site = entrance(gateway)
    sim = controller(gateway, site["panel"])
    owner, home12 = gateway.login("4312"), site["homes"]["4312"]
    for login, allowed in (("anna@example.org", "intercom"), ("boris@example.org", "cameras")):
        body = {"login": login, "password": "correct horse 2", "permissions": {home12: [allowed]}}
        r = gateway.http.post("/api/v1/members", json=body, headers=owner)
        assert r.status_code == 201, r.text
    anna = gateway.login("anna@example.org", "correct horse 2")
    boris = gateway.login("boris@example.org", "correct horse 2")
    call = ringing(gateway, owner, sim.dial("12"))
    r = gateway.http.post(f"/api/v1/calls/{call}/open", headers=boris)
    assert r.status_code == 403 and "detail" in r.json()
    r = gateway.http.post(f"/api/v1/calls/{call}/answer", headers=anna)
    assert r.status_code == 200 and r.json()["answered_by"] == "anna@example.org", r.text
    r = gateway.http.post(f"/api/v1/calls/{call}/open", headers=anna)
    assert r.status_code == 201 and r.json()["status"] == "acknowledged", r.text
    assert r.json()["caller"] == "anna@example.org"
    listed = gateway.http.get(f"/api/v1/homes/{home12}/commands", headers=owner).json()["items"]
    assert [(c["caller"], c["status"]) for c in listed] == [("anna@example.org", "acknowledged")]
    assert sim.actions == [r.json()["id"]]
