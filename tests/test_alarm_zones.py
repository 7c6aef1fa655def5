"""What sensors do to the panel: pets (double knock), supervision, tamper,
24-hour zones and panic."""

from __future__ import annotations

import pytest

from alarms import (
    AlarmRaised,
    AlarmType,
    ArmMode,
    KeypadReply,
    PanelConfig,
    PanelStatus,
    Panic,
    SirenCommand,
    Tampered,
    TamperRestored,
    Tick,
    Trouble,
    TroubleRestored,
    Zone,
    ZoneOffline,
    ZoneOnline,
    ZoneRestored,
    ZoneSeen,
    ZoneTripped,
    ZoneType,
    next_deadline,
)
from tests.test_alarm_engine import (
    APP,
    CONFIG,
    KEYPAD,
    T0,
    TIMING,
    Panel,
    alarms_in,
    at,
    of,
)

# --- Pets: double knock ---

PET_ZONES = {
    "pir": Zone(id="pir", name="Living room", type=ZoneType.INSTANT, confirm_within_s=30),
    "pir2": Zone(id="pir2", name="Bedroom", type=ZoneType.INSTANT, confirm_within_s=30),
}


def armed_pet_panel() -> Panel:
    panel = Panel(config=PanelConfig(zones=PET_ZONES, timing=TIMING))
    panel.arm(ArmMode.AWAY, T0)
    panel.send(Tick(), at(60))
    return panel


def test_single_knock_is_ignored_second_within_window_triggers() -> None:
    panel = armed_pet_panel()
    assert panel.send(ZoneTripped(zone="pir"), at(100)) == []
    assert panel.send(ZoneTripped(zone="pir"), at(140)) == []  # 40 s later: a new first knock
    effects = panel.send(ZoneTripped(zone="pir"), at(165))
    assert panel.status() is PanelStatus.TRIGGERED
    assert of(effects, AlarmRaised)[0].zone == "pir"


def test_another_zone_confirms_the_knock() -> None:
    panel = armed_pet_panel()
    panel.send(ZoneTripped(zone="pir2"), at(100))
    panel.send(ZoneTripped(zone="pir"), at(110))
    assert panel.status() is PanelStatus.TRIGGERED
    assert panel.state.alarm_zone == "pir"


def test_trips_during_exit_delay_do_not_count_as_a_first_knock() -> None:
    panel = Panel(config=PanelConfig(zones=PET_ZONES, timing=TIMING))
    panel.arm(ArmMode.AWAY, T0)
    panel.send(ZoneTripped(zone="pir"), at(55))
    panel.send(Tick(), at(60))
    panel.send(ZoneTripped(zone="pir"), at(65))
    assert panel.status() is PanelStatus.ARMED_AWAY


# --- Supervision, tamper ---

SUPERVISED = {
    "pir": Zone(id="pir", name="Hall", type=ZoneType.INSTANT, check_in_s=600),
    "leak": Zone(id="leak", name="Bath", type=ZoneType.ALWAYS, alarm=AlarmType.LEAK),
}


@pytest.mark.parametrize("armed", [False, True])
def test_silent_zone_is_a_trouble_and_an_alarm_when_armed(armed: bool) -> None:
    panel = Panel(config=PanelConfig(zones=SUPERVISED, timing=TIMING))
    panel.send(ZoneSeen(zone="pir"), T0)
    if armed:
        panel.arm(ArmMode.AWAY, at(1))
        panel.send(Tick(), at(61))
    assert next_deadline(panel.config, panel.state) == at(600)
    effects = panel.send(Tick(), at(5000))  # fired late: at its own time
    # While armed the alarm is the station's report of it, not the trouble.
    trouble = Trouble(zone="pir", kind="silent", at=at(600), contact_id=381, reported=not armed)
    assert of(effects, Trouble) == [trouble]
    assert alarms_in(effects) == ([AlarmType.SUPERVISION] if armed else [])
    assert panel.state.troubled == {"pir"}
    effects = panel.send(ZoneSeen(zone="pir"), at(5001))
    assert of(effects, TroubleRestored) == [
        TroubleRestored(zone="pir", kind="silent", at=at(5001), contact_id=381, reported=not armed)
    ]
    assert next_deadline(panel.config, panel.state) == at(5601)


def test_offline_and_online() -> None:
    config = PanelConfig(zones=SUPERVISED, timing=TIMING, supervision_alarm_when_armed=False)
    panel = Panel(config=config)
    panel.arm(ArmMode.AWAY, T0)
    panel.send(Tick(), at(60))
    effects = panel.send(ZoneOffline(zone="pir"), at(70))
    assert of(effects, Trouble) == [Trouble(zone="pir", kind="offline", at=at(70), contact_id=381)]
    assert alarms_in(effects) == []  # configured off
    assert panel.send(ZoneOffline(zone="pir"), at(71)) == []
    assert next_deadline(config, panel.state) is None  # offline: no check-in clock
    effects = panel.send(ZoneOnline(zone="pir"), at(80))
    assert [e.kind for e in of(effects, TroubleRestored)] == ["offline"]


def test_tamper_raises_once_and_restores() -> None:
    panel = Panel()
    effects = panel.send(Tampered(zone="door"), T0)
    assert of(effects, Trouble) == [
        Trouble(zone="door", kind="tamper", at=T0, contact_id=383, reported=False)
    ]
    assert of(effects, AlarmRaised) == [
        AlarmRaised(alarm=AlarmType.TAMPER, contact_id=137, zone="door", at=T0)
    ]
    assert panel.send(Tampered(zone="door"), at(1)) == []
    effects = panel.send(TamperRestored(zone="door"), at(2))
    assert [e.kind for e in of(effects, TroubleRestored)] == ["tamper"]


# --- 24-hour zones and panic ---


def test_leak_while_disarmed_raises_leak_once_until_dry() -> None:
    panel = Panel()
    effects = panel.send(ZoneTripped(zone="leak"), T0)
    assert effects == [AlarmRaised(alarm=AlarmType.LEAK, contact_id=154, zone="leak", at=T0)]
    assert panel.status() is PanelStatus.DISARMED
    assert panel.send(ZoneTripped(zone="leak"), at(1)) == []
    panel.send(ZoneRestored(zone="leak"), at(2))
    assert alarms_in(panel.send(ZoneTripped(zone="leak"), at(3))) == [AlarmType.LEAK]


def test_panic_sounds_sirens_and_a_code_silences_them() -> None:
    panel = Panel()
    effects = panel.send(Panic(source=KEYPAD), T0)
    assert effects == [
        AlarmRaised(alarm=AlarmType.PANIC, contact_id=120, zone="keypad-hall", at=T0),
        SirenCommand(on=True, duration_s=180, at=T0),
    ]
    effects = panel.disarm(at(20))
    assert of(effects, SirenCommand) == [SirenCommand(on=False, at=at(20))]
    assert [r.mode for r in of(effects, KeypadReply)] == ["already_disarmed"]


def test_silent_panic() -> None:
    panel = Panel(config=CONFIG.model_copy(update={"panic_silent": True}))
    effects = panel.send(Panic(source=APP), T0)
    assert effects == [
        AlarmRaised(alarm=AlarmType.PANIC, contact_id=120, zone=None, at=T0, silent=True)
    ]


@pytest.mark.parametrize("why", ["not_watched_in_mode", "bypassed"])
def test_no_supervision_alarm_for_a_zone_that_is_not_watched(why: str) -> None:
    zones = {"pir": SUPERVISED["pir"].model_copy(update={"modes": frozenset({ArmMode.AWAY})})}
    panel = Panel(config=PanelConfig(zones=zones, timing=TIMING))
    panel.send(ZoneSeen(zone="pir"), T0)
    if why == "bypassed":
        panel.arm(ArmMode.AWAY, at(1), bypass=frozenset({"pir"}))
    else:
        panel.arm(ArmMode.NIGHT, at(1))
    panel.send(Tick(), at(100))
    effects = panel.send(ZoneOffline(zone="pir"), at(200))
    assert [t.kind for t in of(effects, Trouble)] == ["offline"]
    assert alarms_in(effects) == []
