"""Calls and door commands in the home's history (issue 14): every change of
a call (rang, answered, its outcome, its clip) and every command (who, what,
when, result) is a line of the called home's event history — ``GET /events``,
paged by its cursor like any other — and of no one else's: not the
neighbour's, not the shared panel's owner's."""

from __future__ import annotations

from typing import Any

from tests.conftest import Gateway
from tests.test_calls import calls_of, entrance, streams
from tests.test_calls_door import ringing
from tests.test_commands import controller
from tests.test_ingest import wait_until


def history(gw: Gateway, login: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every page of the login's events, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = gw.http.get("/api/v1/events", params=query, headers=login)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        if (cursor := r.json()["next_cursor"]) is None:
            return items


def test_calls_and_commands_are_the_called_homes_history_only(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(alarms_poll_s=0.2, call_clip_after_s=0.0)
    # A panel with a camera (never started: the clip is marked, nothing recorded).
    site = entrance(gw, "rtsp://127.0.0.1:9/door")
    gw.start_alarms()
    sim = controller(gw, site["panel"])
    flat12, flat14, operator = gw.login("4312"), gw.login("4314"), gw.login("9000")
    home12 = site["homes"]["4312"]

    with streams(gw, [flat12]) as (ws,):
        sim.dial("12")
        message = ws.receive_json()
        while message["type"] != "event":  # the ring comes too, as a call message
            message = ws.receive_json()
        # The history line is on the live stream too, with its resume cursor.
        assert message["event"]["event"] == "call" and message["event"]["body"]["change"] == "rang"
        assert message["cursor"].split(".")[0] == str(message["event"]["id"])
    answered = message["event"]["body"]["call"]
    r = gw.http.post(f"/api/v1/calls/{answered}/answer", json={"member": "Анна"}, headers=flat12)
    assert r.status_code == 200, r.text
    opened = gw.http.post(f"/api/v1/calls/{answered}/open", headers=flat12).json()
    assert opened["status"] == "acknowledged"
    assert gw.http.post(f"/api/v1/calls/{answered}/hangup", headers=flat12).status_code == 200
    missed = ringing(gw, flat12, gone := sim.dial("12"))
    sim.end_call(gone, "missed")
    wait_until(lambda: all(c["clip"] for c in calls_of(gw, flat12)))

    # Page by page (two lines a page), newest first, the whole story of the home.
    lines = history(gw, flat12, home=home12, limit=2)
    story = [
        (e["event"], e["body"].get("call"), e["body"].get("change") or e["body"]["status"])
        for e in lines
        if e["event"] in ("call", "command")
    ]
    clips = [s for s in story if s[2] == "clip"]
    assert sorted(clips) == [("call", answered, "clip"), ("call", missed, "clip")]
    without_clips = [s for s in story if s[2] != "clip"]
    assert without_clips == [
        ("call", missed, "missed"),
        ("call", missed, "rang"),
        ("call", answered, "ended"),
        ("command", None, "acknowledged"),
        ("command", answered, "sent"),
        ("call", answered, "answered"),
        ("call", answered, "rang"),
    ]
    assert [e["id"] for e in lines] == sorted((e["id"] for e in lines), reverse=True)
    ended = next(e["body"] for e in lines if e["body"].get("change") == "ended")
    assert (ended["state"], ended["answered_by"], ended["ended_by"]) == ("ended", "Анна", "member")
    assert all(e["home"] == home12 and e["device"] == site["panel"]["id"] for e in lines)
    command = next(e["body"] for e in lines if e["event"] == "command")
    assert (command["caller"], command["action"], command["command_id"]) == (
        "4312",
        "open",
        opened["id"],
    )
    clip = next(e["body"]["clip"] for e in lines if e["body"].get("change") == "clip")
    assert clip["url"] == f"/api/v1/calls/{clip['url'].split('/')[4]}/clip.mp4"
    # Filtered to calls only, the same lines; the same link the call shows.
    only_calls = history(gw, flat12, event="call")
    assert [e["id"] for e in only_calls] == [e["id"] for e in lines if e["event"] == "call"]
    shown = {c["id"]: c["clip"]["url"] for c in calls_of(gw, flat12)}
    assert {e["body"]["clip"]["url"] for e in lines if "clip" in e["body"]} == set(shown.values())

    # The neighbour and the panel's owner: none of these lines, no clip.
    assert history(gw, flat14) == []
    operators = history(gw, operator)
    assert operators and not {e["event"] for e in operators} & {"call", "command"}
    for other in (flat14, operator):
        assert gw.http.get(shown[answered], headers=other).status_code == 404
        assert gw.http.get(f"/api/v1/calls/{answered}", headers=other).status_code == 404
