"""The bodies of the intercom-call and building routes, and the one place a
call becomes a live-stream message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, Field, StringConstraints

from gateway.api.schemas import CONTRACT_NUMBER, DEVICE_ID, Address, Request
from gateway.intercom.calls import CLIP_URL
from gateway.intercom.views import CallView

FLAT = r"^[0-9A-Za-z][0-9A-Za-z-]{0,15}$"
FlatPath = Annotated[str, Path(pattern=FLAT, description="the flat number the panel reports")]
BuildingIdPath = Annotated[str, Path(pattern=DEVICE_ID)]
CallState = Literal["ringing", "answered", "declined", "missed", "ended"]
ANSWERED_ELSEWHERE = "отвечено"


class CallClipOut(BaseModel):
    start: datetime
    end: datetime
    url: str = Field(description="the clip as one MP4 (bearer token; byte ranges)")


class CallOut(BaseModel):
    id: int
    home: str
    panel: str = Field(description="the intercom device that called")
    panel_name: str
    flat: str
    state: CallState
    started_at: datetime
    answered_at: datetime | None
    answered_by: str | None = Field(description="the member who answered, as they named it")
    ended_at: datetime | None
    ended_by: Literal["member", "panel", "timeout"] | None
    clip: CallClipOut | None = Field(
        description="the panel camera's video of the call, once it ended (none without a camera)"
    )


class CallPage(BaseModel):
    items: list[CallOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next, older page")


class CallAnswer(Request):
    member: Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,64}$")] | None = Field(
        default=None,
        description="who answers (the app's name for this member or phone); "
        "the login if omitted (the contract number for the owner)",
    )


def call_out(view: CallView) -> CallOut:
    clip = None
    if view.clip_end is not None:
        url = CLIP_URL.format(view.id)
        clip = CallClipOut(start=view.started_at, end=view.clip_end, url=url)
    return CallOut(
        id=view.id,
        home=view.home,
        panel=view.panel,
        panel_name=view.panel_name,
        flat=view.flat,
        state=view.state,
        started_at=view.started_at,
        answered_at=view.answered_at,
        answered_by=view.answered_by,
        ended_at=view.ended_at,
        ended_by=view.ended_by,
        clip=clip,
    )


def call_message(view: CallView) -> dict[str, Any]:
    """``{"type": "call", "call": …, "ring": …}``: ring while ``ring`` is
    true; an answered call tells every member ``"notice": "отвечено"`` (the
    one who answered knows it from their own request's answer)."""
    message: dict[str, Any] = {
        "type": "call",
        "call": call_out(view).model_dump(mode="json"),
        "ring": view.state == "ringing",
    }
    if view.state == "answered":
        message["notice"] = ANSWERED_ELSEWHERE
    return message


class BuildingCreate(Request):
    address: Address


class PanelAttach(Request):
    device: Annotated[str, StringConstraints(pattern=DEVICE_ID)] = Field(
        description="the id of a provisioned intercom (any contract's: usually the operator's)"
    )


class FlatSet(Request):
    contract: Annotated[str, StringConstraints(pattern=CONTRACT_NUMBER)]
    home: Annotated[str, StringConstraints(pattern=DEVICE_ID)] = Field(
        description="the contract's home that this flat is"
    )


class FlatOut(BaseModel):
    number: str
    contract: str
    home: str


class BuildingOut(BaseModel):
    id: str
    address: str
    panels: list[str] = Field(description="device ids of the intercoms at its entrances")
    flats: list[FlatOut]
