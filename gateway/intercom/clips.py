"""A call's clip: its panel camera's footage from the ringing to
``call_clip_after_s`` after the call ended, marked as a ``clips`` row of the
call's contract so retention keeps it for the event days (a week by
default). Marked by the call timer once the call is over, whoever ended it;
the call's history gets a ``clip`` line with its link then."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.intercom_models import Call, CallState
from gateway.db.media_models import Clip
from gateway.db.models import Device
from gateway.intercom.calls import CLIP, history
from gateway.notices import Notice

CLIP_KIND = "call"


def mark_call_clips(session: Session, after: timedelta, now: datetime) -> Notice:
    """Mark the clips of the calls that ended and have none; the notice of
    their history lines."""
    changes = Notice()
    ended = session.scalars(
        select(Call)
        .join(Device, Device.id == Call.device_id)
        .where(
            Call.clip_end.is_(None),
            Call.state.not_in([CallState.RINGING, CallState.ANSWERED]),
            Call.ended_at.is_not(None),
            Device.rtsp_url.is_not(None),
        )
        .order_by(Call.id)
        .limit(500)
        .with_for_update(skip_locked=True)
    ).all()
    for call in ended:
        assert call.ended_at is not None
        call.clip_end = call.ended_at + after
        session.add(
            Clip(
                device_id=call.device_id,
                contract_id=call.contract_id,
                kind=CLIP_KIND,
                start=call.started_at,
                end=call.clip_end,
            )
        )
        changes.merge(history(session, call, CLIP, now))
    return changes
