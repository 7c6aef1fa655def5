"""Telling the home that a gate or door did not open: a command settled
``refused``, ``failed`` or ``expired`` is an alert of the device's category
(``gate`` for gates and barriers, ``intercom`` for a panel's door), fanned out
by the contract's channel preferences through the outbox
(gateway.security.alerts), in the transaction that settled it — so it is
told exactly once, whoever settled it (ingest, the sweep, the API)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from devices.kinds import DeviceKind
from gateway.db.command_models import Command, CommandStatus
from gateway.db.models import Device, Home
from gateway.notices import Notice
from gateway.security.alerts import AlertWriter
from gateway.security.home import HomeView

UNOPENED = {
    CommandStatus.REFUSED: "отказ контроллера",
    CommandStatus.FAILED: "неисправность",
    CommandStatus.EXPIRED: "нет ответа вовремя",
}
"""The outcomes that are told, with the reason the alert's text gives."""


def alert_home(session: Session, home_id: int) -> HomeView:
    """The home as an alert needs it (no alarm panel involved)."""
    home = session.get_one(Home, home_id)
    return HomeView(home.id, home.uid, home.contract_id, home.address, "", False, ())


def tell_unopened(
    session: Session, command: Command, changes: Notice, transports: frozenset[str], now: datetime
) -> None:
    """The ``command_<status>`` alert of a command that did not open (no-op otherwise)."""
    status = CommandStatus(command.status)
    if status not in UNOPENED:
        return
    device = session.get_one(Device, command.device_id)
    category = "intercom" if device.kind == DeviceKind.INTERCOM else "gate"
    text = f"Не открылось «{device.name}»: {UNOPENED[status]}"
    body = {
        "command_id": command.uid,
        "device": device.uid,
        "status": command.status,
        "result": command.result,
        "detail": command.detail,
        "caller": command.caller,
    }
    AlertWriter(session, alert_home(session, command.home_id), changes, now, transports).add(
        category, f"command_{command.status}", text, body, at=now, device_id=device.id
    )
