"""Notification texts in Russian with the home's local time, and the SMS
transport without an API key sending no Authorization header at all."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.notify import texts
from gateway.notify.sms import HttpSmsSender
from tests.test_notify_transports import Provider, _send_sms, provider

__all__ = ["provider"]  # fixture

NSK = ZoneInfo("Asia/Novosibirsk")
AT = datetime(2026, 12, 5, 12, 55, 1, tzinfo=UTC)  # 19:55 in Novosibirsk
NAMES = {"z-bath": "Ванная", "z-door": "Входная дверь"}


def title(category: str, kind: str, body: Mapping[str, object], text: str = "english") -> str:
    return texts.title(category, kind, text, body, zone=NSK, zone_name=NAMES.get)  # type: ignore[arg-type]


def test_every_alert_kind_is_told_in_russian() -> None:
    assert title("leak", "alarm", {"alarm": "leak", "zone": "z-bath"}) == "Протечка воды: Ванная"
    assert title("alarm", "alarm", {"alarm": "burglary", "zone": "z-door"}) == (
        "Тревога: проникновение: Входная дверь"
    )
    assert title("alarm", "alarm", {"alarm": "panic", "zone": None}) == "Тревожная кнопка"
    assert title("alarm", "alarm_cancelled", {"user": "anna"}) == "Тревога отменена кодом (anna)"
    assert title("security", "status", {"new": "armed_away", "user": "anna"}) == (
        "Поставлено на охрану: все зоны (anna)"
    )
    assert title("security", "status", {"new": "disarmed"}) == "Охрана снята"
    until = {"until": "2026-12-05T13:10:00+00:00"}
    assert title("security", "lockout", until) == (
        "Слишком много неверных кодов: клавиатура заблокирована до 20:10"
    )
    assert title("trouble", "trouble", {"zone": "z-door", "kind": "offline"}) == (
        "Датчик «Входная дверь»: не на связи"
    )
    assert title("trouble", "trouble_restored", {"zone": "z-door", "kind": "tamper"}) == (
        "Датчик «Входная дверь»: корпус закрыт"
    )
    # Calls and gate answers are written in Russian by their own modules.
    said = "Не открылось «garage»: отказ контроллера"
    assert title("gate", "command_refused", {}, said) == said
    for kind, body in [
        ("alarm", {"alarm": "tamper", "zone": "z-door"}),
        ("status", {"new": "armed_night"}),
        ("trouble", {"zone": "z-bath", "kind": "silent"}),
    ]:
        told = title("alarm", kind, body)
        assert told.isascii() is False and "english" not in told, told


def test_email_and_sms_show_the_homes_local_time() -> None:
    body = texts.email_body("Протечка воды: Ванная", "ул. Ленина 1", AT, NSK)
    assert "Протечка воды: Ванная" in body and "Адрес: ул. Ленина 1" in body
    assert "Время: 05.12.2026 19:55 (Asia/Novosibirsk)" in body
    assert "UTC" not in body
    assert texts.subject("Протечка воды", "ул. Ленина 1") == "Протечка воды — ул. Ленина 1"
    sms = texts.sms("Протечка воды", "ул. Ленина 1", AT, NSK)
    assert sms == "Протечка воды — ул. Ленина 1, 19:55"
    assert len(texts.sms("Х" * 400, "адрес", AT, NSK)) == 300


def test_sms_without_an_api_key_sends_no_authorization(provider: Provider) -> None:
    sender = HttpSmsSender(provider.url, None)
    asyncio.run(_send_sms(sender, "+79130000001", "Протечка воды", "alert-1.sms"))
    _path, headers, _body = provider.requests.get(timeout=5)
    assert "Authorization" not in headers
