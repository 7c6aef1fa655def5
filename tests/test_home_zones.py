"""A home's time zone: set by the admin API at creation (an IANA name the tz
database knows, else 422 and nothing created), Novosibirsk's by default."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.db.models import Contract, Home
from tests.conftest import Gateway


def _homes(gw: Gateway) -> int:
    with gw.ctx.db.session() as s:
        return s.scalar(select(func.count()).select_from(Home)) or 0


def test_zone_default_and_given(gateway: Gateway) -> None:
    body = gateway.create_contract("7101")
    assert body["homes"][0]["time_zone"] == "Asia/Novosibirsk"
    r = gateway.http.post(
        "/api/v1/admin/contracts",
        json={"number": "7102", "password": "long-enough", "address": "a", "time_zone": "UTC"},
        headers=gateway.admin,
    )
    assert r.status_code == 201 and r.json()["homes"][0]["time_zone"] == "UTC"
    r = gateway.http.post(
        "/api/v1/admin/contracts/7101/homes",
        json={"address": "Москва", "time_zone": "Europe/Moscow"},
        headers=gateway.admin,
    )
    assert r.status_code == 201 and r.json()["time_zone"] == "Europe/Moscow"
    got = gateway.http.get("/api/v1/admin/contracts/7101", headers=gateway.admin).json()
    assert [h["time_zone"] for h in got["homes"]] == ["Asia/Novosibirsk", "Europe/Moscow"]


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "", "../../etc/passwd", "Europe/Moscow\n", "+07:00", 7, None]
)
def test_unknown_zone_is_422_and_creates_nothing(gateway: Gateway, zone: object) -> None:
    gateway.create_contract("7103")
    before = _homes(gateway)
    r = gateway.http.post(
        "/api/v1/admin/contracts/7103/homes",
        json={"address": "a", "time_zone": zone},
        headers=gateway.admin,
    )
    assert r.status_code == 422 and r.json()["detail"], r.text
    r = gateway.http.post(
        "/api/v1/admin/contracts",
        json={"number": "7104", "password": "long-enough", "address": "a", "time_zone": zone},
        headers=gateway.admin,
    )
    assert r.status_code == 422 and r.json()["detail"], r.text
    assert _homes(gateway) == before
    with gateway.ctx.db.session() as s:
        assert s.scalar(select(Contract).where(Contract.number == "7104")) is None
