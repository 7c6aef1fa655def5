"""The recorders as operators see them: each camera's recording state, its
footage in the index, and the archive's free-space floor and evictions.

Read from what the recorder already writes — the camera's availability
(``device_health`` and its last ``availability`` event, whose reason tells a
camera paused for a full disk from one that dropped), the segment index, and
the archive's open disk alert — so it holds for recorders on other machines
too. Eviction counts and free space come from this process's metrics and
are only known where the recorder runs in the same process (else ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devices.kinds import DeviceKind
from gateway.db.media_models import Recording
from gateway.db.models import Contract, Device, DeviceHealth, Event, OperatorAlert
from gateway.health.metrics import Sample, value
from gateway.recording.disk import ALERT_PREFIX
from gateway.recording.role import PAUSED_REASON
from gateway.settings import Settings


@dataclass(frozen=True)
class CameraRecording:
    device: str
    contract: str
    name: str
    kind: str
    status: str
    """``recording``, ``paused`` (the disk is full), ``offline`` or ``unknown``
    (the recorder has not reported this camera yet)."""
    reason: str | None
    since: datetime | None
    last_segment_end: datetime | None
    segments: int
    bytes: int


@dataclass(frozen=True)
class DiskAlert:
    key: str
    text: str
    details: dict[str, Any]
    raised_at: datetime


@dataclass(frozen=True)
class RecorderStatus:
    cameras: list[CameraRecording]
    floor_min_bytes: int
    floor_min_percent: float
    retention_days: float
    disk_alerts: list[DiskAlert]
    free_bytes: float | None
    evicted: float | None
    expired: float | None


def _status(health: DeviceHealth | None, reason: str | None) -> str:
    if health is None or health.online is None:
        return "unknown"
    if health.online:
        return "recording"
    return "paused" if reason == PAUSED_REASON else "offline"


def recorder_status(session: Session, settings: Settings, metrics: list[Sample]) -> RecorderStatus:
    cameras = session.execute(
        select(Device, Contract.number, DeviceHealth)
        .join(Contract, Contract.id == Device.contract_id)
        .outerjoin(DeviceHealth, DeviceHealth.device_id == Device.id)
        .where(
            Device.kind.in_([DeviceKind.CAMERA.value, DeviceKind.INTERCOM.value]),
            Device.deleted_at.is_(None),
            Device.rtsp_url.is_not(None),
        )
        .order_by(Device.id)
    ).all()
    ids = [d.id for d, _, _ in cameras]
    footage = {
        device_id: (end, count, size)
        for device_id, end, count, size in session.execute(
            select(
                Recording.device_id,
                func.max(Recording.end),
                func.count(),
                func.coalesce(func.sum(Recording.bytes), 0),
            )
            .where(Recording.device_id.in_(ids))
            .group_by(Recording.device_id)
        )
    }
    last_status = select(func.max(Event.id)).where(
        Event.device_id.in_(ids), Event.event == "availability"
    )
    reasons = {
        e.device_id: e.body.get("reason")
        for e in session.scalars(
            select(Event).where(Event.id.in_(last_status.group_by(Event.device_id)))
        )
    }
    rows = []
    for device, number, health in cameras:
        end, count, size = footage.get(device.id, (None, 0, 0))
        reason = reasons.get(device.id)
        rows.append(
            CameraRecording(
                device=device.uid,
                contract=number,
                name=device.name,
                kind=device.kind,
                status=_status(health, reason),
                reason=reason,
                since=health.last_seen_at if health else None,
                last_segment_end=end,
                segments=int(count),
                bytes=int(size),
            )
        )
    alerts = session.scalars(
        select(OperatorAlert)
        .where(OperatorAlert.key.startswith(ALERT_PREFIX), OperatorAlert.cleared_at.is_(None))
        .order_by(OperatorAlert.id)
    )
    # Each sweep counts both reasons, even by 0: no such sample, no sweep in
    # this process, and its free-space gauge would be a meaningless 0.
    evicted = value(metrics, "moydom_archive_deleted_total", why="evicted")
    return RecorderStatus(
        cameras=rows,
        floor_min_bytes=settings.archive_min_free_bytes,
        floor_min_percent=settings.archive_min_free_percent,
        retention_days=settings.retention_days,
        disk_alerts=[DiskAlert(a.key, a.text, a.details, a.raised_at) for a in alerts],
        free_bytes=value(metrics, "moydom_archive_free_bytes") if evicted is not None else None,
        evicted=evicted,
        expired=value(metrics, "moydom_archive_deleted_total", why="expired"),
    )
