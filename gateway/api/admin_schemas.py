"""Bodies of the operator's admin routes: device health across contracts,
the recorders, and the metrics summary (``gateway.api.routes.admin_health``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.health.devices import HealthState


class DeviceHealthOut(BaseModel):
    id: str
    contract: str
    home: str
    address: str
    kind: str
    name: str
    online: bool | None = Field(description="the last availability; null if never reported")
    last_seen_at: datetime | None
    battery: int | None
    battery_low: bool | None
    linkquality: int | None
    check_in_s: int | None = Field(
        description="silent after this long without a message; null: never silent"
    )
    states: list[HealthState]


class DeviceHealthPage(BaseModel):
    items: list[DeviceHealthOut]
    next_cursor: str | None
    counts: dict[str, int] = Field(description="all live devices: total and per state")


class CameraRecordingOut(BaseModel):
    id: str
    contract: str
    name: str
    kind: str
    status: str = Field(description="recording, paused (disk full), offline or unknown")
    reason: str | None
    since: datetime | None
    last_segment_end: datetime | None
    segments: int
    bytes: int


class DiskAlertOut(BaseModel):
    key: str
    text: str
    details: dict[str, Any]
    raised_at: datetime


class RecordersOut(BaseModel):
    cameras: list[CameraRecordingOut]
    floor_min_bytes: int
    floor_min_percent: float
    retention_days: float
    disk_alerts: list[DiskAlertOut]
    free_bytes: float | None = Field(description="null unless a recorder runs in this process")
    evicted: float | None = Field(description="segments evicted below the floor since start")
    expired: float | None = Field(description="segments past retention deleted since start")


class MetricOut(BaseModel):
    name: str
    labels: dict[str, str]
    value: float
    type: str
    help: str


class CheckInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check_in_s: Annotated[int, Field(ge=60, le=7 * 86400)] | None = Field(
        description="silent after this many seconds without a message; null: the kind's default"
    )


class CheckInOut(BaseModel):
    check_in_s: int | None = Field(description="in effect; null: this device is never silent")
    kind_default_s: int | None
