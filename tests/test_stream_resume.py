"""Streams that resume: a client that reconnects with the cursor of the last
message it saw gets, from the database, every row it missed — in order,
none twice — then the live ones. So a lost notice, a dropped phone connection
or an API restart (``kill -9`` of ``moydom run --role api``) loses nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from gateway.db.models import Event
from tests.conftest import Gateway
from tests.security_support import central_station, secure
from tests.support import MoydomProcess, device_connect, free_port, moydom_env
from tests.test_events import send
from tests.test_ingest import wait_until
from tests.test_sia import Receiver

__all__ = ["central_station"]  # fixture


@pytest.fixture
def home(gateway: Gateway) -> dict[str, Any]:
    gateway.create_contract("5101")
    gateway.start_ingest()
    return {
        "motion": gateway.create_device("5101", "motion", "hall"),
        "auth": gateway.login("5101"),
    }


def _events(gw: Gateway) -> list[int]:
    with gw.ctx.db.session() as session:
        return list(session.scalars(select(Event.id).order_by(Event.id)))


def test_a_reconnecting_stream_gets_what_it_missed_once_then_live(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    url = "/api/v1/stream"
    with gateway.http.websocket_connect(f"{url}?after=now", headers=home["auth"]) as ws:
        start = ws.receive_json()
        assert start["type"] == "position"
        send(gateway, home["motion"], {"occupancy": True, "seq": 1})
        first = ws.receive_json()
    assert first["event"]["body"]["seq"] == 1
    for seq in (2, 3, 4):  # while nobody listens
        send(gateway, home["motion"], {"occupancy": True, "seq": seq})
    wait_until(lambda: len(_events(gateway)) == 4)

    with gateway.http.websocket_connect(
        f"{url}?after={first['cursor']}", headers=home["auth"]
    ) as ws:
        missed = [ws.receive_json() for _ in range(3)]
        assert [m["event"]["body"]["seq"] for m in missed] == [2, 3, 4]
        assert ws.receive_json() == {"type": "position", "cursor": missed[-1]["cursor"]}
        send(gateway, home["motion"], {"occupancy": True, "seq": 5})
        live = ws.receive_json()
    assert live["event"]["body"]["seq"] == 5
    ids = [m["event"]["id"] for m in [first, *missed, live]]
    assert ids == _events(gateway)

    # Another contract's events meanwhile are not replayed to this one.
    gateway.create_contract("5102")
    foreign = gateway.create_device("5102", "motion", "hall")
    send(gateway, foreign, {"occupancy": True, "seq": 99})
    wait_until(lambda: len(_events(gateway)) == 6)

    # From the very start (a cursor older than everything): all of it, in order.
    with gateway.http.websocket_connect(
        f"{url}?after={start['cursor']}", headers=home["auth"]
    ) as ws:
        assert [ws.receive_json()["event"]["id"] for _ in range(5)] == ids
        assert ws.receive_json()["type"] == "position"


@pytest.mark.parametrize("after", ["x", "1", "1.2.3", "-1.0", "².0", "9" * 19 + ".0"])
def test_a_malformed_cursor_is_closed_4400(
    gateway: Gateway, home: dict[str, Any], after: str
) -> None:
    with (
        gateway.http.websocket_connect(f"/api/v1/stream?after={after}", headers=home["auth"]) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4400


# -- kill -9 of the API process under a stream ------------------------------


@pytest.fixture
def api_process(gateway: Gateway, tmp_path: Path) -> Iterator[tuple[MoydomProcess, str]]:
    s = gateway.settings
    port = free_port()
    env = moydom_env(
        var_dir=str(s.var_dir),
        database_url=s.database_url,
        mqtt_url=s.mqtt_url,
        mqtt_broker="external",
        http_port=str(port),
    )
    process = MoydomProcess(env, tmp_path, ["api"], "api")
    yield process, f"127.0.0.1:{port}"
    process.stop()


def _up(process: MoydomProcess, address: str) -> None:
    process.start()

    def answers() -> bool:
        try:
            return httpx.get(f"http://{address}/openapi.json", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout=30)


def _collect(ws: ClientConnection, into: list[dict[str, Any]], until: int) -> None:
    """Events into ``into`` until ``until`` of them, or the connection drops."""
    try:
        while len(into) < until:
            message = json.loads(ws.recv(timeout=15))
            if message["type"] == "event":
                into.append(message)
    except (ConnectionClosed, OSError):
        pass


def _settled(gw: Gateway) -> list[int]:
    """The stored events once no more arrive for a second."""
    before: list[int] = []
    while (now := _events(gw)) != before:
        before = now
        time.sleep(1.0)
    return now


@pytest.mark.slow
def test_every_committed_event_arrives_once_across_an_api_kill(
    gateway: Gateway, home: dict[str, Any], api_process: tuple[MoydomProcess, str]
) -> None:
    process, address = api_process
    _up(process, address)
    total = 60
    url = f"ws://{address}/api/v1/stream"
    got: list[dict[str, Any]] = []
    peer = device_connect(gateway.mqtt_port, home["motion"])

    def publish(seqs: range) -> None:
        for seq in seqs:
            peer.publish(
                home["motion"]["topics"]["state"],
                json.dumps({"occupancy": True, "seq": seq}).encode(),
            )
            time.sleep(0.1)

    with connect(f"{url}?after=now", additional_headers=home["auth"]) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "position"
        publisher = threading.Thread(target=publish, args=(range(total),))
        publisher.start()
        _collect(ws, got, 15)
        process.kill()  # under the open stream, events still being stored
        _collect(ws, got, total)
    publisher.join()  # the rest is stored while the API is away
    seen_before = len(got)
    stored = _settled(gateway)
    assert 15 <= seen_before < len(stored)

    _up(process, address)
    with connect(f"{url}?after={got[-1]['cursor']}", additional_headers=home["auth"]) as ws:
        _collect(ws, got, len(stored))
        assert json.loads(ws.recv(timeout=10))["type"] == "position"
        publish(range(total, total + 3))  # and live again
        _collect(ws, got, len(stored) + 3)
    peer.close()
    ids = [m["event"]["id"] for m in got]
    assert len(ids) == len(set(ids)), "an event came twice"
    assert ids == _settled(gateway), "every committed event, once, in order"


# -- the dispatch console -----------------------------------------------------


def test_a_reconnecting_console_gets_every_case_changed_since_once(
    gateway_factory: Any, central_station: Receiver
) -> None:
    gw: Gateway = gateway_factory(
        central_station_host="127.0.0.1", central_station_port=central_station.port
    )
    home = secure(gw, "5301")
    try:
        url = "/api/v1/dispatch/stream"
        with gw.http.websocket_connect(url, headers=home.dispatcher) as ws:
            home.send("bath", {"water_leak": True})
            opened = ws.receive_json()
        case = opened["case"]["id"]
        # While the console is away: acknowledged, then closed by someone else.
        for action, body in (("ack", None), ("close", {"resolution": "false_alarm"})):
            r = gw.http.post(
                f"{url.removesuffix('stream')}cases/{case}/{action}",
                json=body,
                headers=home.dispatcher,
            )
            assert r.status_code == 200, r.text
        with gw.http.websocket_connect(
            f"{url}?after={opened['cursor']}", headers=home.dispatcher
        ) as ws:
            missed = ws.receive_json()
            assert missed["case"]["id"] == case and missed["case"]["status"] == "closed"
            # (The central station's delivery notes come when they come.)
            kinds = [
                e["kind"] for e in missed["case"]["timeline"] if e["kind"] != "central_station"
            ]
            assert kinds[-2:] == ["acknowledged", "closed"]
            assert ws.receive_json() == {"type": "position", "cursor": missed["cursor"]}
            assert int(missed["cursor"]) > int(opened["cursor"])
        # Without a cursor, a closed case is not in the opening snapshot.
        with gw.http.websocket_connect(f"{url}?after=now", headers=home.dispatcher) as ws:
            position = ws.receive_json()
            assert position["type"] == "position"
            assert int(position["cursor"]) >= int(missed["cursor"])
    finally:
        home.close()
