"""The audit trail: append-only in the database itself (SQLite and
PostgreSQL), written where actions happen, read by owners for their own
homes and by the ISP for all, newest first with the keyset cursor."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from gateway import audit
from gateway.db.models import utcnow
from gateway.db.people_models import AuditEntry
from tests.conftest import Gateway
from tests.test_people import invite

API = "/api/v1"


def _one_entry(gw: Gateway) -> None:
    with gw.ctx.db.transaction() as session:
        audit.record(
            session, audit.Actor("owner", "5001", "192.0.2.1"), "armed", at=utcnow(), home="h1"
        )


def _count(gw: Gateway) -> int:
    with gw.ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


@pytest.mark.parametrize(
    "statement",
    [
        update(AuditEntry).values(action="disarmed"),
        update(AuditEntry).values(actor="someone else", address=None),
        delete(AuditEntry),
        text("DELETE FROM audit_entries WHERE id > 0"),
    ],
    ids=["update-action", "update-actor", "orm-delete", "sql-delete"],
)
def test_entries_cannot_be_changed_or_deleted(gateway: Gateway, statement: Any) -> None:
    _one_entry(gateway)
    with pytest.raises(DBAPIError, match="append-only"), gateway.ctx.db.transaction() as session:
        session.execute(statement)
    with gateway.ctx.db.session() as session:
        (entry,) = session.scalars(select(AuditEntry))
        assert (entry.action, entry.actor, entry.address) == ("armed", "5001", "192.0.2.1")
    _one_entry(gateway)  # appending still works
    assert _count(gateway) == 2


def test_truncate_is_refused_on_postgresql(gateway: Gateway) -> None:
    if gateway.ctx.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (its DELETE without WHERE is refused above)")
    _one_entry(gateway)
    with pytest.raises(DBAPIError, match="append-only"), gateway.ctx.db.transaction() as session:
        session.execute(text("TRUNCATE audit_entries"))
    assert _count(gateway) == 1


def test_owners_read_their_trail_paged_and_the_isp_reads_all(gateway: Gateway) -> None:
    gateway.create_contract("6101")
    gateway.create_contract("6102")
    owner, other = gateway.login("6101"), gateway.login("6102")
    home = gateway.http.get(f"{API}/me", headers=owner).json()["homes"][0]["id"]
    for n in range(3):
        invite(gateway, owner, f"+7913000010{n}", {home: ["gates"]})
    settings = {"email": "me@example.org", "phone": None, "channels": {"leak": ["app", "email"]}}
    assert (
        gateway.http.put(f"{API}/me/notifications", json=settings, headers=owner).status_code == 200
    )
    camera = gateway.create_device("6102", "camera", "cam", rtsp_url="rtsp://127.0.0.1:1/x")
    r = gateway.http.put(
        f"{API}/admin/contracts/6102/devices/{camera['id']}/settings",
        json={"priority": 5},
        headers=gateway.admin,
    )
    assert r.status_code == 200

    pages, cursor = [], None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        r = gateway.http.get(f"{API}/audit{query}", headers=owner)
        assert r.status_code == 200
        pages.append(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    items = [i for p in pages for i in p]
    assert [len(p) for p in pages] == [2, 2]
    assert [i["action"] for i in items] == ["notification_settings_changed"] + [
        "member_invited"
    ] * 3
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
    assert {(i["actor_kind"], i["actor"], i["contract"]) for i in items} == {
        ("owner", "6101", "6101")
    }
    assert {i["address"] for i in items} == {"testclient"}
    assert items[-1]["detail"] == {"member": "+79130000100", "permissions": {home: ["gates"]}}

    theirs = gateway.http.get(f"{API}/audit", headers=other).json()["items"]
    assert [(i["actor_kind"], i["action"], i["device"], i["detail"]) for i in theirs] == [
        ("admin", "camera_settings_changed", camera["id"], {"number": "6102"}),
        ("admin", "device_added", None, {"kind": "camera", "name": "cam", "number": "6102"}),
    ]
    assert theirs[0]["home"] == camera["home"]

    assert gateway.http.get(f"{API}/audit?home={home}", headers=other).json()["items"] == []
    member = gateway.http.post(
        f"{API}/auth/login", json={"contract": "+79130000100", "password": "member password 1"}
    ).json()["access_token"]
    r = gateway.http.get(f"{API}/audit", headers={"Authorization": f"Bearer {member}"})
    assert r.status_code == 403

    everything = gateway.http.get(f"{API}/admin/audit?limit=500", headers=gateway.admin).json()
    assert len(everything["items"]) == len(items) + len(theirs)
    one = gateway.http.get(f"{API}/admin/audit?contract=6102", headers=gateway.admin).json()
    assert one["items"] == theirs
    assert gateway.http.get(f"{API}/admin/audit", headers=owner).status_code == 401
    assert gateway.http.get(f"{API}/audit?cursor=x", headers=owner).status_code == 422
