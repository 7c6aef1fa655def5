"""Requests from people: arm, disarm, bypass, panic — from a keypad, the app or
the API. Each checks the code first (codes.py), so a duress code raises its
alarm whatever happens to the request, and a wrong one is always counted.
"""

from __future__ import annotations

from datetime import datetime

from alarms.codes import authorise
from alarms.contactid import CONTACT_ID
from alarms.effects import AlarmCancelled, AlarmRaised, BypassChanged, ForceArmed
from alarms.events import ArmRequest, DisarmRequest, Panic, SetBypass
from alarms.keypad import ALREADY_DISARMED, DISARM_ACTION, NOT_READY, keypad_mode
from alarms.model import ALARM_STATUSES, AlarmType, ArmMode, PanelStatus, ZoneType
from alarms.run import Run
from alarms.transitions import disarm, start_arming
from alarms.zones import sound_panic_siren


def arm(run: Run, request: ArmRequest, now: datetime) -> None:
    """Arm in a mode: exit delay, then armed.

    Asking for the mode the panel is already arming or armed in just gets the
    keypad its answer. Switching from one armed mode to another needs a valid
    code even when arming does not: it can take zones out of the watch. While
    pending or triggered, only a disarm is taken.
    """
    state = run.state
    switching = state.status is not PanelStatus.DISARMED and state.armed_mode is not request.mode
    required = run.config.arm_requires_code or switching
    verdict = authorise(run, request.code, request.source, now, required=required, reply=True)
    if verdict is None:
        return
    if state.status in ALARM_STATUSES:
        run.refuse("in_alarm", request.source, now, reply=NOT_READY)
        return
    if not switching and state.status is not PanelStatus.DISARMED:
        run.reply(request.source, keypad_mode(request.mode), now)
        return
    bypass = state.bypassed | (request.bypass & frozenset(run.config.zones))
    open_zones = not_ready_zones(run, request.mode, bypass)
    if open_zones and not (request.force and run.config.allow_force_arm):
        run.refuse("open_zones", request.source, now, reply=NOT_READY, zones=open_zones)
        return
    for zone in sorted(bypass - state.bypassed):
        run.emit(BypassChanged(zone=zone, bypassed=True, user=verdict.user, at=now))
    state.bypassed = bypass
    state.forced_open = frozenset(open_zones)
    if open_zones:
        names = [run.config.zones[z].name for z in open_zones]
        run.emit(ForceArmed(zones=open_zones, zone_names=names, user=verdict.user, at=now))
    run.reply(request.source, keypad_mode(request.mode), now)
    start_arming(run, request.mode, now, verdict.user, request.source)


def not_ready_zones(run: Run, mode: ArmMode, bypass: frozenset[str]) -> list[str]:
    """Zones watched in ``mode`` that are open now and may not be, sorted by id."""
    return sorted(
        zone.id
        for zone in run.config.zones.values()
        if zone.type is not ZoneType.ALWAYS
        and mode in zone.modes
        and not zone.allow_open
        and zone.id not in bypass
        and zone.id in run.state.open_zones
    )


def disarm_request(run: Run, request: DisarmRequest, now: datetime) -> None:
    """Disarm. During the entry delay or the alarm a valid code also cancels it
    (AlarmCancelled, 406) — a duress code does not: the case stays open."""
    verdict = authorise(run, request.code, request.source, now, required=True, reply=True)
    if verdict is None:
        return
    state = run.state
    if state.status is PanelStatus.DISARMED:
        # Still a way to silence a panic siren.
        run.silence_siren(now)
        run.refuse("already_disarmed", request.source, now, reply=ALREADY_DISARMED)
        return
    if state.status in ALARM_STATUSES and not verdict.duress:
        run.emit(
            AlarmCancelled(at=now, user=verdict.user, zone=state.alarm_zone, alarm=state.alarm)
        )
    run.reply(request.source, DISARM_ACTION, now)
    disarm(run, now, verdict.user, request.source)


def set_bypass(run: Run, request: SetBypass, now: datetime) -> None:
    """Take a zone out of service (until the next disarm) or put it back. Not
    during an alarm: a bypass must never turn into an alarm from a bypassed zone
    or silence the one that is running."""
    verdict = authorise(run, request.code, request.source, now, required=True, reply=False)
    if verdict is None:
        return
    state = run.state
    if request.zone not in run.config.zones:
        run.refuse("unknown_zone", request.source, now, reply=None, zones=[request.zone])
        return
    if state.status in ALARM_STATUSES:
        run.refuse("in_alarm", request.source, now, reply=None)
        return
    if (request.zone in state.bypassed) == request.bypassed:
        return
    if request.bypassed:
        state.bypassed = state.bypassed | {request.zone}
    else:
        state.bypassed = state.bypassed - {request.zone}
    run.emit(BypassChanged(zone=request.zone, bypassed=request.bypassed, user=verdict.user, at=now))


def panic(run: Run, request: Panic, now: datetime) -> None:
    """A panic button: a 24-hour alarm (120) in any status, audible unless the
    panel is configured for silent panic. It does not change the arm status."""
    alarm = AlarmType.PANIC
    silent = run.config.panic_silent
    run.emit(
        AlarmRaised(
            alarm=alarm,
            contact_id=CONTACT_ID[alarm],
            zone=request.source.device,
            at=now,
            silent=silent,
        )
    )
    if not silent:
        sound_panic_siren(run, now)
