"""Commands as read for showing: plain rows with their home's and device's
public ids, for the REST resource (the API maps them to its schema)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from gateway.db.command_models import Command
from gateway.db.models import Device, Home
from gateway.errors import NotFound


@dataclass(frozen=True)
class CommandView:
    id: str
    home: str
    device: str
    device_kind: str
    caller: str
    action: str
    status: str
    result: str | None
    detail: str | None
    created_at: datetime
    deadline: datetime
    finished_at: datetime | None


def command_view() -> Select[Command, str, str, str]:
    return (
        select(Command, Home.uid, Device.uid, Device.kind)
        .join(Home, Home.id == Command.home_id)
        .join(Device, Device.id == Command.device_id)
    )


def command_of(row: Row[Command, str, str, str]) -> CommandView:
    command, home, device, kind = row
    return CommandView(
        id=command.uid,
        home=home,
        device=device,
        device_kind=kind,
        caller=command.caller,
        action=command.action,
        status=command.status,
        result=command.result,
        detail=command.detail,
        created_at=command.created_at,
        deadline=command.deadline,
        finished_at=command.finished_at,
    )


def owned_command(session: Session, contract_id: int, home_uid: str, uid: str) -> CommandView:
    """The contract's command in that home; another contract's is a plain 404."""
    row = session.execute(
        command_view().where(
            Command.uid == uid, Command.contract_id == contract_id, Home.uid == home_uid
        )
    ).first()
    if row is None:
        raise NotFound(f"no command {uid} in home {home_uid}")
    return command_of(row)
