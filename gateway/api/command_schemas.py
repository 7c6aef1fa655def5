"""The bodies of the command routes (gates, barriers, intercom doors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, Field

from gateway.api.schemas import Request
from gateway.commands.views import CommandView

COMMAND_ID = r"^[0-9a-f]{24}$"
CommandIdPath = Annotated[str, Path(pattern=COMMAND_ID)]
CommandStatus = Literal["sent", "acknowledged", "refused", "failed", "expired"]


class CommandIn(Request):
    action: Literal["open"] = Field(description="what to do: open the gate, barrier or door")
    deadline_s: float | None = Field(
        default=None,
        ge=1,
        le=60,
        description="seconds the command stays worth doing (default MOYDOM_COMMAND_DEADLINE_S)",
    )


class CommandOut(BaseModel):
    id: str = Field(description="the command id, also the controller's command_id")
    home: str
    device: str
    device_kind: str
    caller: str = Field(
        description="who asked: the login (the contract number for the owner, a member's own)"
    )
    action: str
    status: CommandStatus = Field(
        description="sent (no answer yet), acknowledged (opened), refused, failed, expired"
    )
    result: str | None = Field(description="the controller's own answer, if it gave one")
    detail: str | None = Field(description="why it was refused, failed or expired")
    created_at: datetime
    deadline: datetime
    finished_at: datetime | None


class CommandPage(BaseModel):
    items: list[CommandOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next, older page")


def command_out(view: CommandView) -> CommandOut:
    return CommandOut.model_validate(view, from_attributes=True)
