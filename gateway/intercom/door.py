"""A panel's door, opened from a call: «Открыть» while the call rings or is
answered. The command goes the command path (gateway.commands: deadline,
never late, never twice), published to the panel, and is recorded in the
called home — for a shared entrance, the flat's home and contract, not the
panel owner's — with the caller, so it is in that home's history.

This is the only way a flat's residents open a shared entrance's door: the
panel is not their device, so the command route refuses it (404); here a
call that is over, or not ringing any more, is a 409, and another
contract's call the same 404 as everywhere (gateway.intercom.calls.owned)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.commands import records
from gateway.commands.records import Outgoing
from gateway.db.intercom_models import Call, CallState
from gateway.db.models import Device, Home
from gateway.errors import Conflict
from gateway.intercom.calls import LIVE
from gateway.notices import Notice


def open_for_call(
    session: Session,
    call: Call,
    caller: str,
    ttl: timedelta,
    ring_timeout: timedelta,
    *,
    root: str,
    now: datetime,
) -> tuple[Outgoing, Notice]:
    """Record an ``open`` command to the call's panel, in the call's home.
    The call's row is locked first: a hang-up cannot slip in between."""
    session.refresh(call, with_for_update=True)
    if call.state not in LIVE:
        raise Conflict(f"call {call.id} is {call.state}: its door opens only during the call")
    if call.state == CallState.RINGING and now >= call.started_at + ring_timeout:
        raise Conflict(f"call {call.id} was not answered in time")
    panel = session.get_one(Device, call.device_id)
    if panel.deleted_at is not None:
        raise Conflict(f"call {call.id}'s panel was removed")
    home = session.get_one(Home, call.home_id)
    return records.create(session, panel, caller, ttl, root=root, now=now, home=home, call=call.id)
