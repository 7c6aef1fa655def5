"""The security service end to end, with the real broker, database, DC-09
receiver and SMTP server: alarms reach dispatch, the central station, the
sirens and the subscriber; a code in time cancels; duress is silent; wrong
codes lock out; a leak alarms while disarmed; unacknowledged cases come back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from email.header import decode_header, make_header
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db.models import Device
from gateway.db.security_models import AlarmPanel
from tests.security_support import (
    CODE,
    DURESS,
    OWNER_EMAIL,
    WRONG,
    MailSink,
    SecuredHome,
    central_station,
    expect_codes,
    keypad_reply,
    mail,
    secure,
    secured_gateway,
)
from tests.test_ingest import wait_until
from tests.test_sia import Receiver

__all__ = ["central_station", "mail"]  # fixtures


@pytest.fixture
def home(
    gateway_factory: Any, central_station: Receiver, mail: tuple[MailSink, int]
) -> Iterator[SecuredHome]:
    gw = secured_gateway(gateway_factory, central_station, mail, dispatch_ack_timeout_s=30)
    secured = secure(gw, "5101")
    yield secured
    secured.close()


def test_trip_without_code_alarms_dispatch_siren_station_and_mail(
    home: SecuredHome, central_station: Receiver, mail: tuple[MailSink, int]
) -> None:
    siren = home.peer("siren")
    assert home.arm().json()["status"] == "armed_away"
    assert expect_codes(central_station, {"407"})["event_qualifier"] == "3"  # remote closing
    home.send("hall", {"occupancy": True})
    home.wait_status("pending")
    home.wait_status("triggered")

    (case,) = home.cases()
    assert case["status"] == "open" and case["zone"] == home.devices["hall"]["id"]
    assert case["alarm"] == "entry_exit" and case["contact_id"] == 134
    assert case["address"] == "Novosibirsk" and case["zone_name"] == "hall"
    command = siren.expect(home.devices["siren"]["topics"]["set"], timeout=10)
    assert b'"burglar"' in command.payload
    expiry = getattr(command.properties, "MessageExpiryInterval", None)
    assert expiry is not None and 0 < expiry <= 30
    event = expect_codes(central_station, {"134"})
    assert event["account"] == "1234" and event["event_qualifier"] == "1"
    message = mail[0].expect()
    assert message["To"] == OWNER_EMAIL and "Тревога" in str(
        make_header(decode_header(message["Subject"]))
    )

    alerts = home.gw.http.get("/api/v1/alerts", headers=home.owner).json()["items"]
    assert any(a["category"] == "alarm" and a["kind"] == "alarm" for a in alerts)


def test_code_in_time_cancels(home: SecuredHome, central_station: Receiver) -> None:
    home.arm()
    assert expect_codes(central_station, {"407"})["event_qualifier"] == "3"
    home.send("door", {"contact": False})
    home.wait_status("pending")
    r = home.disarm(CODE)
    assert r.status_code == 200 and r.json()["status"] == "disarmed"
    assert expect_codes(central_station, {"407"})["event_qualifier"] == "1"  # remote opening
    time.sleep(3)  # well past the entry delay: nothing may fire
    assert home.panel()["status"] == "disarmed"
    assert home.cases() == []


def test_duress_disarms_visibly_and_alarms_silently(
    home: SecuredHome, central_station: Receiver
) -> None:
    keypad = home.peer("keypad")
    home.arm()
    home.send("door", {"contact": False})
    home.wait_status("pending")
    home.send("keypad", {"action": "disarm", "action_code": DURESS, "action_transaction": 41})
    reply = keypad_reply(keypad, home.devices["keypad"]["topics"]["set"])
    assert reply == {"transaction": 41, "mode": "disarm"}
    home.wait_status("disarmed")
    (case,) = home.cases()
    assert case["alarm"] == "duress" and case["contact_id"] == 121 and case["silent"]
    assert expect_codes(central_station, {"121"})["event_qualifier"] == "1"
    alerts = home.gw.http.get("/api/v1/alerts", headers=home.owner).json()["items"]
    assert not any("duress" in a["text"] for a in alerts), "the phone must not show it"


def test_wrong_codes_lock_the_keypad_out(home: SecuredHome, central_station: Receiver) -> None:
    keypad = home.peer("keypad")
    set_topic = home.devices["keypad"]["topics"]["set"]
    home.arm()
    for n in range(5):
        home.send("keypad", {"action": "disarm", "action_code": WRONG, "action_transaction": n})
        assert keypad_reply(keypad, set_topic) == {"transaction": n, "mode": "invalid_code"}
    assert expect_codes(central_station, {"461"})["event_qualifier"] == "1"
    # Locked: even the right code is refused now.
    r = home.disarm(CODE)
    assert r.status_code == 403 and "locked_out" in r.json()["detail"]
    assert home.panel()["status"] == "armed_away"


def test_leak_while_disarmed_opens_a_case(
    home: SecuredHome, central_station: Receiver, mail: tuple[MailSink, int]
) -> None:
    home.send("bath", {"water_leak": True, "battery_low": False})
    wait_until(lambda: len(home.cases()) == 1, 10)
    (case,) = home.cases()
    assert case["alarm"] == "leak" and case["contact_id"] == 154
    assert home.panel()["status"] == "disarmed"
    assert expect_codes(central_station, {"154"})["ri"] == f"{_number(home, 'bath'):03d}"
    assert "Протечка" in str(make_header(decode_header(mail[0].expect()["Subject"])))


def _number(home: SecuredHome, name: str) -> int:
    with home.gw.ctx.db.session() as session:
        device = session.query(Device).filter_by(uid=home.devices[name]["id"]).one()
        return device.id % 1000


def test_deadline_fires_at_its_time_not_the_poll(home: SecuredHome) -> None:
    home.arm()
    home.send("door", {"contact": False})
    home.wait_status("pending")
    deadline = datetime.fromisoformat(home.panel()["deadline"])
    home.wait_status("triggered")
    (case,) = home.cases()
    opened = datetime.fromisoformat(case["opened_at"])
    assert abs((opened - deadline).total_seconds()) < 0.01


def test_instant_zone_override_and_unknown_zone_refused(
    home: SecuredHome, central_station: Receiver
) -> None:
    hall = home.devices["hall"]["id"]
    url = f"/api/v1/admin/homes/{home.home}/security"
    body: dict[str, Any] = {
        "account": "1234",
        "zones": [{"device": "nosuchdevice", "type": "instant"}],
    }
    r = home.gw.http.put(url, json=body, headers=home.gw.admin)
    assert r.status_code == 422 and "nosuchdevice" in r.json()["detail"]
    body["zones"] = [{"device": hall, "type": "instant"}]
    body["timing"] = {"armed_away": {"exit_delay_s": 0}}
    assert home.gw.http.put(url, json=body, headers=home.gw.admin).status_code == 200
    assert home.gw.http.get(url, headers=home.gw.admin).json()["zones"][0]["device"] == hall
    home.arm()
    home.send("hall", {"occupancy": True})
    home.wait_status("triggered", timeout=5)
    (case,) = home.cases()
    assert case["alarm"] == "burglary" and case["contact_id"] == 130
    assert expect_codes(central_station, {"130"})["ri"] == f"{_number(home, 'hall'):03d}"


def test_keypad_back_online_is_told_the_status(home: SecuredHome) -> None:
    keypad = home.peer("keypad")
    topics = home.devices["keypad"]["topics"]
    home.arm()
    while json.loads(keypad.expect(topics["set"]).payload)["arm_mode"] != {"mode": "arm_all_zones"}:
        pass
    keypad.publish(topics["availability"], b'{"state": "online"}')
    shown = json.loads(keypad.expect(topics["set"], timeout=10).payload)["arm_mode"]
    assert shown == {"mode": "arm_all_zones"}


def test_an_engine_failure_opens_a_fault_case_and_keeps_the_events(home: SecuredHome) -> None:
    with home.gw.ctx.db.transaction() as session:
        panel = session.scalars(select(AlarmPanel)).one()
        panel.state = {"status": "no-such-status"}  # what a bug might leave behind
    home.send("door", {"contact": False})
    wait_until(lambda: len(home.cases()) == 1, 10)
    (case,) = home.cases()
    assert case["alarm"] == "fault" and case["contact_id"] == 300
    assert "could not process" in case["timeline"][0]["text"]
    events = home.gw.http.get("/api/v1/events", headers=home.owner).json()["items"]
    assert any(e["event"] == "contact" for e in events)
