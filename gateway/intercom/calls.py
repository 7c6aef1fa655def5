"""A call's life: started by the panel's ``call`` message (ingest), rung on
the members' streams, answered by the first member who asks (one UPDATE that
only a ringing call matches, so two answers cannot both win), declined, hung
up by a member or the panel, or missed — by the panel giving up or by the
call timer after ``call_ring_timeout_s``. A missed call is an ``intercom``
alert, told by the contract's channels (gateway.security.alerts).

Every change also writes one ``call`` event into the called home's history
(:func:`history`: what changed, the outcome, who answered, and the clip once
it is marked), which the events list pages and the live stream shows like any
other — the history of a flat's calls lives in its own home, also for a
shared entrance's panel, whose owner's history gets none of it. Every change
returns a :class:`Notice` with the call's id and contract (and the history
event's), which the caller announces with its commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.commands.results import alert_home
from gateway.db.intercom_models import Call, CallState
from gateway.db.models import Event, Home
from gateway.errors import Conflict, NotFound
from gateway.intercom.buildings import route
from gateway.notices import Notice
from gateway.security.alerts import AlertWriter

log = logging.getLogger(__name__)

MEMBER = "member"
PANEL = "panel"
TIMEOUT = "timeout"
MISSED_TEXT = "Пропущенный вызов домофона"
RING_TEXT = "Вызов домофона"
LIVE = (CallState.RINGING, CallState.ANSWERED)
HISTORY_EVENT = "call"
"""The event class of a call's history lines."""
RANG = "rang"
CLIP = "clip"
CLIP_URL = "/api/v1/calls/{}/clip.mp4"
"""Where a call's clip is served (the API's ``GET /calls/{id}/clip.mp4``)."""

EventRow = tuple[int, int, int, str, dict[str, Any], datetime]
"""As ingest writes an event: contract, home, device, class, body, received."""


def record(
    session: Session, events: Sequence[EventRow], transports: frozenset[str], now: datetime
) -> Notice:
    """Ingest's hook: the calls and hang-ups among a batch's stored events."""
    changes = Notice()
    for _contract, home_id, device_id, event, body, at in events:
        if event != "intercom_call":
            continue
        if body.get("event") == "call":
            changes.merge(_start(session, device_id, home_id, body, transports=transports, at=at))
            changes.calls += _started(session, device_id, str(body["call_id"]))
        else:
            changes.merge(_ended_by_panel(session, device_id, body, transports, at))
    return changes


def _start(
    session: Session,
    device_id: int,
    own_home_id: int,
    body: dict[str, Any],
    *,
    transports: frozenset[str],
    at: datetime,
) -> Notice:
    """A new call rings the home's members on their streams (the app); the
    contract's other channels for ``intercom`` (e-mail, SMS) are told now."""
    call_id, flat = str(body["call_id"]), str(body["apartment"])
    home_id = route(session, device_id, own_home_id, flat)
    if home_id is None:
        log.warning("intercom call %s to flat %r: no home is provisioned for it", call_id, flat)
        return Notice()
    known = session.scalar(
        select(Call.id).where(
            Call.device_id == device_id, Call.call_id == call_id, Call.home_id == home_id
        )
    )
    if known is not None:
        return Notice()  # the panel sent the same call again
    contract_id = session.get_one(Home, home_id).contract_id
    call = Call(
        contract_id=contract_id,
        home_id=home_id,
        device_id=device_id,
        call_id=call_id,
        flat=flat,
        state=CallState.RINGING,
        started_at=at,
    )
    session.add(call)
    session.flush()
    changes = history(session, call, RANG, at)
    told = AlertWriter(session, alert_home(session, home_id), changes, at, transports)
    told.tell(f"call-{call.id}-ring", "intercom", f"{RING_TEXT}, кв. {flat}", at)
    return changes


def history(session: Session, call: Call, change: str, at: datetime) -> Notice:
    """Write the call's history line as it is after ``change`` (``rang``, a
    new state, or ``clip``); the notice of the line."""
    body: dict[str, Any] = {
        "call": call.id,
        "change": change,
        "state": call.state,
        "flat": call.flat,
        "started_at": call.started_at.isoformat(),
    }
    if call.answered_at is not None:
        body["answered_at"] = call.answered_at.isoformat()
        body["answered_by"] = call.answered_by
    if call.ended_at is not None:
        body["ended_at"] = call.ended_at.isoformat()
        body["ended_by"] = call.ended_by
    if call.clip_end is not None:
        body["clip"] = {
            "url": CLIP_URL.format(call.id),
            "start": call.started_at.isoformat(),
            "end": call.clip_end.isoformat(),
        }
    event = Event(
        contract_id=call.contract_id,
        home_id=call.home_id,
        device_id=call.device_id,
        event=HISTORY_EVENT,
        body=body,
        received_at=at,
    )
    session.add(event)
    session.flush()
    return Notice(events=[(event.id, call.contract_id)])


def _started(session: Session, device_id: int, call_id: str) -> list[tuple[int, int]]:
    rows = session.execute(
        select(Call.id, Call.contract_id).where(
            Call.device_id == device_id,
            Call.call_id == call_id,
            Call.state == CallState.RINGING,
        )
    )
    return [(i, c) for i, c in rows]


def _ended_by_panel(
    session: Session,
    device_id: int,
    body: dict[str, Any],
    transports: frozenset[str],
    at: datetime,
) -> Notice:
    """The panel hung up: an answered call ends; a ringing one was declined
    at the door or missed (the visitor gave up)."""
    call_id, outcome = str(body["call_id"]), str(body["outcome"])
    changes = Notice()
    calls = session.scalars(
        select(Call).where(
            Call.device_id == device_id, Call.call_id == call_id, Call.state.in_(LIVE)
        )
    ).all()
    for call in calls:
        if call.state == CallState.ANSWERED:
            _finish(call, CallState.ENDED, PANEL, at)
        elif outcome == "declined":
            _finish(call, CallState.DECLINED, PANEL, at)
            _ring_over(session, call, changes, at)
        else:
            _finish(call, CallState.MISSED, PANEL, at)
            _missed_alert(session, call, changes, transports, at)
        changes.merge(history(session, call, call.state, at))
        changes.calls.append((call.id, call.contract_id))
    return changes


def _finish(call: Call, state: str, by: str, at: datetime) -> None:
    call.state = state
    call.ended_at = at
    call.ended_by = by


def _ring_over(session: Session, call: Call, changes: Notice, now: datetime) -> None:
    """The call stopped ringing (answered or declined): its ringing push is
    replaced where it was sent. A missed call needs none: its alert's push
    replaces the ring."""
    view = alert_home(session, call.home_id)
    AlertWriter(session, view, changes, now, frozenset()).call_over(call.id, call.state, now)


def _missed_alert(
    session: Session, call: Call, changes: Notice, transports: frozenset[str], now: datetime
) -> None:
    view = alert_home(session, call.home_id)
    body = {"call": call.id, "flat": call.flat, "started_at": call.started_at.isoformat()}
    AlertWriter(session, view, changes, now, transports).add(
        "intercom", "missed_call", MISSED_TEXT, body, at=now, device_id=call.device_id
    )


def owned(session: Session, contract_id: int, call_id: int) -> Call:
    """The contract's call; another contract's is a plain 404."""
    call = session.get(Call, call_id)
    if call is None or call.contract_id != contract_id:
        raise NotFound(f"no call {call_id}")
    return call


def answer(
    session: Session, call: Call, member: str, ring_timeout: timedelta, now: datetime
) -> Notice:
    """The first member to answer gets the call; anyone after gets a 409."""
    if call.state == CallState.RINGING and now >= call.started_at + ring_timeout:
        raise Conflict(f"call {call.id} was not answered in time")
    taken = session.execute(
        update(Call)
        .where(Call.id == call.id, Call.state == CallState.RINGING)
        .values(state=CallState.ANSWERED, answered_at=now, answered_by=member)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(call)
        if call.state == CallState.ANSWERED:
            raise Conflict(f"call {call.id} was answered by someone else (отвечено)")
        raise Conflict(f"call {call.id} is {call.state}")
    session.refresh(call)
    changes = history(session, call, call.state, now).merge(
        Notice(calls=[(call.id, call.contract_id)])
    )
    _ring_over(session, call, changes, now)
    return changes


def decline(session: Session, call: Call, now: datetime) -> Notice:
    """A member refuses a ringing call: it stops ringing for everyone."""
    return _member_ends(session, call, CallState.RINGING, CallState.DECLINED, now)


def hang_up(session: Session, call: Call, now: datetime) -> Notice:
    """The member who answered ends the call."""
    return _member_ends(session, call, CallState.ANSWERED, CallState.ENDED, now)


def _member_ends(session: Session, call: Call, from_: str, to: str, now: datetime) -> Notice:
    done = session.execute(
        update(Call)
        .where(Call.id == call.id, Call.state == from_)
        .values(state=to, ended_at=now, ended_by=MEMBER)
        .execution_options(synchronize_session=False)
    )
    session.refresh(call)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"call {call.id} is {call.state}, not {from_}")
    changes = history(session, call, to, now).merge(Notice(calls=[(call.id, call.contract_id)]))
    if from_ == CallState.RINGING:
        _ring_over(session, call, changes, now)
    return changes


def miss_due(
    session: Session, ring_timeout: timedelta, transports: frozenset[str], now: datetime
) -> tuple[Notice, datetime | None]:
    """Calls still ringing ``ring_timeout`` after they started become missed,
    each with its alert; returns the changes and when the next one is due."""
    changes = Notice()
    due = session.scalars(
        select(Call)
        .where(Call.state == CallState.RINGING, Call.started_at <= now - ring_timeout)
        .order_by(Call.id)
        .limit(500)
        .with_for_update(skip_locked=True)
    ).all()
    for call in due:
        _finish(call, CallState.MISSED, TIMEOUT, now)
        _missed_alert(session, call, changes, transports, now)
        changes.merge(history(session, call, CallState.MISSED, now))
        changes.calls.append((call.id, call.contract_id))
    session.flush()
    oldest = session.scalar(
        select(Call.started_at)
        .where(Call.state == CallState.RINGING)
        .order_by(Call.started_at)
        .limit(1)
    )
    return changes, oldest + ring_timeout if oldest is not None else None
