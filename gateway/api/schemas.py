"""Request and response bodies. Requests forbid unknown fields, so a typo in a
billing integration is a 422, not a silently ignored field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from devices.kinds import DeviceKind

ContractNumber = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{1,32}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
DeviceName = Annotated[
    str,
    StringConstraints(pattern=r"^[^/#+\x00-\x1f]{1,64}$", strip_whitespace=True, min_length=1),
]
RtspUrl = Annotated[str, StringConstraints(pattern=r"^rtsps?://[^\s]+$", max_length=2000)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContractCreate(Request):
    number: ContractNumber
    password: Password
    address: Address


class HomeCreate(Request):
    address: Address


class HomeOut(BaseModel):
    id: str
    address: str


class ContractOut(BaseModel):
    number: str
    status: str
    created_at: datetime
    homes: list[HomeOut]


class DeviceCreate(Request):
    kind: DeviceKind
    name: DeviceName
    home: str | None = Field(
        default=None, description="home id; the contract's first home if omitted"
    )
    rtsp_url: RtspUrl | None = None

    @model_validator(mode="after")
    def _camera_needs_rtsp(self) -> DeviceCreate:
        if self.kind is DeviceKind.CAMERA and self.rtsp_url is None:
            raise ValueError("a camera needs rtsp_url")
        if self.kind is not DeviceKind.CAMERA and self.rtsp_url is not None:
            raise ValueError("only a camera takes rtsp_url")
        return self


class TopicsOut(BaseModel):
    base_topic: str = Field(description="Zigbee2MQTT base_topic for this device's home")
    state: str
    availability: str
    set: str
    publishes: list[str]
    listens: list[str]


class DeviceOut(BaseModel):
    id: str
    kind: str
    name: str
    home: str
    username: str
    payload_format: Literal["zigbee2mqtt", "native"]
    topics: TopicsOut
    rtsp_url: str | None
    created_at: datetime


class DeviceCreated(DeviceOut):
    password: str = Field(description="shown once; the broker keeps only a hash")


class SubscriberDevice(BaseModel):
    id: str
    kind: str
    name: str
    home: str
    created_at: datetime


class LoginRequest(Request):
    contract: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class MeOut(BaseModel):
    contract: str
    role: str
    homes: list[HomeOut]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "down"]
    broker: Literal["ok", "down"]
