"""The moves between statuses, each with everything that goes with it: the
deadline set or cleared, the reports to the central station, the siren and the
keypad displays. Rules decide *when* to move; these decide *what moving means*,
in one place, whether a request or a deadline caused it.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from alarms import contactid, reports
from alarms.contactid import CONTACT_ID
from alarms.effects import AlarmRaised, BypassChanged, OpenClose, SirenCommand
from alarms.model import AlarmType, ArmMode, PanelStatus, Source
from alarms.run import Run


def _open_close_code(source: Source | None) -> int:
    if source is not None and source.remote:
        return contactid.REMOTE_ARM_DISARM
    return contactid.OPEN_CLOSE_BY_USER


def start_arming(
    run: Run, mode: ArmMode, at: datetime, user: str | None, source: Source | None
) -> None:
    """Begin the exit delay of ``mode`` (or arm at once when it is zero)."""
    state = run.state
    state.armed_mode = mode
    state.armed_by = user
    state.armed_source = source
    state.alarm_zone = None
    state.alarm = None
    state.recent_trips = {}
    exit_delay = run.timing.exit_delay_s
    if exit_delay > 0:
        state.deadline = at + timedelta(seconds=exit_delay)
        run.set_status(PanelStatus.ARMING, at, user, source)
    else:
        finish_arming(run, at, source)


def finish_arming(run: Run, at: datetime, source: Source | None = None) -> None:
    """The exit delay is over: armed. The closing report goes out now, not at the
    request, so that an arming cancelled during the exit delay reports nothing.
    ``source`` is the request's when there was no exit delay, else ``None``."""
    state = run.state
    state.deadline = None
    # Trips while people were leaving must not count towards a double knock.
    state.recent_trips = {}
    run.set_status(run.mode.status, at, state.armed_by, source)
    run.emit(
        OpenClose(
            opened=False,
            user=state.armed_by,
            mode=run.mode,
            at=at,
            contact_id=_open_close_code(state.armed_source),
        )
    )


def start_entry_delay(run: Run, at: datetime, zone: str) -> None:
    """An entry zone tripped while armed: time to type a code."""
    entry_delay = run.timing.entry_delay_s
    if entry_delay <= 0:
        trigger(run, at, zone, AlarmType.ENTRY_EXIT)
        return
    state = run.state
    state.deadline = at + timedelta(seconds=entry_delay)
    state.alarm_zone = zone
    state.alarm = AlarmType.ENTRY_EXIT
    run.set_status(PanelStatus.PENDING, at)


def trigger(run: Run, at: datetime, zone: str | None, alarm: AlarmType) -> None:
    """The alarm: a case for dispatch, sirens for the trigger time."""
    state = run.state
    seconds = run.timing.trigger_time_s
    state.deadline = at + timedelta(seconds=seconds)
    state.alarm_zone = zone
    state.alarm = alarm
    state.siren_until = state.deadline
    run.set_status(PanelStatus.TRIGGERED, at)
    run.emit(AlarmRaised(alarm=alarm, contact_id=CONTACT_ID[alarm], zone=zone, at=at))
    reports.alarm_sent(run, zone, alarm, at)
    run.emit(SirenCommand(on=True, duration_s=math.ceil(seconds), at=at))


def end_trigger(run: Run, at: datetime) -> None:
    """The trigger time is over: sirens off, back to the armed status. The zone
    that tripped stays open until it restores; only a new trip alarms again."""
    state = run.state
    state.deadline = None
    state.alarm_zone = None
    state.alarm = None
    state.siren_until = None
    run.set_status(run.mode.status, at)
    run.emit(SirenCommand(on=False, at=at))


def disarm(run: Run, at: datetime, user: str | None, source: Source) -> None:
    """Disarmed by a user: the opening report if a closing was sent, sirens off,
    bypasses and force-armed zones back in service."""
    state = run.state
    old, mode = state.status, state.armed_mode
    for zone in sorted(state.bypassed):
        run.emit(BypassChanged(zone=zone, bypassed=False, user=user, at=at))
    _clear_arming(run)
    state.bypassed = frozenset()
    run.set_status(PanelStatus.DISARMED, at, user, source)
    if old is not PanelStatus.ARMING:
        run.emit(
            OpenClose(opened=True, user=user, mode=mode, at=at, contact_id=_open_close_code(source))
        )
    run.silence_siren(at)


def abort_arming(run: Run, at: datetime, zone: str) -> None:
    """An instant zone tripped during the exit delay: not ready, back to disarmed
    (as Alarmo does). Nothing was reported yet, so nothing is reported now; the
    bypasses asked for stay, for the next try."""
    _clear_arming(run)
    run.set_status(PanelStatus.DISARMED, at)
    run.refuse("not_ready", None, at, reply=None, zones=[zone])


def _clear_arming(run: Run) -> None:
    state = run.state
    state.armed_mode = None
    state.armed_by = None
    state.armed_source = None
    state.deadline = None
    state.alarm_zone = None
    state.alarm = None
    state.forced_open = frozenset()
    state.recent_trips = {}
