"""A contract's end (issue 15): termination takes effect at once everywhere
(logins, tokens, open streams, the devices' broker accounts, guest passes);
after the grace period the purge leaves nothing of the contract in any table
or in the archive, touches nothing of another contract, and its report says
what it deleted without saying whose it was. Real broker and database, both
backends; time is moved by passing ``now`` to the purge, and the alarms
role's own sweep is tested with a grace of zero."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from starlette.websockets import WebSocketDisconnect

import gateway.db  # noqa: F401 — every table in the metadata
from gateway.db.intercom_models import Call
from gateway.db.media_models import Clip, Export, MotionSpan, Recording
from gateway.db.models import (
    Base,
    Contract,
    Device,
    Event,
    Home,
    PurgeReport,
    RejectedMessage,
)
from gateway.db.people_models import AuditEntry
from gateway.db.purge import MediaDirs, purge_due
from gateway.db.security_models import AlarmPanel
from tests.conftest import Gateway
from tests.support import device_connect, free_port
from tests.test_events import send
from tests.test_ingest import wait_until
from tests.test_people import invite, member_login

API = "/api/v1"
PW = "correct horse 1"


@dataclass
class Site:
    """One contract, filled through the API (and, for the recorder's and the
    dispatch's tables, the ORM), with the markers that name it."""

    number: str
    contract_id: int
    markers: list[str]
    owner: dict[str, str]
    member: dict[str, str]
    devices: dict[str, dict[str, Any]]
    home: str
    guest_token: str
    files: list[Path] = field(default_factory=list)


def _seg_path(archive: Path, camera: str, start: datetime) -> Path:
    return archive / camera / f"{start:%Y-%m-%d}" / f"{start:%H%M%S}.000_10000ms.mp4"


def _media(gw: Gateway, site: Site, camera: dict[str, Any]) -> None:
    """What the recorder and the API leave of a camera: segments and their
    index, motion, a clip, an export and a playback file."""
    archive = gw.settings.archive_path().resolve()
    var = gw.settings.var_dir.resolve()
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    with gw.ctx.db.transaction() as s:
        device = s.scalars(select(Device).where(Device.uid == camera["id"])).one()
        for n in range(3):
            at = start + timedelta(seconds=10 * n)
            path = _seg_path(archive, camera["id"], at)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\0" * (1000 + n))
            site.files.append(path)
            s.add(
                Recording(
                    device_id=device.id,
                    contract_id=site.contract_id,
                    path=str(path.relative_to(archive)),
                    start=at,
                    end=at + timedelta(seconds=10),
                    bytes=1000 + n,
                )
            )
        end = start + timedelta(seconds=30)
        s.add(MotionSpan(device_id=device.id, contract_id=site.contract_id, start=start, end=end))
        s.add(
            Clip(
                device_id=device.id, contract_id=site.contract_id, kind="call", start=start, end=end
            )
        )
        export = var / "exports" / f"x{site.contract_id}.mp4"
        export.parent.mkdir(parents=True, exist_ok=True)
        export.write_bytes(b"e" * 500)
        site.files.append(export)
        s.add(
            Export(
                id=f"x{site.contract_id}",
                device_id=device.id,
                contract_id=site.contract_id,
                start=start,
                end=end,
                status="done",
                path=str(export),
                created_at=start,
            )
        )
        playback = var / "playback" / f"{device.id}-1-2-3.mp4"
        playback.parent.mkdir(parents=True, exist_ok=True)
        playback.write_bytes(b"p" * 70)
        site.files.append(playback)
        # A malformed message from one of its devices, kept aside.
        s.add(
            RejectedMessage(
                topic=f"{gw.settings.mqtt_topic_root}/{site.home}/{camera['id']}/state",
                payload=b"{not json",
                reason="malformed",
                detail="test",
                received_at=start,
            )
        )


def make_site(gw: Gateway, tag: str, account: str) -> Site:
    number = f"purge-{tag}"
    email, phone, login = f"{tag}@{tag}-owner.example", f"+7913000{account}", f"+7913100{account}"
    address = f"Новосибирск, ул. {tag.upper()}-ская, 1"
    r = gw.http.post(
        f"{API}/admin/contracts",
        json={"number": number, "password": PW, "address": address, "email": email},
        headers=gw.admin,
    )
    assert r.status_code == 201, r.text
    home = r.json()["homes"][0]["id"]
    r = gw.http.put(
        f"{API}/admin/contracts/{number}/contacts",
        json={"email": email, "phone": phone},
        headers=gw.admin,
    )
    assert r.status_code == 200, r.text
    r = gw.http.post(
        f"{API}/admin/contracts/{number}/homes",
        json={"address": f"Москва, {tag}", "time_zone": "Europe/Moscow"},
        headers=gw.admin,
    )
    assert r.status_code == 201, r.text
    devices = {
        name: gw.create_device(number, kind, f"{tag}-{name}", **extra)
        for name, kind, extra in [
            ("camera", "camera", {"rtsp_url": "rtsp://127.0.0.1:1/x"}),
            ("motion", "motion", {}),
            ("leak", "leak", {}),
            ("gate", "gate", {}),
            ("door", "intercom", {}),
        ]
    }
    with gw.ctx.db.session() as s:
        contract_id = s.scalars(select(Contract.id).where(Contract.number == number)).one()
    owner = gw.login(number)
    # The security service: a panel, a user with a code.
    body = {
        "account": account,
        "timing": {"armed_away": {"exit_delay_s": 0, "entry_delay_s": 2, "trigger_time_s": 30}},
    }
    r = gw.http.put(f"{API}/admin/homes/{home}/security", json=body, headers=gw.admin)
    assert r.status_code == 200, r.text
    r = gw.http.post(
        f"{API}/homes/{home}/security/users",
        json={"name": f"{tag}-user", "code": "2580", "duress_code": "2581"},
        headers=owner,
    )
    assert r.status_code == 201, r.text
    r = gw.http.put(f"{API}/me/notifications", json={"email": email, "phone": phone}, headers=owner)
    assert r.status_code == 200, r.text
    invite(gw, owner, login, {home: ["gates", "cameras"]})
    member = member_login(gw, login)
    now = datetime.now(UTC)
    r = gw.http.post(
        f"{API}/passes",
        json={
            "name": "курьер",
            "devices": [devices["gate"]["id"]],
            "valid_from": (now - timedelta(minutes=1)).isoformat(),
            "valid_to": (now + timedelta(days=1)).isoformat(),
            "max_uses": 3,
        },
        headers=owner,
    )
    assert r.status_code == 201, r.text
    guest_token = r.json()["token"]
    # Traces: failed logins, a reset code (and its e-mail in the outbox), a
    # gate command, device messages, an intercom call.
    for who in (number, login):
        r = gw.http.post(f"{API}/auth/login", json={"contract": who, "password": "wrong pass 1"})
        assert r.status_code == 401
    assert gw.http.post(f"{API}/auth/password-reset", json={"login": number}).status_code == 202
    r = gw.http.post(
        f"{API}/homes/{home}/devices/{devices['gate']['id']}/commands",
        json={"action": "open"},
        headers=member,
    )
    assert r.status_code == 201, r.text
    send(gw, devices["motion"], {"occupancy": True, "battery": 90})
    send(gw, devices["leak"], {"water_leak": True})
    peer = device_connect(gw.mqtt_port, devices["door"])
    peer.publish(
        devices["door"]["topics"]["state"],
        {"ts": time.time(), "event": "call", "call_id": f"c-{tag}", "apartment": "1"},
    )
    peer.close()
    site = Site(
        number=number,
        contract_id=contract_id,
        markers=[number, email, phone, login, address, *(d["id"] for d in devices.values())],
        owner=owner,
        member=member,
        devices=devices,
        home=home,
        guest_token=guest_token,
    )
    _media(gw, site, devices["camera"])
    with gw.ctx.db.session() as s:
        site.markers += list(s.scalars(select(Home.uid).where(Home.contract_id == contract_id)))
    return site


# --- the walk -----------------------------------------------------------------


def _rows(gw: Gateway) -> dict[str, list[dict[str, Any]]]:
    with gw.ctx.db.engine.connect() as conn:
        return {
            t.name: [dict(r._mapping) for r in conn.execute(select(t))]
            for t in Base.metadata.sorted_tables
        }


_TARGETS = {
    (fk.column.table.name, fk.column.name)
    for table in Base.metadata.sorted_tables
    for fk in table.foreign_keys
}
"""The columns foreign keys point at."""


def _key(table: Table, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c.name] for c in table.primary_key.columns)


def owned(gw: Gateway, site: Site) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of every table that is the site's: it names one of its
    markers (number, contacts, logins, address, home and device ids), or its
    ``contract_id`` is the contract's, or one of its foreign keys points at a
    row that is the site's — found to a fixed point, independently of the
    purge's own rules."""
    rows = _rows(gw)
    mine: dict[str, set[tuple[Any, ...]]] = {name: set() for name in rows}
    values: dict[tuple[str, str], set[Any]] = {}
    changed = True
    while changed:
        changed = False
        for table in Base.metadata.sorted_tables:
            for row in rows[table.name]:
                key = _key(table, row)
                if key in mine[table.name]:
                    continue
                if _is_mine(table, row, site, values):
                    mine[table.name].add(key)
                    for column in table.columns:
                        if (table.name, column.name) in _TARGETS:
                            values.setdefault((table.name, column.name), set()).add(
                                row[column.name]
                            )
                    changed = True
    return {name: keys for name, keys in mine.items() if keys}


def _is_mine(
    table: Table, row: dict[str, Any], site: Site, values: dict[tuple[str, str], set[Any]]
) -> bool:
    if table.name == "contracts" and row["id"] == site.contract_id:
        return True
    if "contract_id" in table.c and row["contract_id"] == site.contract_id:
        return True
    for fk in table.foreign_keys:
        value = row[fk.parent.name]
        if value is not None and value in values.get((fk.column.table.name, fk.column.name), ()):
            return True
    as_text = " ".join(
        v.decode("latin-1") if isinstance(v, bytes) else json.dumps(v, default=str)
        for v in row.values()
    )
    as_text += " " + " ".join(str(v) for v in row.values())
    return any(marker in as_text for marker in site.markers)


def _counts(keys: dict[str, set[tuple[Any, ...]]]) -> dict[str, int]:
    return {name: len(k) for name, k in keys.items()}


# --- the tests ----------------------------------------------------------------

TRACES = [
    *("contracts", "homes", "devices", "members", "member_permissions", "guest_passes"),
    *("guest_pass_devices", "events", "alerts", "calls", "commands", "outbox"),
    *("audit_entries", "login_failures", "reset_codes", "alarm_panels", "alarm_users"),
    *("recordings", "motion_spans", "clips", "exports", "rejected_messages"),
]


@pytest.fixture
def two(gateway_factory: Any) -> Iterator[tuple[Gateway, Site, Site]]:
    gw: Gateway = gateway_factory(
        smtp_host="127.0.0.1", smtp_port=free_port(), command_wait_s=0, purge_grace_days=30
    )
    gw.start_ingest()
    a = make_site(gw, "a", "7711")
    b = make_site(gw, "b", "7722")

    def rows(model: Any) -> int:
        with gw.ctx.db.session() as s:
            return len(s.scalars(select(model.id)).all())

    wait_until(lambda: rows(Event) >= 4 and rows(Call) >= 2, timeout=15)
    yield gw, a, b


def _terminate(gw: Gateway, number: str) -> dict[str, Any]:
    r = gw.http.post(f"{API}/admin/contracts/{number}/terminate", headers=gw.admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _media_dirs(gw: Gateway) -> MediaDirs:
    return MediaDirs(gw.settings.archive_path().resolve(), gw.settings.var_dir.resolve())


def test_termination_ends_access_at_once(two: tuple[Gateway, Site, Site]) -> None:
    gw, a, b = two
    token = a.owner["Authorization"].removeprefix("Bearer ")
    connected = device_connect(gw.mqtt_port, a.devices["motion"])
    assert connected.connected.is_set()
    assert gw.http.get(f"{API}/guest/{a.guest_token}").status_code == 200
    # An entry delay running in both homes' panels (as the alarms role's timer finds them).
    due = datetime.now(UTC) + timedelta(minutes=1)
    with gw.ctx.db.transaction() as s:
        s.execute(update(AlarmPanel).values(next_deadline=due))
    with gw.http.websocket_connect(
        f"{API}/stream?after=now", subprotocols=["moydom", f"bearer.{token}"]
    ) as ws:
        assert ws.receive_json()["type"] == "position"
        body = _terminate(gw, a.number)
        started = time.monotonic()  # terminated: the stream must end now
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401
        assert time.monotonic() - started < 1.0
    assert body["status"] == "terminated"
    terminated = datetime.fromisoformat(body["terminated_at"])
    assert datetime.fromisoformat(body["purge_after"]) - terminated == timedelta(days=30)
    # Logins and tokens.
    for who in (a.number, "+79131007711"):
        r = gw.http.post(f"{API}/auth/login", json={"contract": who, "password": PW})
        assert r.status_code in (401, 403), (who, r.text)
        if r.status_code == 403:  # the right password: told the contract ended, not "suspended"
            assert r.json()["detail"] == "contract has ended", r.text
    assert gw.http.get(f"{API}/me", headers=a.owner).status_code == 401
    assert gw.http.get(f"{API}/events", headers=a.member).status_code == 401
    # The broker: the open connection dropped, the credentials refused.
    assert connected.disconnected.wait(5), "the device's connection was not dropped"
    connected.close()
    for name in ("motion", "gate", "camera"):
        peer = device_connect(gw.mqtt_port, a.devices[name])
        assert not peer.connected.is_set(), name
        assert peer.connect_reason is not None and peer.connect_reason.is_failure
        peer.close()
    # The guest pass.
    assert gw.http.get(f"{API}/guest/{a.guest_token}").status_code == 404
    # The security service: the ended contract's panels are off it, the other's still timed.
    with gw.ctx.db.session() as s:
        panels = s.execute(
            select(AlarmPanel.contract_id, AlarmPanel.monitored, AlarmPanel.next_deadline)
        )
        states = {
            contract: (monitored, deadline is not None) for contract, monitored, deadline in panels
        }
    assert states == {a.contract_id: (False, False), b.contract_id: (True, True)}
    gate_open = f"{API}/guest/{a.guest_token}/devices/{a.devices['gate']['id']}/open"
    assert gw.http.post(gate_open).status_code == 404
    # Nothing brings it back or adds to it.
    for path in ("terminate", "resume", "suspend"):
        r = gw.http.post(f"{API}/admin/contracts/{a.number}/{path}", headers=gw.admin)
        assert r.status_code == 409 and r.json()["detail"], (path, r.text)
    r = gw.http.post(
        f"{API}/admin/contracts/{a.number}/devices",
        json={"kind": "motion", "name": "new"},
        headers=gw.admin,
    )
    assert r.status_code == 409
    # The other contract is untouched.
    assert gw.http.get(f"{API}/me", headers=b.owner).status_code == 200
    peer = device_connect(gw.mqtt_port, b.devices["motion"])
    assert peer.connected.is_set()
    peer.close()
    assert gw.http.get(f"{API}/guest/{b.guest_token}").status_code == 200
    # The admin still sees it, with its purge date.
    got = gw.http.get(f"{API}/admin/contracts/{a.number}", headers=gw.admin).json()
    assert got["status"] == "terminated" and got["purge_after"] == body["purge_after"]


def test_the_purge_after_the_grace_leaves_nothing_of_the_contract(
    two: tuple[Gateway, Site, Site],
) -> None:
    gw, a, b = two
    body = _terminate(gw, a.number)
    purge_after = datetime.fromisoformat(body["purge_after"])
    before_a, before_b = owned(gw, a), owned(gw, b)
    # Every kind of trace is there to be purged.
    for table in TRACES:
        assert before_a.get(table), f"the test made no {table} row"
    key = gw.ctx.secrets.secret_key

    # Before the grace is over: nothing.
    assert purge_due(gw.ctx.db, _media_dirs(gw), key, purge_after - timedelta(seconds=1)) == []
    assert owned(gw, a) == before_a and all(p.exists() for p in a.files)
    r = gw.http.get(f"{API}/admin/contracts/{a.number}/purge", headers=gw.admin)
    assert r.status_code == 404

    # Once it is over: everything of a, nothing of b.
    reports = purge_due(gw.ctx.db, _media_dirs(gw), key, purge_after + timedelta(seconds=1))
    assert len(reports) == 1
    assert owned(gw, a) == {}
    assert not any(p.exists() for p in a.files)
    archive = gw.settings.archive_path().resolve()
    assert not (archive / a.devices["camera"]["id"]).exists()
    assert owned(gw, b) == before_b
    assert all(p.exists() for p in b.files)

    # The report: counts that match, no personal data, readable by the admin.
    r = gw.http.get(f"{API}/admin/contracts/{a.number}/purge", headers=gw.admin)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["rows"] == _counts(before_a)
    assert report["media_files"] == len(a.files)
    assert report["media_bytes"] == sum(1000 + n for n in range(3)) + 500 + 70
    assert report["purge_after"] == body["purge_after"]
    as_text = json.dumps(report, ensure_ascii=False)
    assert not [m for m in a.markers if m in as_text]
    assert gw.http.get(f"{API}/admin/contracts/{a.number}", headers=gw.admin).status_code == 404
    assert gw.http.get(f"{API}/admin/contracts/{b.number}/purge", headers=gw.admin).status_code == (
        404
    )
    assert gw.http.get(f"{API}/admin/contracts/{a.number}/purge").status_code == 401
    # A second sweep finds nothing more to do.
    later = purge_after + timedelta(days=1)
    assert purge_due(gw.ctx.db, _media_dirs(gw), key, later) == []


def test_the_audit_trail_stays_append_only_but_for_a_purge(
    two: tuple[Gateway, Site, Site],
) -> None:
    """Terminated is not purging: its entries cannot be deleted yet, and the
    other contract's never by an ordinary statement."""
    gw, a, b = two
    _terminate(gw, a.number)
    for contract_id in (a.contract_id, b.contract_id):
        for statement in (
            delete(AuditEntry).where(AuditEntry.contract_id == contract_id),
            update(AuditEntry).where(AuditEntry.contract_id == contract_id).values(action="x"),
        ):
            with pytest.raises(DBAPIError, match="append-only"), gw.ctx.db.transaction() as s:
                s.execute(statement)
    with gw.ctx.db.session() as s:
        assert s.scalars(select(AuditEntry.id).where(AuditEntry.contract_id == a.contract_id)).all()
    if gw.ctx.db.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), gw.ctx.db.transaction() as s:
            s.execute(text("TRUNCATE audit_entries"))


def test_the_alarms_role_purges_when_the_grace_is_over(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(purge_grace_days=0)
    gw.create_contract("purge-c")
    gw.create_contract("keep-d")
    camera = gw.create_device("purge-c", "camera", "cam", rtsp_url="rtsp://127.0.0.1:1/x")
    segment = _seg_path(
        gw.settings.archive_path().resolve(), camera["id"], datetime(2026, 12, 1, tzinfo=UTC)
    )
    segment.parent.mkdir(parents=True)
    segment.write_bytes(b"x" * 123)
    _terminate(gw, "purge-c")
    gw.start_alarms()
    wait_until(
        lambda: (
            gw.http.get(f"{API}/admin/contracts/purge-c/purge", headers=gw.admin).status_code == 200
        ),
        timeout=20,
    )
    report = gw.http.get(f"{API}/admin/contracts/purge-c/purge", headers=gw.admin).json()
    assert report["media_files"] == 1 and report["media_bytes"] == 123
    assert report["rows"]["contracts"] == 1 and report["rows"]["devices"] == 1
    assert not segment.exists()
    with gw.ctx.db.session() as s:
        assert s.scalars(select(Contract.number)).all() == ["keep-d"]
        assert len(s.scalars(select(PurgeReport.id)).all()) == 1
