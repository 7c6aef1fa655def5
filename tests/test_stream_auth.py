"""How the live streams take credentials and whom they talk to: a token in a
header or, from a browser, in the ``bearer.<token>`` subprotocol, never in the
URL (URLs are logged); and a page of a foreign origin gets no WebSocket."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import Gateway
from tests.test_events import send


@pytest.fixture
def home(gateway: Gateway) -> dict[str, Any]:
    gateway.create_contract("4301")
    gateway.start_ingest()
    return {
        "motion": gateway.create_device("4301", "motion", "hall"),
        "token": gateway.login("4301")["Authorization"].removeprefix("Bearer "),
    }


@pytest.mark.parametrize("name", ["access_token", "access%5Ftoken"])
def test_a_token_in_the_url_is_not_accepted(
    gateway: Gateway, home: dict[str, Any], name: str
) -> None:
    url = f"/api/v1/stream?{name}={home['token']}"
    with gateway.http.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
        time.sleep(0.3)  # were it accepted: subscribed, so the event would come
        send(gateway, home["motion"], {"occupancy": True})
        ws.receive_json()
    assert closed.value.code == 4401


def test_a_browser_authenticates_with_the_bearer_subprotocol(
    gateway: Gateway, home: dict[str, Any]
) -> None:
    protocols = ["moydom", f"bearer.{home['token']}"]
    with gateway.http.websocket_connect("/api/v1/stream", subprotocols=protocols) as ws:
        # The answer names ``moydom``, never the token.
        assert ws.accepted_subprotocol == "moydom"
        time.sleep(0.3)
        send(gateway, home["motion"], {"occupancy": True, "seq": 7})
        got = ws.receive_json()
    assert got["type"] == "event" and got["event"]["body"]["seq"] == 7


def test_a_bad_subprotocol_token_is_closed_4401(gateway: Gateway) -> None:
    protocols = ["moydom", "bearer.garbage"]
    with (
        gateway.http.websocket_connect("/api/v1/stream", subprotocols=protocols) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4401


@pytest.mark.parametrize("path", ["/api/v1/stream", "/api/v1/dispatch/stream"])
@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://testserver.evil", "ftp://testserver"]
)
def test_a_foreign_origin_gets_no_websocket(gateway: Gateway, path: str, origin: str) -> None:
    """Refused at the handshake (403), before any credentials are looked at."""
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        gateway.http.websocket_connect(path, headers={"Origin": origin}),
    ):
        pass
    assert refused.value.code == 1008


def test_own_and_configured_origins_get_their_stream(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(allowed_origins=["https://cabinet.example"])
    gw.create_contract("4302")
    headers = gw.login("4302")
    for origin in ("http://testserver", "https://cabinet.example", "HTTPS://Cabinet.Example/"):
        with gw.http.websocket_connect(
            "/api/v1/stream", headers={**headers, "Origin": origin}
        ) as ws:
            assert ws.accepted_subprotocol is None  # accepted: a header token needs none
