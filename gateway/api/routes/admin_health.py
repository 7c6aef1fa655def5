"""Admin: what ISP operators watch across all contracts — device health
(offline, silent, low battery), the recorders, and this process's metrics.

Its router is included by ``admin_alerts`` (same ``/admin`` prefix)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.api.admin_schemas import (
    CameraRecordingOut,
    DeviceHealthOut,
    DeviceHealthPage,
    DiskAlertOut,
    MetricOut,
    RecordersOut,
)
from gateway.api.deps import AdminDep, CtxDep, SessionDep
from gateway.api.pagination import Cursor, decode_cursor, page
from gateway.api.schemas import CONTRACT_NUMBER, errors
from gateway.db.models import utcnow
from gateway.health.devices import HealthState, counts, device_health
from gateway.health.metrics import summary
from gateway.health.recorders import recorder_status

router = APIRouter(tags=["admin"], responses=errors(401, 422))


@router.get("/device-health", response_model=DeviceHealthPage)
def list_device_health(
    *,
    session: SessionDep,
    _: AdminDep,
    state: HealthState | None = None,
    contract: Annotated[str | None, Query(pattern=CONTRACT_NUMBER)] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeviceHealthPage:
    """Live devices of every contract, newest first, with their health and
    states; ``state`` keeps only the offline, silent or low-battery ones."""
    now = utcnow()
    rows = device_health(
        session,
        now,
        state=state,
        contract=contract,
        below_id=decode_cursor(cursor) if cursor is not None else None,
        limit=limit + 1,
    )
    shown, next_cursor = page(rows, limit, lambda r: r.id)
    return DeviceHealthPage(
        items=[
            DeviceHealthOut(
                id=r.device,
                contract=r.contract,
                home=r.home,
                address=r.address,
                kind=r.kind,
                name=r.name,
                online=r.online,
                last_seen_at=r.last_seen_at,
                battery=r.battery,
                battery_low=r.battery_low,
                linkquality=r.linkquality,
                check_in_s=r.check_in_s,
                states=list(r.states),
            )
            for r in shown
        ],
        next_cursor=next_cursor,
        counts=counts(session, now),
    )


@router.get("/recorders", response_model=RecordersOut)
def recorders(*, session: SessionDep, ctx: CtxDep, _: AdminDep) -> RecordersOut:
    """Each camera's recording state and footage, the archive's free-space
    floor, its open disk alerts and this process's evictions."""
    status = recorder_status(session, ctx.settings, summary())
    return RecordersOut(
        cameras=[
            CameraRecordingOut(
                id=c.device,
                contract=c.contract,
                name=c.name,
                kind=c.kind,
                status=c.status,
                reason=c.reason,
                since=c.since,
                last_segment_end=c.last_segment_end,
                segments=c.segments,
                bytes=c.bytes,
            )
            for c in status.cameras
        ],
        floor_min_bytes=status.floor_min_bytes,
        floor_min_percent=status.floor_min_percent,
        retention_days=status.retention_days,
        disk_alerts=[
            DiskAlertOut(key=a.key, text=a.text, details=a.details, raised_at=a.raised_at)
            for a in status.disk_alerts
        ],
        free_bytes=status.free_bytes,
        evicted=status.evicted,
        expired=status.expired,
    )


@router.get("/metrics-summary", response_model=list[MetricOut])
def metrics_summary(_: AdminDep) -> list[MetricOut]:
    """The moydom samples of this process's ``/metrics`` (counters' totals,
    gauges, histograms' count and sum) as JSON, for the operator page."""
    return [
        MetricOut(name=s.name, labels=s.labels, value=s.value, type=s.type, help=s.help)
        for s in summary()
    ]
