"""Subscriber login: tokens, throttling per contract and per address, audit."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.db.models import Contract, LoginFailure
from tests.conftest import Gateway


def _login(gw: Gateway, number: str, password: str) -> Any:
    return gw.http.post("/api/v1/auth/login", json={"contract": number, "password": password})


def _failures(gw: Gateway, **where: str) -> list[LoginFailure]:
    with gw.ctx.db.session() as session:
        q = select(LoginFailure).filter_by(**where).order_by(LoginFailure.id)
        return list(session.scalars(q))


def test_login_returns_bearer_token_that_works(gateway: Gateway) -> None:
    gateway.create_contract("5001", password="s3cret-pass")
    r = _login(gateway, "5001", "s3cret-pass")
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["access_token"]
    me = gateway.http.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["contract"] == "5001"


def test_password_is_stored_as_argon2_hash(gateway: Gateway) -> None:
    gateway.create_contract("5002", password="plain-text-never")
    with gateway.ctx.db.session() as session:
        contract = session.scalars(select(Contract).where(Contract.number == "5002")).one()
    assert contract.password_hash.startswith("$argon2id$")
    assert "plain-text-never" not in contract.password_hash


def test_wrong_password_and_unknown_contract_are_401_and_recorded(gateway: Gateway) -> None:
    gateway.create_contract("5003")
    r1 = _login(gateway, "5003", "wrong-password")
    r2 = _login(gateway, "9999", "whatever-pass")
    assert r1.status_code == r2.status_code == 401
    assert r1.json()["detail"] == r2.json()["detail"]  # no hint which part was wrong
    reasons = [f.reason for f in _failures(gateway)]
    assert reasons == ["bad_password", "unknown_contract"]


def test_throttled_per_contract_and_address_with_retry_after(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(login_max_failures_per_pair=3, login_window_s=600)
    gw.create_contract("5004")
    for _ in range(3):
        assert _login(gw, "5004", "wrong-password").status_code == 401
    r = _login(gw, "5004", "correct horse 1")  # even the right password waits, from there
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 600
    assert r.json()["detail"]
    # Another contract from the same address is not affected.
    gw.create_contract("5005")
    assert _login(gw, "5005", "correct horse 1").status_code == 200
    assert [f.reason for f in _failures(gw, contract_number="5004")][-1] == "throttled"


def test_throttle_expires_with_the_window(gateway_factory: Any) -> None:
    # A window long enough for two argon2 checks on a loaded machine (at 1 s a
    # busy CI box let the first failure leave the window before the third try).
    gw: Gateway = gateway_factory(login_max_failures_per_pair=2, login_window_s=4)
    gw.create_contract("5006")
    for _ in range(2):
        _login(gw, "5006", "wrong-password")
    assert _login(gw, "5006", "correct horse 1").status_code == 429
    time.sleep(4.2)
    assert _login(gw, "5006", "correct horse 1").status_code == 200


def _from(gw: Gateway, address: str) -> TestClient:
    """The gateway's API as seen from another client address."""
    return TestClient(gw.http.app, client=(address, 40000))


def _login_from(gw: Gateway, address: str, number: str, password: str) -> Any:
    return _from(gw, address).post(
        "/api/v1/auth/login", json={"contract": number, "password": password}
    )


def test_wrong_passwords_from_elsewhere_do_not_lock_the_owner_out(gateway: Gateway) -> None:
    """The attack of issue 12: five wrong passwords, and the owner's right one got 429."""
    gateway.create_contract("5010")
    for _ in range(5):
        assert _login_from(gateway, "203.0.113.7", "5010", "wrong-password").status_code == 401
    assert _login_from(gateway, "203.0.113.7", "5010", "correct horse 1").status_code == 429
    assert _login_from(gateway, "198.51.100.2", "5010", "correct horse 1").status_code == 200


def test_many_addresses_slow_a_contract_down_but_never_lock_it(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(login_max_failures_per_contract=4, login_max_delay_s=2)
    gw.create_contract("5011")
    codes = [  # a botnet: one quick guess from each of eight addresses
        _login_from(gw, f"203.0.113.{n}", "5011", "wrong-password").status_code for n in range(8)
    ]
    assert codes[:4] == [401] * 4 and 429 in codes[4:], "guesses past the 4th must wait"
    r = _login_from(gw, "198.51.100.2", "5011", "correct horse 1")
    assert r.status_code == 429, "slowed down"
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= 2
    time.sleep(wait + 0.1)
    assert _login_from(gw, "198.51.100.2", "5011", "correct horse 1").status_code == 200


def test_ipv6_clients_are_counted_per_64(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(login_max_failures_per_pair=2)
    gw.create_contract("5012")
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::ffff"):
        assert _login_from(gw, host, "5012", "wrong-password").status_code == 401
    assert _login_from(gw, "2001:db8:1:2::42", "5012", "correct horse 1").status_code == 429
    assert _login_from(gw, "2001:db8:1:3::1", "5012", "correct horse 1").status_code == 200
    assert {f.client_address for f in _failures(gw)} == {"2001:db8:1:2::/64"}


def test_throttled_per_client_address(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(
        login_max_failures_per_address=4, login_max_failures_per_contract=100
    )  # the pair limit never applies: every number is tried once
    gw.create_contract("5007")
    for n in range(4):  # spraying different contract numbers from one address
        assert _login(gw, f"77{n}", "guess-password").status_code == 401
    r = _login(gw, "5007", "correct horse 1")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert {f.client_address for f in _failures(gw)} == {"testclient"}


def test_suspended_contract_cannot_log_in_and_its_tokens_stop_working(gateway: Gateway) -> None:
    gateway.create_contract("5008")
    headers = gateway.login("5008")
    assert (
        gateway.http.post("/api/v1/admin/contracts/5008/suspend", headers=gateway.admin).status_code
        == 200
    )
    assert _login(gateway, "5008", "correct horse 1").status_code == 403
    assert gateway.http.get("/api/v1/me", headers=headers).status_code == 401
    gateway.http.post("/api/v1/admin/contracts/5008/resume", headers=gateway.admin)
    assert gateway.http.get("/api/v1/me", headers=headers).status_code == 200


def test_bad_tokens_are_401(gateway: Gateway) -> None:
    for value in (
        "",
        "Bearer",
        "Bearer nonsense",
        "Basic Zm9vOmJhcg==",
        f"Bearer {gateway.ctx.secrets.admin_token}",
    ):
        r = gateway.http.get("/api/v1/me", headers={"Authorization": value} if value else {})
        assert r.status_code == 401, value
        assert r.json()["detail"]


def test_expired_token_is_401(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(access_token_ttl_s=1)
    gw.create_contract("5009")
    headers = gw.login("5009")
    time.sleep(2.1)
    assert gw.http.get("/api/v1/me", headers=headers).status_code == 401
