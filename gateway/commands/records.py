"""A command's life in the database: created ``sent`` by the API, settled by
the controller's ``command_result`` (ingest, in the batch's transaction), or
``expired`` by the sweep once its deadline and a grace have passed.

Every change is a conditional UPDATE that only an unsettled command matches,
so an answer and the sweep, or two sweeps, cannot both win. Every change also
writes one ``command`` event into the home's history (who, what, when,
result), which the events list and the live stream show like any other, and
returns the :class:`Notice` its caller announces with the commit. A command
settled ``refused``, ``failed`` or ``expired`` is also told as an alert by the
contract's channels (gateway.commands.results), in the same transaction.

A command is recorded in the home it was sent for: usually the device's own,
but a shared entrance panel's door opened during a call is recorded in the
called flat's home and contract (gateway.intercom.door), while it is
published to the panel's own topics.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from devices.kinds import DeviceKind
from devices.topics import DeviceTopics
from gateway.commands.results import tell_opened_late, tell_unopened
from gateway.db.command_models import Command, CommandStatus
from gateway.db.models import Device, Event, Home
from gateway.errors import NotFound
from gateway.notices import Notice

OPENABLE = frozenset({DeviceKind.GATE, DeviceKind.INTERCOM})
"""Kinds a subscriber may open: gates and barriers (``gate``), intercom doors."""
OPEN = "open"
HISTORY_EVENT = "command"
"""The event class of a command's history lines."""

STATUS_OF_RESULT = {
    "opened": CommandStatus.ACKNOWLEDGED,
    "ok": CommandStatus.ACKNOWLEDGED,
    "refused": CommandStatus.REFUSED,
    "rejected": CommandStatus.REFUSED,
    "fault": CommandStatus.FAILED,
    "expired": CommandStatus.EXPIRED,
}
"""A controller's ``result`` (devices.native.CommandResult) as the caller's outcome."""

EventRow = tuple[int, int, int, str, dict[str, Any], datetime]
"""As ingest writes an event: contract, home, device, class, body, received."""


@dataclass(frozen=True)
class Outgoing:
    """What to publish for a new command, once its row is committed."""

    command_id: int
    uid: str
    topic: str
    payload: dict[str, Any]
    deadline: datetime


def openable(session: Session, contract_id: int, home_uid: str, device_uid: str) -> Device:
    """The contract's live gate or intercom in that home. Anything else — another
    contract's, another home's, a sensor, a deleted device — is the same 404."""
    device = session.scalars(
        select(Device)
        .join(Home, Home.id == Device.home_id)
        .where(
            Device.uid == device_uid,
            Device.contract_id == contract_id,
            Device.deleted_at.is_(None),
            Home.uid == home_uid,
            Home.contract_id == contract_id,
        )
    ).first()
    if device is None or device.kind not in OPENABLE:
        raise NotFound(f"no gate or door {device_uid} in home {home_uid}")
    return device


def create(
    session: Session,
    device: Device,
    caller: str,
    ttl: timedelta,
    *,
    root: str,
    now: datetime,
    home: Home | None = None,
    call: int | None = None,
) -> tuple[Outgoing, Notice]:
    """A new ``open`` command, ``sent``, with its deadline and history line.
    ``home``: the home it is recorded in (default the device's own); ``call``:
    the intercom call it was sent during, named in its first history line."""
    command = Command(
        uid=secrets.token_hex(12),
        contract_id=home.contract_id if home is not None else device.contract_id,
        home_id=home.id if home is not None else device.home_id,
        device_id=device.id,
        caller=caller[:64],
        action=OPEN,
        status=CommandStatus.SENT,
        created_at=now,
        deadline=now + ttl,
    )
    session.add(command)
    session.flush()
    home_uid = session.get_one(Home, device.home_id).uid
    payload = {
        "command": OPEN,
        "command_id": command.uid,
        "ts": now.timestamp(),
        "deadline": command.deadline.timestamp(),
    }
    topic = DeviceTopics(root, home_uid, device.uid).set
    out = Outgoing(command.id, command.uid, topic, payload, command.deadline)
    return out, _changed(session, command, now, {"call": call} if call is not None else {})


def fail(
    session: Session, command_id: int, detail: str, now: datetime, transports: frozenset[str]
) -> Notice:
    """The command could not be handed to the broker: ``failed``, never sent.
    ``transports``: the configured ones of ``email`` and ``sms`` (for its alert)."""
    return _settle(
        session,
        update(Command).where(Command.id == command_id, Command.status == CommandStatus.SENT),
        CommandStatus.FAILED,
        result=None,
        detail=detail,
        at=now,
        transports=transports,
    )


def settle_answers(
    session: Session,
    events: Sequence[EventRow],
    now: datetime,
    transports: frozenset[str],
) -> Notice:
    """Ingest's hook: the controllers' ``command_result`` messages among a batch's
    stored events settle their commands. Only the device a command was sent to
    can answer it; a repeated answer changes nothing. A controller's answer
    still replaces ``expired`` (it acted just before the deadline, and its
    answer was slow), never another outcome."""
    changes = Notice()
    for _contract, _home, device_id, event, body, at in events:
        if event != "command_result" or body.get("result") not in STATUS_OF_RESULT:
            continue
        status = STATUS_OF_RESULT[body["result"]]
        unsettled = [CommandStatus.SENT]
        if status != CommandStatus.EXPIRED:
            unsettled.append(CommandStatus.EXPIRED)
        mine = (Command.uid == str(body.get("command_id")), Command.device_id == device_id)
        was = session.scalar(select(Command.status).where(*mine).with_for_update())
        stmt = update(Command).where(*mine, Command.status.in_(unsettled))
        settled = _settle(
            session,
            stmt,
            status,
            result=body["result"],
            detail=body.get("detail"),
            at=at,
            transports=transports,
        )
        if (
            settled.commands
            and was == CommandStatus.EXPIRED
            and status == CommandStatus.ACKNOWLEDGED
        ):
            command = session.get_one(Command, settled.commands[0][0])
            tell_opened_late(session, command, settled, transports, at)
        changes.merge(settled)
    return changes


def expire_due(
    session: Session,
    grace: timedelta,
    now: datetime,
    transports: frozenset[str],
    most: int = 500,
) -> tuple[Notice, datetime | None]:
    """Commands still ``sent`` ``grace`` after their deadline become ``expired``.
    Returns the changes and when the next one falls due (None: none waiting)."""
    changes = Notice()
    due = session.scalars(
        select(Command.id)
        .where(Command.status == CommandStatus.SENT, Command.deadline <= now - grace)
        .order_by(Command.deadline)
        .limit(most)
    ).all()
    for command_id in due:
        stmt = update(Command).where(Command.id == command_id, Command.status == CommandStatus.SENT)
        changes.merge(
            _settle(
                session,
                stmt,
                CommandStatus.EXPIRED,
                result=None,
                detail="no answer",
                at=now,
                transports=transports,
            )
        )
    following = session.scalar(
        select(func.min(Command.deadline)).where(Command.status == CommandStatus.SENT)
    )
    return changes, (following + grace if following is not None else None)


def _settle(
    session: Session,
    stmt: Any,
    status: CommandStatus,
    *,
    result: str | None,
    detail: Any,
    at: datetime,
    transports: frozenset[str],
) -> Notice:
    values = {
        "status": status,
        "result": result,
        "detail": str(detail)[:200] if detail else None,
        "finished_at": at,
    }
    ids = session.scalars(stmt.values(**values).returning(Command.id)).all()
    changes = Notice()
    for command_id in ids:
        command = session.get_one(Command, command_id)
        changes.merge(_changed(session, command, at))
        tell_unopened(session, command, changes, transports, at)
    return changes


def _changed(
    session: Session, command: Command, at: datetime, extra: dict[str, Any] | None = None
) -> Notice:
    """Write the command's history line as it is now; the notice of both."""
    session.refresh(command)
    body: dict[str, Any] = {
        **(extra or {}),
        "command_id": command.uid,
        "action": command.action,
        "status": command.status,
        "caller": command.caller,
        "deadline": command.deadline.isoformat(),
    }
    if command.result is not None:
        body["result"] = command.result
    if command.detail is not None:
        body["detail"] = command.detail
    event = Event(
        contract_id=command.contract_id,
        home_id=command.home_id,
        device_id=command.device_id,
        event=HISTORY_EVENT,
        body=body,
        received_at=at,
    )
    session.add(event)
    session.flush()
    return Notice(
        events=[(event.id, command.contract_id)], commands=[(command.id, command.contract_id)]
    )
