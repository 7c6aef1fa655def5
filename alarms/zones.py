"""What a zone's sensor does to the panel: trips and restores, tamper, and
supervision (offline, or silent past its check-in interval).

Bypassed zones raise nothing at all — no intrusion, no 24-hour alarm, no tamper
or supervision alarm — though their troubles are still reported, so a
technician sees a broken sensor that someone bypassed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from alarms import reports
from alarms.contactid import CONTACT_ID, TROUBLE_CODES, TroubleKind
from alarms.effects import AlarmRaised, Trouble, TroubleRestored
from alarms.model import (
    ARMED_STATUSES,
    PROTECTING_STATUSES,
    SILENT_ALARMS,
    AlarmType,
    PanelStatus,
    Zone,
    ZoneType,
)
from alarms.run import Run
from alarms.state import PanelState
from alarms.transitions import abort_arming, start_entry_delay, trigger

_WATCHING = PROTECTING_STATUSES | {PanelStatus.ARMING}


def tripped(run: Run, zone_id: str, now: datetime) -> None:
    """The sensor became active: door open, motion, water."""
    zone = run.config.zones.get(zone_id)
    if zone is None:
        return
    state = run.state
    seen(run, zone, now)
    was_open = zone_id in state.open_zones
    state.open_zones = state.open_zones | {zone_id}
    if zone_id in state.bypassed:
        return
    if zone.type is ZoneType.ALWAYS:
        # A leak is one leak until it is dry: repeated reports raise nothing new.
        if not was_open:
            raise_zone_alarm(run, zone, now)
        return
    if (
        state.status not in _WATCHING
        or not run.watched(zone)
        or zone_id in state.forced_open
        or not _confirmed(run, zone, now)
    ):
        return
    _intrusion(run, zone, now)


def _confirmed(run: Run, zone: Zone, now: datetime) -> bool:
    """Double knock: record this trip, and tell whether it counts — always for a
    zone without ``confirm_within_s``, else only if a trip of this or another
    watched zone came within that window before it."""
    state = run.state
    earlier = [at for at in state.recent_trips.values() if at <= now]
    state.recent_trips = {**state.recent_trips, zone.id: now}
    if zone.confirm_within_s is None:
        return True
    window_start = now - timedelta(seconds=zone.confirm_within_s)
    return any(at >= window_start for at in earlier)


def _intrusion(run: Run, zone: Zone, now: datetime) -> None:
    status = run.state.status
    if zone.type is ZoneType.INSTANT:
        if status is PanelStatus.ARMING:
            # People are still leaving: an instant zone that is not allowed to be
            # open means the home is not ready (Alarmo's "arm failure").
            if not zone.allow_open:
                abort_arming(run, now, zone.id)
        elif status is not PanelStatus.TRIGGERED:
            trigger(run, now, zone.id, zone.alarm)
    elif status in ARMED_STATUSES:
        start_entry_delay(run, now, zone.id)


def restored(run: Run, zone_id: str, now: datetime) -> None:
    """The sensor is back to normal. A zone force-armed open is watched from now on."""
    zone = run.config.zones.get(zone_id)
    if zone is None:
        return
    seen(run, zone, now)
    run.state.open_zones = run.state.open_zones - {zone_id}
    run.state.forced_open = run.state.forced_open - {zone_id}
    reports.settle(run, zone_id, "open", now)


def raise_zone_alarm(run: Run, zone: Zone, at: datetime) -> None:
    """A 24-hour zone's alarm, whatever the status. Only a panic zone sounds the siren."""
    silent = zone.alarm in SILENT_ALARMS
    run.emit(
        AlarmRaised(
            alarm=zone.alarm,
            contact_id=CONTACT_ID[zone.alarm],
            zone=zone.id,
            at=at,
            silent=silent,
        )
    )
    reports.alarm_sent(run, zone.id, zone.alarm, at)
    if zone.alarm is AlarmType.PANIC and not run.config.panic_silent:
        sound_panic_siren(run, at)


def sound_panic_siren(run: Run, at: datetime) -> None:
    """Sirens for a panic, unless the panel is triggered and they already sound."""
    if run.state.status is not PanelStatus.TRIGGERED:
        run.sound_siren(at, run.config.panic_siren_s)


def tampered(run: Run, zone_id: str, now: datetime) -> None:
    """A tamper is a trouble and, unless bypassed, a 24-hour TAMPER alarm."""
    zone = run.config.zones.get(zone_id)
    if zone is None:
        return
    seen(run, zone, now)
    if zone_id in run.state.tampered:
        return
    run.state.tampered = run.state.tampered | {zone_id}
    alarm = None if zone_id in run.state.bypassed else AlarmType.TAMPER
    _trouble(run, zone, "tamper", now, reported=alarm is None)
    if alarm is not None:
        run.emit(AlarmRaised(alarm=alarm, contact_id=CONTACT_ID[alarm], zone=zone_id, at=now))
    reports.owed(run, zone_id, "tamper", alarm)


def tamper_restored(run: Run, zone_id: str, now: datetime) -> None:
    zone = run.config.zones.get(zone_id)
    if zone is None:
        return
    seen(run, zone, now)
    if zone_id in run.state.tampered:
        run.state.tampered = run.state.tampered - {zone_id}
        _restored(run, zone, "tamper", now, reported=reports.settle(run, zone_id, "tamper", now))


def seen(run: Run, zone: Zone, now: datetime) -> None:
    """The device spoke: its check-in clock restarts, a silent trouble ends."""
    state = run.state
    if zone.check_in_s is not None:
        previous = state.last_seen.get(zone.id)
        state.last_seen[zone.id] = now if previous is None else max(previous, now)
    if zone.id in state.silent:
        state.silent = state.silent - {zone.id}
        _supervision_back(run, zone, "silent", now)


def seen_id(run: Run, zone_id: str, now: datetime) -> None:
    zone = run.config.zones.get(zone_id)
    if zone is not None:
        seen(run, zone, now)


def went_offline(run: Run, zone_id: str, now: datetime) -> None:
    """The broker reports the device gone (its availability or last will)."""
    zone = run.config.zones.get(zone_id)
    if zone is None or zone_id in run.state.offline:
        return
    _supervision_lost(run, zone, "offline", now)


def came_online(run: Run, zone_id: str, now: datetime) -> None:
    zone = run.config.zones.get(zone_id)
    if zone is None:
        return
    seen(run, zone, now)
    if zone_id in run.state.offline:
        run.state.offline = run.state.offline - {zone_id}
        _supervision_back(run, zone, "offline", now)


def check_in_due(state: PanelState, zone: Zone) -> datetime | None:
    """When ``zone`` turns silent if nothing is heard from it (``None``: not
    supervised, already in trouble, or never heard of yet)."""
    last = state.last_seen.get(zone.id)
    if (
        zone.check_in_s is None
        or last is None
        or zone.id in state.silent
        or zone.id in state.offline
    ):
        return None
    return last + timedelta(seconds=zone.check_in_s)


def went_silent(run: Run, zone: Zone, at: datetime) -> None:
    """Nothing heard from the device for longer than its check-in interval."""
    _supervision_lost(run, zone, "silent", at)


def _supervision_lost(run: Run, zone: Zone, kind: TroubleKind, at: datetime) -> None:
    """The device went offline or silent: a trouble and, while armed, a blind
    sensor in the armed mode is an alarm of its own — reported once (381),
    by the alarm if there is one, and not again if it was already lost the
    other way."""
    state = run.state
    already = zone.id in state.offline | state.silent
    if kind == "offline":
        state.offline = state.offline | {zone.id}
    else:
        state.silent = state.silent | {zone.id}
    alarm = None
    if (
        not already
        and run.config.supervision_alarm_when_armed
        and state.status in PROTECTING_STATUSES
        and run.watched(zone)
    ):
        alarm = AlarmType.SUPERVISION
    _trouble(run, zone, kind, at, reported=not already and alarm is None)
    if alarm is not None:
        run.emit(AlarmRaised(alarm=alarm, contact_id=CONTACT_ID[alarm], zone=zone.id, at=at))
    if not already:
        reports.owed(run, zone.id, "supervision", alarm)


def _supervision_back(run: Run, zone: Zone, kind: TroubleKind, at: datetime) -> None:
    """One way of being lost is over (``kind`` already taken off the state);
    the station's restore goes out when the device is neither offline nor silent."""
    still = zone.id in run.state.offline | run.state.silent
    reported = not still and reports.settle(run, zone.id, "supervision", at)
    _restored(run, zone, kind, at, reported=reported)


def _trouble(run: Run, zone: Zone, kind: TroubleKind, at: datetime, *, reported: bool) -> None:
    code = TROUBLE_CODES[kind]
    run.emit(Trouble(zone=zone.id, kind=kind, at=at, contact_id=code, reported=reported))


def _restored(run: Run, zone: Zone, kind: TroubleKind, at: datetime, *, reported: bool) -> None:
    code = TROUBLE_CODES[kind]
    run.emit(TroubleRestored(zone=zone.id, kind=kind, at=at, contact_id=code, reported=reported))
