"""Device health across contracts, the recorders and the metrics summary, as
operators read them from the admin API (both backends): devices report
through the real broker and ingest; silence is checked against explicit times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text, update

from gateway.db.models import Device, DeviceHealth, Event, utcnow
from gateway.health.devices import HealthState, device_health
from gateway.recording.disk import DiskUse, alert_key, report
from gateway.recording.index import IndexWriter
from gateway.recording.role import PAUSED_REASON, load_cameras
from recorder.layout import SegmentInfo
from recorder.source import CameraStatus
from tests.conftest import Gateway
from tests.support import device_connect
from tests.test_ingest import count, publish, wait_until

HOURS_3 = timedelta(hours=3)


def health(gw: Gateway, **params: Any) -> Any:
    r = gw.http.get("/api/v1/admin/device-health", params=params, headers=gw.admin)
    assert r.status_code == 200, r.text
    return r.json()


def states(gw: Gateway, **params: Any) -> dict[str, list[str]]:
    return {d["name"]: d["states"] for d in health(gw, **params)["items"]}


def report_from(gw: Gateway, device: dict[str, Any], payload: Any, topic: str = "state") -> None:
    peer = device_connect(gw.mqtt_port, device)
    publish(peer, device["topics"][topic], payload)
    peer.close()


def seen_ago(gw: Gateway, device: dict[str, Any], ago: timedelta) -> None:
    """As if the device's last message (and its provisioning) were ``ago`` back."""
    with gw.ctx.db.transaction() as s:
        device_id = s.query(Device.id).filter(Device.uid == device["id"]).scalar()
        s.execute(update(Device).where(Device.id == device_id).values(created_at=utcnow() - ago))
        s.execute(
            update(DeviceHealth)
            .where(DeviceHealth.device_id == device_id)
            .values(last_seen_at=utcnow() - ago)
        )


@pytest.fixture
def fleet(gateway: Gateway) -> dict[str, Any]:
    """Two contracts' devices in every state, reported through ingest."""
    gateway.create_contract("6101", address="Новосибирск, ул. Ленина, 1")
    gateway.create_contract("6102", address="Бердск, ул. Ленина, 2")
    d = {
        "hall": gateway.create_device("6101", "motion", "hall"),
        "bath": gateway.create_device("6101", "leak", "bath"),
        "door": gateway.create_device("6101", "contact", "door"),
        "yard": gateway.create_device("6101", "gate", "yard"),
        "keypad": gateway.create_device("6102", "keypad", "keypad"),
        "new": gateway.create_device("6102", "motion", "new"),
        "lost": gateway.create_device("6102", "leak", "lost"),
    }
    gateway.start_ingest()
    report_from(gateway, d["hall"], {"occupancy": False, "battery": 90, "linkquality": 120})
    report_from(gateway, d["bath"], {"water_leak": False, "battery": 19, "linkquality": 80})
    report_from(gateway, d["door"], {"contact": True, "battery": 20, "linkquality": 60})
    report_from(gateway, d["yard"], {"state": "offline"}, "availability")
    report_from(gateway, d["keypad"], {"battery_low": True})
    wait_until(lambda: count(gateway, Event) == 5)
    seen_ago(gateway, d["door"], HOURS_3)  # it reported, three hours ago
    seen_ago(gateway, d["lost"], HOURS_3)  # provisioned three hours ago, never heard from
    return d


def test_states_of_every_contract_s_devices(gateway: Gateway, fleet: dict[str, Any]) -> None:
    page = health(gateway)
    assert page["counts"] == {"total": 7, "offline": 1, "silent": 2, "low_battery": 2}
    by_name = {d["name"]: d for d in page["items"]}
    assert by_name["hall"]["states"] == []  # reported just now: healthy
    assert by_name["hall"]["battery"] == 90 and by_name["hall"]["linkquality"] == 120
    assert by_name["hall"]["online"] is True and by_name["hall"]["check_in_s"] == 7200
    assert by_name["hall"]["contract"] == "6101"
    assert by_name["hall"]["address"] == "Новосибирск, ул. Ленина, 1"
    assert by_name["bath"]["states"] == ["low_battery"]  # 19 %
    assert by_name["door"]["states"] == ["silent"]  # 20 % is not low; 3 h without a word is
    assert by_name["yard"]["states"] == ["offline"]  # a gate is never silent: it has a will
    assert by_name["yard"]["check_in_s"] is None
    assert by_name["keypad"]["states"] == ["low_battery"]  # battery_low, no percentage
    assert by_name["new"]["states"] == []  # provisioned just now, not heard from yet
    assert by_name["lost"]["states"] == ["silent"] and by_name["lost"]["last_seen_at"] is None


def test_filters_and_paging(gateway: Gateway, fleet: dict[str, Any]) -> None:
    assert states(gateway, state="offline") == {"yard": ["offline"]}
    assert states(gateway, state="silent") == {"lost": ["silent"], "door": ["silent"]}
    assert states(gateway, state="low_battery") == {
        "keypad": ["low_battery"],
        "bath": ["low_battery"],
    }
    assert set(states(gateway, contract="6102")) == {"keypad", "new", "lost"}
    assert states(gateway, contract="6102", state="silent") == {"lost": ["silent"]}
    # Newest first, two a page, every device once.
    seen: list[str] = []
    cursor = None
    while True:
        page = health(gateway, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [d["name"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["lost", "new", "keypad", "yard", "door", "bath", "hall"]
    first = health(gateway, state="silent", limit=1)
    second = health(gateway, state="silent", limit=1, cursor=first["next_cursor"])
    assert [d["name"] for d in first["items"] + second["items"]] == ["lost", "door"]
    assert second["next_cursor"] is None
    # A cursor past devices.id's INTEGER range (any 18 digits are valid) starts at the newest.
    assert [d["name"] for d in health(gateway, limit=1, cursor="3000000000")["items"]] == ["lost"]


def test_silence_starts_after_the_check_in_interval(
    gateway: Gateway, fleet: dict[str, Any]
) -> None:
    with gateway.ctx.db.session() as s:
        seen = s.get(DeviceHealth, s.query(Device.id).filter(Device.name == "hall").scalar())
        assert seen is not None and seen.last_seen_at is not None
        at = seen.last_seen_at

        def hall(now: datetime) -> tuple[HealthState, ...]:
            [row] = [r for r in device_health(s, now, limit=100) if r.name == "hall"]
            return row.states

        assert hall(at + timedelta(hours=2) - timedelta(seconds=1)) == ()
        assert hall(at + timedelta(hours=2, seconds=1)) == (HealthState.SILENT,)
        names = {
            r.name
            for r in device_health(
                s, at + timedelta(hours=2, seconds=1), limit=100, state=HealthState.SILENT
            )
        }
        # Every Zigbee device is silent two hours on; the gate never is.
        assert names == {"hall", "bath", "door", "keypad", "new", "lost"}


def test_only_the_admin_token_and_valid_filters(gateway: Gateway, fleet: dict[str, Any]) -> None:
    user = gateway.login("6101")
    for path in ("device-health", "recorders", "metrics-summary"):
        assert gateway.http.get(f"/api/v1/admin/{path}", headers=user).status_code == 401
        r = gateway.http.get(f"/api/v1/admin/{path}")
        assert r.status_code == 401 and r.json()["detail"]
    for bad in ({"state": "sleepy"}, {"cursor": "x"}, {"limit": "0"}, {"contract": "a b"}):
        r = gateway.http.get("/api/v1/admin/device-health", params=bad, headers=gateway.admin)
        assert r.status_code == 422 and r.json()["detail"], bad


def test_recorders_and_metrics_summary(
    gateway: Gateway, fleet: dict[str, Any], tmp_path: Path
) -> None:
    gateway.create_device("6101", "camera", "porch", rtsp_url="rtsp://127.0.0.1:9/porch")
    gateway.create_device("6101", "camera", "garage", rtsp_url="rtsp://127.0.0.1:9/garage")
    gateway.create_device("6102", "camera", "yard-cam", rtsp_url="rtsp://127.0.0.1:9/yard")
    # What a recorder writes: a segment and "online" for the porch, "paused" for the garage.
    archive = tmp_path / "archive"
    writer = IndexWriter(gateway.ctx.db, archive, {}, lambda _events: None)
    uids = {spec.url.rsplit("/", 1)[1]: uid for uid, spec in load_cameras(gateway.ctx.db).items()}
    writer.cameras.update({uid: spec.ref for uid, spec in load_cameras(gateway.ctx.db).items()})
    writer.start()
    now = datetime.now(UTC)
    writer.put(CameraStatus(uids["porch"], online=True, at=now, reason="connected"))
    writer.put(
        SegmentInfo(
            uids["porch"], archive / "p/1.mp4", now, now + timedelta(seconds=10), 5000, True, False
        )
    )
    writer.put(CameraStatus(uids["garage"], online=False, at=now, reason=PAUSED_REASON))
    writer.flush()
    writer.stop()
    use = DiskUse(free=10, floor=100, footage=5000, held=0, other=0)
    report(gateway.ctx.db, alert_key("rec1"), "archive disk full: test", use, now)

    r = gateway.http.get("/api/v1/admin/recorders", headers=gateway.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    cams = {c["name"]: c for c in body["cameras"]}
    assert cams["porch"]["status"] == "recording"
    assert (cams["porch"]["segments"], cams["porch"]["bytes"]) == (1, 5000)
    assert cams["porch"]["last_segment_end"]
    assert cams["garage"]["status"] == "paused" and cams["garage"]["reason"] == PAUSED_REASON
    assert cams["yard-cam"]["status"] == "unknown" and cams["yard-cam"]["contract"] == "6102"
    assert body["floor_min_bytes"] == gateway.settings.archive_min_free_bytes
    [alert] = body["disk_alerts"]
    assert alert["key"] == "archive:disk_full:rec1" and alert["details"]["floor"] == 100

    r = gateway.http.get("/api/v1/admin/metrics-summary", headers=gateway.admin)
    assert r.status_code == 200
    names = {m["name"] for m in r.json()}
    assert "moydom_ingest_messages_total" in names
    assert all(n.startswith("moydom_") and not n.endswith("_bucket") for n in names)
    accepted = [m for m in r.json() if m["name"] == "moydom_ingest_messages_total"]
    assert sum(m["value"] for m in accepted) >= 5


def test_site_gauges_on_metrics(gateway: Gateway, fleet: dict[str, Any]) -> None:
    """/metrics adds the database's view: devices per state, open cases, open alerts."""
    report(gateway.ctx.db, alert_key("rec1"), "archive disk full: test", None, utcnow())
    r = gateway.http.get("/metrics", headers=gateway.admin)
    assert r.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(r.text)
        for s in f.samples
    }
    for state, n in {"total": 7, "offline": 1, "silent": 2, "low_battery": 2}.items():
        assert samples[("moydom_devices", (("state", state),))] == n
    assert samples[("moydom_cases_unclosed", (("status", "open"),))] == 0
    assert samples[("moydom_operator_alerts_open", ())] == 1
    assert samples[("moydom_ingest_messages_total", (("result", "stored"),))] >= 5
    # A database that cannot answer leaves the site gauges out, not the scrape.
    with gateway.ctx.db.transaction() as s:
        s.execute(text("DROP TABLE operator_alerts"))
    r = gateway.http.get("/metrics", headers=gateway.admin)
    assert r.status_code == 200 and "moydom_ingest_messages_total" in r.text
    assert "moydom_devices" not in r.text


def check_in(gw: Gateway, device: dict[str, Any], seconds: int | None, number: str = "6101") -> Any:
    return gw.http.put(
        f"/api/v1/admin/contracts/{number}/devices/{device['id']}/check-in",
        json={"check_in_s": seconds},
        headers=gw.admin,
    )


def test_a_device_s_own_check_in(gateway: Gateway, fleet: dict[str, Any]) -> None:
    r = check_in(gateway, fleet["hall"], 60)
    assert r.status_code == 200 and r.json() == {"check_in_s": 60, "kind_default_s": 7200}
    r = check_in(gateway, fleet["yard"], 600)  # a gate that heartbeats every few minutes
    assert r.json() == {"check_in_s": 600, "kind_default_s": None}
    by_name = {d["name"]: d for d in health(gateway)["items"]}
    assert by_name["hall"]["check_in_s"] == 60 and by_name["hall"]["states"] == []
    with gateway.ctx.db.session() as s:
        at = max(h.last_seen_at for h in s.query(DeviceHealth) if h.last_seen_at)

        def silent(now: datetime) -> set[str]:
            return {r.name for r in device_health(s, now, state=HealthState.SILENT, limit=100)}

        assert silent(at + timedelta(seconds=30)) == {"door", "lost"}
        assert silent(at + timedelta(seconds=61)) == {"door", "lost", "hall"}
        assert silent(at + timedelta(seconds=601)) == {"door", "lost", "hall", "yard"}
    # null goes back to the kind's default; a camera has none; bad values change nothing.
    assert check_in(gateway, fleet["hall"], None).json()["check_in_s"] == 7200
    cam = gateway.create_device("6101", "camera", "cam", rtsp_url="rtsp://127.0.0.1:9/c")
    r = check_in(gateway, cam, 600)
    assert r.status_code == 422 and r.json()["detail"]
    for bad in (59, 8 * 86400, "soon"):
        r = check_in(gateway, fleet["door"], bad)  # type: ignore[arg-type]
        assert r.status_code == 422 and r.json()["detail"]
    assert check_in(gateway, fleet["door"], 600, number="6102").status_code == 404
    user = gateway.login("6101")
    r = gateway.http.put(
        f"/api/v1/admin/contracts/6101/devices/{fleet['door']['id']}/check-in",
        json={"check_in_s": 600},
        headers=user,
    )
    assert r.status_code == 401
    assert {d["name"]: d["check_in_s"] for d in health(gateway)["items"]}["door"] == 7200
