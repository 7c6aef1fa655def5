"""The HTTP edge against a hostile client, on a real uvicorn with the gateway's
own server configuration: forwarded addresses believed only from configured
proxies, slow headers cut off, large bodies refused before they are read,
security headers on every response, metrics behind a token."""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select as sql_select

from gateway.api.server import server_config
from gateway.context import AppContext
from gateway.db.models import Contract, LoginFailure
from tests.conftest import Gateway
from tests.support import free_port


@contextmanager
def serving(ctx: AppContext) -> Iterator[tuple[str, int]]:
    """The API as ``moydom run`` serves it, on a port of its own, in a thread."""
    port = free_port()
    server = uvicorn.Server(server_config(ctx, host="127.0.0.1", port=port))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.02)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(10)
        loop.close()


def _addresses(gw: Gateway) -> set[str]:
    with gw.ctx.db.session() as session:
        return set(session.scalars(sql_select(LoginFailure.client_address)))


def _spray(url: str, n: int) -> list[int]:
    """``n`` guesses at different contracts, each claiming another X-Forwarded-For."""
    return [
        httpx.post(
            f"{url}/api/v1/auth/login",
            json={"contract": f"77{i}", "password": "guess-password"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        ).status_code
        for i in range(n)
    ]


THROTTLE = {
    "login_max_failures_per_address": 4,
    "login_max_failures_per_contract": 100,
    "login_max_failures_per_pair": 100,
}


def test_forwarded_for_is_not_believed_by_default(gateway_factory: Any) -> None:
    """The attack of issue 12: a rotating header dodged the per-address throttle."""
    gw: Gateway = gateway_factory(**THROTTLE)
    with serving(gw.ctx) as (host, port):
        codes = _spray(f"http://{host}:{port}", 8)
    assert codes == [401] * 4 + [429] * 4
    assert _addresses(gw) == {"127.0.0.1"}


def test_forwarded_for_from_a_trusted_proxy_is_the_client(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(trusted_proxies=["127.0.0.1"], **THROTTLE)
    with serving(gw.ctx) as (host, port):
        codes = _spray(f"http://{host}:{port}", 8)
    assert codes == [401] * 8
    assert _addresses(gw) == {f"198.51.100.{i}" for i in range(8)}


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes) -> bool:
    """Send ``trickle`` every quarter second; ``True`` once the server hangs up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.25)
        if readable:
            try:
                if sock.recv(4096) == b"":
                    return True
            except ConnectionResetError:
                return True
        try:
            sock.sendall(trickle)
        except (BrokenPipeError, ConnectionResetError):
            return True
    return False


def test_slow_headers_are_cut_off(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(http_header_timeout_s=1)
    with serving(gw.ctx) as (host, port):
        # A normal request on the same kind of connection is served.
        assert httpx.get(f"http://{host}:{port}/api/v1/health").status_code in (200, 503)
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
            assert _closed_within(sock, 8, b"X-Slow: 1\r\n"), "slow headers kept the connection"


def test_a_large_body_is_refused_before_it_is_read(gateway_factory: Any) -> None:
    """50 MB announced, a byte sent: the 413 comes without waiting for the rest
    (and without authentication, which comes after the body)."""
    gw: Gateway = gateway_factory()
    with serving(gw.ctx) as (host, port), socket.create_connection((host, port)) as sock:
        sock.settimeout(5)
        sock.sendall(
            b"POST /api/v1/admin/contracts HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_chunked_body_over_the_limit_is_413(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(http_max_body_bytes=1000)

    def body() -> Iterator[bytes]:
        yield b'{"number": "1001", "password": "correct horse 1", "address": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    r = gw.http.post("/api/v1/admin/contracts", content=body(), headers=gw.admin)
    assert r.status_code == 413 and r.json()["detail"]
    with gw.ctx.db.session() as session:
        assert session.scalars(sql_select(Contract)).first() is None
    small = {"number": "1002", "password": "correct horse 1", "address": "Berdsk"}
    assert gw.http.post("/api/v1/admin/contracts", json=small, headers=gw.admin).status_code == 201


def test_every_response_carries_security_headers(gateway: Gateway) -> None:
    for path in ("/api/v1/me", "/api/v1/health", "/openapi.json", "/live", "/nowhere"):
        r = gateway.http.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
    api = gateway.http.get("/api/v1/me").headers["content-security-policy"]
    assert "default-src 'none'" in api


def test_the_viewer_page_runs_no_inline_code(gateway: Gateway) -> None:
    page = gateway.http.get("/live/0123abc")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text and "<style>" not in page.text
    for asset, kind in (("/live/viewer.js", "javascript"), ("/live/viewer.css", "text/css")):
        r = gateway.http.get(asset)
        assert r.status_code == 200 and kind in r.headers["content-type"], asset
        assert f'"{asset}"' in page.text


def test_metrics_need_the_admin_token_by_default(gateway: Gateway) -> None:
    assert gateway.http.get("/metrics").status_code == 401
    assert gateway.http.get("/metrics/").status_code in (401, 404)
    r = gateway.http.get("/metrics", headers=gateway.admin)
    assert r.status_code == 200 and "python_info" in r.text


def test_metrics_need_the_metrics_token_once_it_is_set(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(metrics_token="scraper-token-0123456789")
    assert gw.http.get("/metrics", headers=gw.admin).status_code == 401
    token = {"Authorization": "Bearer scraper-token-0123456789"}
    assert gw.http.get("/metrics", headers=token).status_code == 200
