"""The panel as a pure function of (configuration, state, event, time).

No clock is read and nothing is written: the caller passes ``now``, stores the
state it gets back, carries out the effects, and calls again at
:func:`next_deadline`. That is what makes a deadline survive a crash: the
state holds it as an absolute time, and the first step after a restart fires
every deadline that passed meanwhile — in time order, each at its original
time — before it looks at the event that woke it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from alarms import zones
from alarms.codes import end_lockout
from alarms.effects import Effect
from alarms.events import (
    ArmRequest,
    DisarmRequest,
    Event,
    Panic,
    SetBypass,
    Tampered,
    TamperRestored,
    Tick,
    ZoneOffline,
    ZoneOnline,
    ZoneRestored,
    ZoneSeen,
    ZoneTripped,
)
from alarms.model import AlarmType, PanelConfig, PanelStatus
from alarms.requests import arm, disarm_request, panic, set_bypass
from alarms.run import Run
from alarms.state import PanelState
from alarms.transitions import end_trigger, finish_arming, trigger

_STATUS_ACTIONS: dict[PanelStatus, Callable[[Run, datetime], None]] = {
    PanelStatus.ARMING: finish_arming,
    PanelStatus.PENDING: lambda run, at: trigger(
        run, at, run.state.alarm_zone, run.state.alarm or AlarmType.ENTRY_EXIT
    ),
    PanelStatus.TRIGGERED: end_trigger,
}


@dataclass(frozen=True)
class _Timer:
    at: datetime
    order: tuple[int, str]
    """Ties at the same instant: the status deadline, then the lockout, then
    supervision by zone id — so a replay after a restart is deterministic."""
    fire: Callable[[Run, datetime], None]


def _timers(config: PanelConfig, state: PanelState) -> list[_Timer]:
    timers: list[_Timer] = []
    action = _STATUS_ACTIONS.get(state.status)
    if action is not None and state.deadline is not None:
        timers.append(_Timer(state.deadline, (0, ""), action))
    if state.locked_until is not None:
        timers.append(_Timer(state.locked_until, (1, ""), lambda run, _at: end_lockout(run)))
    for zone in config.zones.values():
        due = zones.check_in_due(state, zone)
        if due is not None:
            timers.append(_Timer(due, (2, zone.id), _silent(zone.id)))
    return timers


def _silent(zone_id: str) -> Callable[[Run, datetime], None]:
    return lambda run, at: zones.went_silent(run, run.config.zones[zone_id], at)


def next_deadline(config: PanelConfig, state: PanelState) -> datetime | None:
    """The earliest time at which a :class:`Tick` would change something: the end
    of the exit delay, the entry delay or the trigger time, the end of a code
    lockout, a supervised zone's check-in. ``None``: only an event can."""
    return min((timer.at for timer in _timers(config, state)), default=None)


def step(
    config: PanelConfig, state: PanelState, event: Event, now: datetime
) -> tuple[PanelState, list[Effect]]:
    """Fire every deadline due at ``now``, then apply ``event``; return the new
    state and what happened, in order. The inputs are left as they were.

    ``now`` must carry a time zone; it should not go backwards between steps
    (the engine copes, but a deadline cannot fire before it is due).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (UTC)")
    now = now.astimezone(UTC)
    run = Run(config, state.model_copy(deep=True))
    _tidy(run, now)
    while True:
        due = min(_timers(config, run.state), key=lambda t: (t.at, t.order), default=None)
        if due is None or due.at > now:
            break
        due.fire(run, due.at)
    _apply(run, event, now)
    return run.state, run.effects


def _apply(run: Run, event: Event, now: datetime) -> None:
    match event:
        case ZoneTripped():
            zones.tripped(run, event.zone, now)
        case ZoneRestored():
            zones.restored(run, event.zone, now)
        case Tampered():
            zones.tampered(run, event.zone, now)
        case TamperRestored():
            zones.tamper_restored(run, event.zone, now)
        case ZoneSeen():
            zones.seen_id(run, event.zone, now)
        case ZoneOffline():
            zones.went_offline(run, event.zone, now)
        case ZoneOnline():
            zones.came_online(run, event.zone, now)
        case Panic():
            panic(run, event, now)
        case ArmRequest():
            arm(run, event, now)
        case DisarmRequest():
            disarm_request(run, event, now)
        case SetBypass():
            set_bypass(run, event, now)
        case Tick():
            pass


def _tidy(run: Run, now: datetime) -> None:
    """Fit the state to the configuration it is stepped with, which may have
    changed since: forget zones that were removed, start the check-in clock of
    newly supervised zones, drop trips too old for any double knock."""
    state, known = run.state, frozenset(run.config.zones)
    state.open_zones &= known
    state.bypassed &= known
    state.forced_open &= known
    state.offline &= known
    state.silent &= known
    state.tampered &= known
    state.reported = {zone: owed for zone, owed in state.reported.items() if zone in known}
    state.last_seen = {
        zone.id: state.last_seen.get(zone.id, now)
        for zone in run.config.zones.values()
        if zone.check_in_s is not None
    }
    windows = [z.confirm_within_s for z in run.config.zones.values() if z.confirm_within_s]
    oldest = now - timedelta(seconds=max(windows, default=0))
    state.recent_trips = {
        zone: at for zone, at in state.recent_trips.items() if zone in known and at >= oldest
    }
