"""What the central station is told, event by event, as the engine decides it
(issue 11): every alarm is followed by its restore once its zone is normal
again, one occurrence is one report, and duress and wrong codes name the user,
not the keypad.

``station`` reads the effects as the gateway turns them into Contact ID:
``(qualifier, code, zone or user)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from alarms import (
    AlarmRaised,
    AlarmRestored,
    AlarmType,
    ArmMode,
    Effect,
    PanelConfig,
    PanelState,
    SetBypass,
    Tampered,
    TamperRestored,
    Tick,
    Zone,
    ZoneOffline,
    ZoneOnline,
    ZoneRestored,
    ZoneSeen,
    ZoneTripped,
    ZoneType,
    contact_id_event,
    step,
)
from tests.test_alarm_engine import (
    APP,
    CONFIG,
    DURESS,
    KEYPAD,
    T0,
    TIMING,
    VALID,
    WRONG,
    Panel,
    at,
    of,
)

Report = tuple[int, int, str | None]


def station(effects: Sequence[Effect]) -> list[Report]:
    """Each effect the station gets: qualifier, code and what ``CCC`` names."""
    out: list[Report] = []
    for effect in effects:
        event = contact_id_event(effect)
        if event is None:
            continue
        if isinstance(effect, AlarmRaised) and effect.by_user:
            out.append((*event, f"user:{effect.user}"))
        else:
            out.append((*event, getattr(effect, "zone", None)))
    return out


def armed(config: PanelConfig = CONFIG) -> Panel:
    panel = Panel(config=config)
    panel.arm(ArmMode.AWAY, T0)
    panel.send(Tick(), at(60))
    return panel


def test_leak_then_dry_is_one_alarm_and_its_restore() -> None:
    panel = Panel()
    assert station(panel.send(ZoneTripped(zone="leak"), at(1))) == [(1, 154, "leak")]
    assert station(panel.send(ZoneTripped(zone="leak"), at(2))) == []
    effects = panel.send(ZoneRestored(zone="leak"), at(3))
    assert effects == [
        AlarmRestored(alarm=AlarmType.LEAK, contact_id=154, zone="leak", at=at(3)),
    ]
    assert station(panel.send(ZoneRestored(zone="leak"), at(4))) == []


def test_instant_burglary_restores_when_the_window_closes() -> None:
    panel = armed()
    assert station(panel.send(ZoneTripped(zone="window"), at(100))) == [(1, 130, "window")]
    assert station(panel.send(ZoneRestored(zone="window"), at(110))) == [(3, 130, "window")]


def test_delayed_burglary_restores_when_the_door_closes() -> None:
    panel = armed()
    panel.send(ZoneTripped(zone="door"), at(100))
    assert station(panel.send(Tick(), at(200))) == [(1, 134, "door")]
    assert station(panel.send(ZoneRestored(zone="door"), at(210))) == [(3, 134, "door")]


def test_door_closed_before_the_entry_delay_ran_out_restores_with_the_alarm() -> None:
    panel = armed()
    panel.send(ZoneTripped(zone="door"), at(100))
    assert station(panel.send(ZoneRestored(zone="door"), at(101))) == []
    effects = panel.send(Tick(), at(500))  # fired late, at its own time
    assert station(effects) == [(1, 134, "door"), (3, 134, "door")]
    assert {e.at for e in effects if contact_id_event(e)} == {at(130)}


def test_a_restore_owed_survives_a_restart() -> None:
    panel = armed()
    panel.send(ZoneTripped(zone="window"), at(100))
    stored = PanelState.model_validate_json(panel.state.model_dump_json())
    _, effects = step(CONFIG, stored, ZoneRestored(zone="window"), at(3600))
    assert station(effects) == [(3, 130, "window")]


def test_tamper_is_reported_once_as_the_alarm_and_restored_as_it() -> None:
    panel = Panel()
    assert station(panel.send(Tampered(zone="door"), T0)) == [(1, 137, "door")]
    assert station(panel.send(TamperRestored(zone="door"), at(5))) == [(3, 137, "door")]


def test_tamper_of_a_bypassed_zone_is_the_troubles_pair() -> None:
    panel = Panel()
    panel.send(SetBypass(zone="door", bypassed=True, code=VALID, source=APP), T0)
    assert station(panel.send(Tampered(zone="door"), at(1))) == [(1, 383, "door")]
    assert station(panel.send(TamperRestored(zone="door"), at(2))) == [(3, 383, "door")]


SUPERVISED = {
    "pir": Zone(id="pir", name="Hall", type=ZoneType.INSTANT, check_in_s=600),
}


@pytest.mark.parametrize("arm", [False, True])
def test_offline_is_one_381_and_one_restore(arm: bool) -> None:
    config = PanelConfig(zones=SUPERVISED, timing=TIMING)
    panel = armed(config) if arm else Panel(config=config)
    effects = panel.send(ZoneOffline(zone="pir"), at(100))
    assert station(effects) == [(1, 381, "pir")]
    assert [a.alarm for a in of(effects, AlarmRaised)] == ([AlarmType.SUPERVISION] if arm else [])
    assert station(panel.send(ZoneOnline(zone="pir"), at(110))) == [(3, 381, "pir")]


def test_silent_then_offline_is_still_one_occurrence() -> None:
    panel = armed(PanelConfig(zones=SUPERVISED, timing=TIMING))
    reports = station(panel.send(Tick(), at(1000)))  # no check-in since arming
    reports += station(panel.send(ZoneOffline(zone="pir"), at(1001)))
    assert reports == [(1, 381, "pir")]
    # Back online: it spoke, so it is no longer silent either; one restore.
    assert station(panel.send(ZoneOnline(zone="pir"), at(1002))) == [(3, 381, "pir")]
    assert station(panel.send(ZoneSeen(zone="pir"), at(1003))) == []


def test_duress_names_the_user_from_the_keypad_and_the_app() -> None:
    for source in (KEYPAD, APP):
        panel = armed()
        effects = panel.disarm(at(100), code=DURESS, source=source)
        assert [r for r in station(effects) if r[1] == 121] == [(1, 121, "user:ivan")]
        (alarm,) = of(effects, AlarmRaised)
        assert alarm.zone == source.device  # the keypad, as a detail of the case


def test_lockout_names_no_user_not_the_keypad() -> None:
    panel = Panel(config=CONFIG.model_copy(update={"lockout_after": 2}))
    panel.disarm(at(1), code=WRONG)
    effects = panel.disarm(at(2), code=WRONG)
    assert station(effects) == [(1, 461, "user:None")]


def test_a_removed_zone_owes_nothing() -> None:
    panel = armed()
    panel.send(ZoneTripped(zone="window"), at(100))
    zones = {k: v for k, v in CONFIG.zones.items() if k != "window"}
    panel.config = CONFIG.model_copy(update={"zones": zones})
    panel.send(Tick(), at(101))
    assert "window" not in panel.state.reported
