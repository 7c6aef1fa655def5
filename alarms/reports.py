"""Restores for the central station: every alarm or trouble it got about a
zone is followed by exactly one restore (Q=3, same code) once the zone is back
to normal — the door closed, the floor dry, the case closed, the device back —
so the station can close its own alarm. The state remembers what is owed
(``PanelState.reported``), so a restore owed before a restart still goes out.

A zone that is already back to normal when its alarm is raised (a door opened
and closed again before the entry delay ran out) gets its restore right after
the alarm, at the same time.
"""

from __future__ import annotations

from datetime import datetime

from alarms.contactid import CONTACT_ID, Condition
from alarms.effects import AlarmRestored
from alarms.model import AlarmType
from alarms.run import Run


def owed(run: Run, zone: str, condition: Condition, alarm: AlarmType | None) -> None:
    """The station was told of ``condition`` of ``zone``: by ``alarm``, or by
    the trouble itself when ``None``."""
    state = run.state
    state.reported = {**state.reported, zone: {**state.reported.get(zone, {}), condition: alarm}}


def is_owed(run: Run, zone: str, condition: Condition) -> bool:
    return condition in run.state.reported.get(zone, {})


def settle(run: Run, zone: str, condition: Condition, at: datetime) -> bool:
    """``condition`` of ``zone`` is over: emit the alarm's restore if an alarm
    reported it. Returns whether the caller's trouble restore is the station's
    restore: the trouble itself was reported, or nothing was recorded (a state
    stored before restores were tracked, when every trouble was reported)."""
    state = run.state
    conditions = dict(state.reported.get(zone, {}))
    if condition not in conditions:
        return True
    alarm = conditions.pop(condition)
    state.reported = {z: c for z, c in state.reported.items() if z != zone}
    if conditions:
        state.reported[zone] = conditions
    if alarm is None:
        return True
    run.emit(AlarmRestored(alarm=alarm, contact_id=CONTACT_ID[alarm], zone=zone, at=at))
    return False


def alarm_sent(run: Run, zone: str | None, alarm: AlarmType, at: datetime) -> None:
    """A trip alarm of ``zone`` went out: its restore is owed when the zone
    closes — now, if it already has."""
    if zone is None or zone not in run.config.zones:
        return
    owed(run, zone, "open", alarm)
    if zone not in run.state.open_zones:
        settle(run, zone, "open", at)
