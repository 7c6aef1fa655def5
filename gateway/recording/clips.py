"""Marking footage as an event clip: an intercom call or an alarm, on every
camera of the home. A clip tied to a case is held until the case closes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from devices.kinds import DeviceKind
from gateway.db.media_models import Clip
from gateway.db.models import Device


def mark_clips(
    session: Session,
    home_id: int,
    kind: str,
    at: datetime,
    *,
    before: timedelta,
    after: timedelta,
    case_id: int | None = None,
) -> int:
    """One clip per live camera of the home; returns how many."""
    cameras = session.execute(
        select(Device.id, Device.contract_id).where(
            Device.home_id == home_id,
            Device.kind == DeviceKind.CAMERA.value,
            Device.deleted_at.is_(None),
        )
    ).all()
    for device_id, contract_id in cameras:
        session.add(
            Clip(
                device_id=device_id,
                contract_id=contract_id,
                kind=kind,
                start=at - before,
                end=at + after,
                case_id=case_id,
            )
        )
    return len(cameras)
