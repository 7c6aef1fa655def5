"""Bodies of the security API: panels, codes, alerts, notification
preferences, dispatchers and cases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from alarms import AlarmType, ArmMode, ModeTiming, ZoneType
from gateway.api.schemas import Address, DeviceName, Password, Request, RtspUrl

Pin = Annotated[str, StringConstraints(pattern=r"^[0-9]{4,8}$")]
Login = Annotated[str, StringConstraints(pattern=r"^[a-z0-9._-]{3,64}$")]
Account = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{3,16}$")]
Category = Literal["alarm", "leak", "trouble", "security", "intercom", "gate"]
NotifyChannel = Literal["app", "email", "sms", "push"]
Resolution = Literal["false_alarm", "real", "cancelled_by_subscriber", "test"]


class ZoneSettings(Request):
    """An installer's override of one zone's defaults (see docs/alarms.md)."""

    device: Annotated[str, StringConstraints(pattern=r"^[0-9a-z-]{1,32}$")]

    type: ZoneType | None = None
    alarm: AlarmType | None = None
    modes: list[ArmMode] | None = None
    confirm_within_s: Annotated[float, Field(gt=0, le=600)] | None = None
    check_in_s: Annotated[float, Field(ge=60, le=7 * 86400)] | None = None


class SecuritySettings(Request):
    """``PUT /admin/homes/{home}/security``: sell (or change) the security service."""

    account: Account
    monitored: bool = True
    timing: dict[ArmMode, ModeTiming] | None = None
    lockout_after: Annotated[int, Field(ge=1, le=20)] | None = None
    lockout_s: Annotated[float, Field(ge=10, le=86400)] | None = None
    supervision_alarm_when_armed: bool | None = None
    allow_force_arm: bool | None = None
    arm_requires_code: bool | None = None
    zones: list[ZoneSettings] = Field(default_factory=list, max_length=256)


class ZoneOut(BaseModel):
    id: str
    name: str
    type: str
    open: bool
    bypassed: bool
    offline: bool


class PanelOut(BaseModel):
    home: str
    status: str
    armed_mode: str | None
    deadline: datetime | None
    monitored: bool
    zones: list[ZoneOut]


class ArmBody(Request):
    mode: ArmMode
    code: Pin | None = None
    force: bool = False
    bypass: list[Annotated[str, StringConstraints(pattern=r"^[0-9a-z-]{1,32}$")]] = Field(
        default_factory=list
    )


class DisarmBody(Request):
    code: Pin


class ActionOut(BaseModel):
    """What the panel did: its status after the request and the effects' kinds."""

    status: str
    refused: str | None = None
    open_zones: list[str] = Field(default_factory=list)


class AlarmUserCreate(Request):
    name: DeviceName
    code: Pin
    duress_code: Pin | None = None


class AlarmUserOut(BaseModel):
    id: int
    name: str
    has_duress_code: bool


class AlertOut(BaseModel):
    id: int
    home: str
    device: str | None
    category: str
    kind: str
    text: str
    body: dict[str, Any]
    at: datetime


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class NotificationSettings(Request):
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$")] | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{5,15}$")] | None = None
    channels: dict[Category, list[NotifyChannel]] = Field(default_factory=dict)


class DispatcherCreate(Request):
    login: Login
    name: Address
    password: Password


class DispatcherOut(BaseModel):
    id: int
    login: str
    name: str


class DispatcherLogin(Request):
    login: Login
    password: Annotated[str, StringConstraints(max_length=256)]


class CaseEntryOut(BaseModel):
    at: datetime
    kind: str
    text: str
    author: str | None


class CaseOut(BaseModel):
    id: int
    home: str
    address: str
    alarm: str
    contact_id: int
    zone: str | None
    zone_name: str | None
    silent: bool
    status: str
    opened_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    resolution: str | None
    resends: int
    timeline: list[CaseEntryOut]


class CasePage(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None


class TeamBody(Request):
    team: Address


class NoteBody(Request):
    text: Address


class CloseBody(Request):
    resolution: Resolution
    note: Address | None = None


class RetentionSettings(Request):
    continuous_days: Annotated[float, Field(gt=0, le=365)] | None = None
    motion_days: Annotated[float, Field(gt=0, le=365)] | None = None
    event_days: Annotated[float, Field(gt=0, le=365)] | None = None


Point = Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=2, max_length=2)]


class MotionSettings(Request):
    enabled: bool = True
    threshold: Annotated[int, Field(ge=1, le=255)] | None = None
    contour_area: Annotated[int, Field(ge=1, le=10000)] | None = None
    mask: list[Annotated[list[Point], Field(min_length=3, max_length=64)]] | None = Field(
        default=None, max_length=16, description="polygons to ignore, in 0–1 frame coordinates"
    )


class CameraSettings(Request):
    """A camera's recording settings (docs/archive.md); unset: the defaults."""

    retention: RetentionSettings | None = None
    motion: MotionSettings | None = None
    detect_url: RtspUrl | None = None
    priority: Annotated[int, Field(ge=-100, le=100)] | None = None
