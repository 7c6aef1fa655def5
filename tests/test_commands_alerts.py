"""Gate and door results told (issue 14): a command that did not open —
refused by the controller, failed, expired — is an alert of its home, sent by
the contract's chosen channels through the outbox (here e-mail, to a local
SMTP sink); an opened one is not. Another contract is told nothing."""

from __future__ import annotations

import json
from email.header import decode_header, make_header
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.security_support import OWNER_EMAIL, MailSink, mail
from tests.support import device_connect
from tests.test_commands import controller, url, wait_status

__all__ = ["mail"]  # fixtures


@pytest.fixture
def told(gateway_factory: Any, mail: tuple[MailSink, int]) -> Gateway:
    gw: Gateway = gateway_factory(smtp_host="127.0.0.1", smtp_port=mail[1], alarms_poll_s=0.2)
    gw.create_contract("5101")
    gw.create_contract("5102")
    gw.start_ingest()
    gw.start_alarms()
    return gw


def subject(sink: MailSink) -> str:
    message = sink.expect()
    assert message["To"] == OWNER_EMAIL
    return str(make_header(decode_header(message["Subject"])))


def test_a_gate_that_did_not_open_is_told_by_the_chosen_channels(
    told: Gateway, mail: tuple[MailSink, int]
) -> None:
    a, b = told.login("5101"), told.login("5102")
    prefs = {"email": OWNER_EMAIL, "channels": {"gate": ["app", "email"]}}
    assert told.http.put("/api/v1/me/notifications", json=prefs, headers=a).status_code == 200
    assert told.http.put("/api/v1/me/notifications", json=prefs, headers=b).status_code == 200
    opens = told.create_device("5101", "gate", "yard-gate")
    jammed = told.create_device("5101", "gate", "barrier")
    stubborn = told.create_device("5101", "gate", "garage")
    offline = told.create_device("5101", "gate", "back-gate")
    controller(told, opens)
    controller(told, jammed).fault = True
    # A controller that refuses (its own rules: say, the gate is locked out).
    peer = device_connect(told.mqtt_port, stubborn)
    peer.subscribe(stubborn["topics"]["set"])

    ok = told.http.post(url(opens), json={"action": "open"}, headers=a).json()
    assert ok["status"] == "acknowledged"
    failed = told.http.post(url(jammed), json={"action": "open"}, headers=a).json()
    assert failed["status"] == "failed"
    refused = told.http.post(url(stubborn), json={"action": "open"}, headers=a).json()
    command = json.loads(peer.expect(stubborn["topics"]["set"]).payload)
    answer = {
        "event": "command_result",
        "command_id": command["command_id"],
        "result": "refused",
        "detail": "locked out",
    }
    peer.publish(stubborn["topics"]["state"], answer)
    wait_status(told, a, refused, "refused")
    expired = told.http.post(
        url(offline), json={"action": "open", "deadline_s": 1}, headers=a
    ).json()
    wait_status(told, a, expired, "expired")
    peer.close()

    subjects = {subject(mail[0]) for _ in range(3)}
    assert subjects == {
        "Не открылось «barrier»: неисправность — Novosibirsk",
        "Не открылось «garage»: отказ контроллера — Novosibirsk",
        "Не открылось «back-gate»: нет ответа вовремя — Novosibirsk",
    }
    alerts = told.http.get("/api/v1/alerts", headers=a).json()["items"]
    got = {(x["category"], x["kind"], x["body"]["command_id"]) for x in alerts}
    assert got == {
        ("gate", "command_failed", failed["id"]),
        ("gate", "command_refused", refused["id"]),
        ("gate", "command_expired", expired["id"]),
    }
    refusal = next(x for x in alerts if x["kind"] == "command_refused")
    assert refusal["body"]["detail"] == "locked out" and refusal["body"]["caller"] == "5101"
    # The opened gate was told to nobody, and the other contract heard nothing.
    assert told.http.get("/api/v1/alerts", headers=b).json()["items"] == []
    assert mail[0].messages.empty()


def test_a_gate_told_expired_that_then_says_it_opened_is_told_again(
    told: Gateway, mail: tuple[MailSink, int]
) -> None:
    """The controller acted in time but its answer came after the sweep had
    called the command expired: the home, told it did not open, is told it did."""
    a = told.login("5101")
    prefs = {"email": OWNER_EMAIL, "channels": {"gate": ["app", "email"]}}
    assert told.http.put("/api/v1/me/notifications", json=prefs, headers=a).status_code == 200
    gate = told.create_device("5101", "gate", "slow-gate")
    peer = device_connect(told.mqtt_port, gate)
    peer.subscribe(gate["topics"]["set"])
    sent = told.http.post(url(gate), json={"action": "open", "deadline_s": 1}, headers=a).json()
    command = json.loads(peer.expect(gate["topics"]["set"]).payload)
    wait_status(told, a, sent, "expired")
    assert subject(mail[0]) == "Не открылось «slow-gate»: нет ответа вовремя — Novosibirsk"
    answer = {"event": "command_result", "command_id": command["command_id"], "result": "opened"}
    peer.publish(gate["topics"]["state"], answer)
    wait_status(told, a, sent, "acknowledged")
    peer.close()
    assert subject(mail[0]) == (
        "Открылось «slow-gate»: ответ пришёл после срока, ворота или дверь открыты — Novosibirsk"
    )
    kinds = [x["kind"] for x in told.http.get("/api/v1/alerts", headers=a).json()["items"]]
    assert kinds == ["command_opened_late", "command_expired"]
