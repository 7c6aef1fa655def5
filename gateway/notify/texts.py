"""The Russian texts of notifications: e-mail subjects and bodies, SMS, Web Push.

An alert carries its category, kind and a JSON body besides the text the app
shows; the notification's title is built here from those, so the e-mail, the
SMS and the push of one alert say the same thing in Russian whatever text the
writer of the alert chose. Times are the home's local time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from gateway.db.models import Home

ALARMS: Final[dict[str, str]] = {
    "burglary": "Тревога: проникновение",
    "entry_exit": "Тревога: код не введён при входе",
    "leak": "Протечка воды",
    "tamper": "Тревога: вскрытие датчика",
    "panic": "Тревожная кнопка",
    "duress": "Тревога: принуждение",
    "supervision": "Датчик охраны не на связи",
    "wrong_code": "Тревога: неверный код",
}
STATUSES: Final[dict[str, str]] = {
    "disarmed": "Охрана снята",
    "arming": "Постановка на охрану",
    "armed_away": "Поставлено на охрану: все зоны",
    "armed_home": "Поставлено на охрану: режим «дома»",
    "armed_night": "Поставлено на охрану: ночной режим",
    "armed_vacation": "Поставлено на охрану: режим «отпуск»",
    "pending": "Вход в охраняемую зону: введите код",
    "triggered": "Тревога! Сработала охрана",
}
TROUBLES: Final[dict[str, tuple[str, str]]] = {
    "offline": ("не на связи", "снова на связи"),
    "silent": ("давно не выходил на связь", "снова на связи"),
    "tamper": ("корпус вскрыт", "корпус закрыт"),
}
SIGNATURE: Final = (
    "Это автоматическое сообщение сервиса «Мой дом». "
    "Способ уведомлений меняется в личном кабинете, раздел «Настройки»."
)


def home_zone(session: Session, home_id: int) -> ZoneInfo:
    """The time zone the home's times are shown in (``homes.time_zone``)."""
    return ZoneInfo(session.get_one(Home, home_id).time_zone)


def local(at: datetime, zone: ZoneInfo) -> str:
    """``05.12.2026 19:55`` in ``zone``."""
    return at.astimezone(zone).strftime("%d.%m.%Y %H:%M")


def title(
    category: str,
    kind: str,
    text: str,
    body: Mapping[str, Any],
    *,
    zone: ZoneInfo,
    zone_name: Callable[[str | None], str | None],
) -> str:
    """What the notification says, in Russian; ``text`` (the alert's own) when
    the kind has no text here (calls and gate answers are written in Russian)."""
    where = zone_name(body.get("zone"))
    if kind == "alarm":
        name = ALARMS.get(str(body.get("alarm")), "Тревога")
        return f"{name}: {where}" if where else name
    if kind == "alarm_cancelled":
        return f"Тревога отменена кодом ({body.get('user') or 'пользователь'})"
    if kind == "status":
        status = STATUSES.get(str(body.get("new")), "Охрана: состояние изменилось")
        return f"{status} ({body['user']})" if body.get("user") else status
    if kind == "lockout":
        until = body.get("until")
        limit = f" до {local(datetime.fromisoformat(until), zone)[-5:]}" if until else ""
        return f"Слишком много неверных кодов: клавиатура заблокирована{limit}"
    if kind in ("trouble", "trouble_restored"):
        state = TROUBLES.get(str(body.get("kind")), ("неисправность", "исправен"))
        return f"Датчик «{where or 'без имени'}»: {state[kind == 'trouble_restored']}"
    return text


def subject(title_text: str, address: str) -> str:
    """The e-mail subject, also the SMS's start: what happened and where."""
    return f"{title_text} — {address}"


def email_body(title_text: str, address: str, at: datetime, zone: ZoneInfo) -> str:
    return (
        f"{title_text}\n\nАдрес: {address}\nВремя: {local(at, zone)} ({zone.key})\n\n{SIGNATURE}\n"
    )


def sms(title_text: str, address: str, at: datetime, zone: ZoneInfo) -> str:
    """One SMS: title, address and local time, within 300 characters."""
    tail = f", {local(at, zone)[-5:]}"
    return subject(title_text, address)[: 300 - len(tail)] + tail
