"""Telling the home that a gate or door did not open: a command settled
``refused``, ``failed`` or ``expired`` is an alert of the device's category
(``gate`` for gates and barriers, ``intercom`` for a panel's door), fanned out
by the contract's channel preferences through the outbox
(gateway.security.alerts), in the transaction that settled it — so it is
told exactly once, whoever settled it (ingest, the sweep, the API). One told
``expired`` that its controller then says it opened is told again: it is open."""

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
OPENED_LATE = "ответ пришёл после срока, ворота или дверь открыты"


def alert_home(session: Session, home_id: int) -> HomeView:
    """The home as an alert needs it (no alarm panel involved)."""
    home = session.get_one(Home, home_id)
    return HomeView(home.id, home.uid, home.contract_id, home.address, "", False, ())


def tell_unopened(
    session: Session, command: Command, changes: Notice, transports: frozenset[str], now: datetime
) -> None:
    """The ``command_<status>`` alert of a command that did not open (no-op otherwise)."""
    status = CommandStatus(command.status)
    if status in UNOPENED:
        _tell(
            session,
            command,
            f"command_{status}",
            UNOPENED[status],
            changes=changes,
            transports=transports,
            now=now,
        )


def tell_opened_late(
    session: Session, command: Command, changes: Notice, transports: frozenset[str], now: datetime
) -> None:
    """A command told ``expired`` whose controller then answered ``opened``: it
    acted in time, its answer came late — the gate is open after all, and the
    home that was told otherwise is told so (``command_opened_late``)."""
    _tell(
        session,
        command,
        "command_opened_late",
        OPENED_LATE,
        changes=changes,
        transports=transports,
        now=now,
    )


def _tell(
    session: Session,
    command: Command,
    kind: str,
    reason: str,
    *,
    changes: Notice,
    transports: frozenset[str],
    now: datetime,
) -> None:
    device = session.get_one(Device, command.device_id)
    category = "intercom" if device.kind == DeviceKind.INTERCOM else "gate"
    verb = "Открылось" if kind == "command_opened_late" else "Не открылось"
    text = f"{verb} «{device.name}»: {reason}"
    body = {
        "command_id": command.uid,
        "device": device.uid,
        "status": command.status,
        "result": command.result,
        "detail": command.detail,
        "caller": command.caller,
    }
    AlertWriter(session, alert_home(session, command.home_id), changes, now, transports).add(
        category, kind, text, body, at=now, device_id=device.id
    )
