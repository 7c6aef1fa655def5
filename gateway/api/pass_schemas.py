"""The bodies of the guest-pass routes: the owner's and the guest's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from gateway.api.schemas import DEVICE_ID, Request
from gateway.people.passes import MAX_DEVICES, MAX_USES

GUEST_TOKEN = r"^[A-Za-z0-9_-]{20,64}$"  # noqa: S105 - a pattern/message, no secret
GuestTokenPath = Annotated[str, Path(pattern=GUEST_TOKEN)]
DeviceUid = Annotated[str, StringConstraints(pattern=DEVICE_ID)]


class PassIn(Request):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="whom it is for, as the owner sees it (e.g. «курьер»)"
    )
    devices: list[DeviceUid] = Field(
        min_length=1, max_length=MAX_DEVICES, description="ids of the gates and doors it opens"
    )
    valid_from: AwareDatetime
    valid_to: AwareDatetime
    max_uses: int = Field(ge=1, le=MAX_USES)


class PassDeviceOut(BaseModel):
    id: str
    home: str
    kind: str
    name: str


class PassOut(BaseModel):
    id: int
    name: str
    devices: list[PassDeviceOut]
    valid_from: datetime
    valid_to: datetime
    max_uses: int
    uses: int
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class PassCreated(PassOut):
    token: str = Field(description="shown only now; the link is /api/v1/guest/{token}")
    link: str


class PassList(BaseModel):
    items: list[PassOut]


class GuestView(BaseModel):
    """What a guest sees: which gates, the window and the uses left — nothing else."""

    name: str
    devices: list[PassDeviceOut]
    valid_from: datetime
    valid_to: datetime
    uses_left: int


class GuestOpened(BaseModel):
    command_id: str
    status: str
    result: str | None
    uses_left: int
