"""Requests from people: arming with open zones, force arm, bypass, disarming
and cancelling, duress, required codes, wrong codes and the lockout."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alarms import (
    AlarmCancelled,
    AlarmRaised,
    AlarmType,
    ArmMode,
    ArmRefused,
    BypassChanged,
    CodeLockout,
    ForceArmed,
    KeypadDisplay,
    KeypadReply,
    OpenClose,
    PanelStatus,
    SetBypass,
    SirenCommand,
    StatusChanged,
    Tampered,
    Tick,
    ZoneRestored,
    ZoneTripped,
    next_deadline,
)
from tests.test_alarm_engine import (
    ABSENT,
    APP,
    CONFIG,
    DURESS,
    KEYPAD,
    T0,
    VALID,
    WRONG,
    Panel,
    alarms_in,
    at,
    of,
    reach,
)

# --- Open zones, force arm, bypass ---


def test_open_zone_refuses_arming_with_the_zone_named() -> None:
    panel = Panel()
    panel.send(ZoneTripped(zone="door"), T0)
    effects = panel.arm(ArmMode.AWAY, at(1))
    assert panel.status() is PanelStatus.DISARMED
    assert of(effects, ArmRefused) == [
        ArmRefused(
            reason="open_zones",
            open_zones=["door"],
            zone_names=["Front door"],
            at=at(1),
            source=KEYPAD,
        )
    ]
    assert of(effects, KeypadReply)[0].mode == "not_ready"
    # Open in a mode where the zone is not watched: no obstacle.
    panel.send(ZoneRestored(zone="door"), at(2))
    panel.send(ZoneTripped(zone="hall"), at(3))
    panel.arm(ArmMode.HOME, at(4))
    assert panel.status() is PanelStatus.ARMING


def test_force_arm_records_open_zones_and_watches_them_once_closed() -> None:
    panel = Panel()
    panel.send(ZoneTripped(zone="door"), T0)
    effects = panel.arm(ArmMode.AWAY, at(1), force=True, code=VALID)
    assert of(effects, ForceArmed) == [
        ForceArmed(zones=["door"], zone_names=["Front door"], user="ivan", at=at(1))
    ]
    panel.send(Tick(), at(61))
    assert panel.send(ZoneTripped(zone="door"), at(70)) == []  # still the same open door
    panel.send(ZoneRestored(zone="door"), at(80))
    panel.send(ZoneTripped(zone="door"), at(90))
    assert panel.status() is PanelStatus.PENDING


def test_force_arm_refused_when_not_allowed() -> None:
    panel = Panel(config=CONFIG.model_copy(update={"allow_force_arm": False}))
    panel.send(ZoneTripped(zone="window"), T0)
    effects = panel.arm(ArmMode.AWAY, at(1), force=True)
    assert [r.reason for r in of(effects, ArmRefused)] == ["open_zones"]
    assert panel.status() is PanelStatus.DISARMED


def test_bypass_at_arming_lasts_until_disarm() -> None:
    panel = Panel()
    panel.send(ZoneTripped(zone="window"), T0)
    effects = panel.arm(ArmMode.AWAY, at(1), bypass=frozenset({"window", "no-such-zone"}))
    assert of(effects, BypassChanged) == [
        BypassChanged(zone="window", bypassed=True, user=None, at=at(1))
    ]
    panel.send(Tick(), at(61))
    panel.send(ZoneRestored(zone="window"), at(62))
    assert panel.send(ZoneTripped(zone="window"), at(63)) == []
    assert panel.send(Tampered(zone="window"), at(64))[1:] == []  # trouble only, no alarm
    effects = panel.disarm(at(70))
    assert of(effects, BypassChanged) == [
        BypassChanged(zone="window", bypassed=False, user="ivan", at=at(70))
    ]
    assert panel.state.bypassed == frozenset()


def test_set_bypass_needs_a_valid_code_and_is_refused_during_an_alarm() -> None:
    panel = Panel()
    effects = panel.send(SetBypass(zone="door", bypassed=True, code=ABSENT, source=APP), T0)
    assert [r.reason for r in of(effects, ArmRefused)] == ["code_required"]
    effects = panel.send(SetBypass(zone="nope", bypassed=True, code=VALID, source=APP), T0)
    assert [r.reason for r in of(effects, ArmRefused)] == ["unknown_zone"]
    panel.arm(ArmMode.AWAY, T0)
    panel.send(Tick(), at(60))
    panel.send(ZoneTripped(zone="door"), at(70))
    effects = panel.send(SetBypass(zone="door", bypassed=True, code=VALID, source=APP), at(71))
    assert [r.reason for r in of(effects, ArmRefused)] == ["in_alarm"]
    assert "door" not in panel.state.bypassed
    panel.send(Tick(), at(100))
    assert panel.status() is PanelStatus.TRIGGERED


def test_leak_while_bypassed_raises_nothing() -> None:
    panel = Panel()
    panel.send(SetBypass(zone="leak", bypassed=True, code=VALID, source=APP), T0)
    assert alarms_in(panel.send(ZoneTripped(zone="leak"), at(1))) == []


# --- Disarming, cancelling, duress ---


def test_valid_code_in_entry_delay_cancels_without_alarm() -> None:
    panel, since = reach("pending", ArmMode.AWAY)
    effects = panel.disarm(since + timedelta(seconds=5), source=APP)
    when = since + timedelta(seconds=5)
    assert of(effects, AlarmCancelled) == [
        AlarmCancelled(at=when, user="ivan", zone="door", alarm=AlarmType.ENTRY_EXIT)
    ]
    assert of(effects, OpenClose) == [
        OpenClose(opened=True, user="ivan", mode=ArmMode.AWAY, at=when, contact_id=407)
    ]
    assert alarms_in(effects) == []
    assert panel.send(Tick(), since + timedelta(days=1)) == []


def test_disarm_when_triggered_silences_sirens_and_cancels() -> None:
    panel, since = reach("triggered", ArmMode.NIGHT)
    when = since + timedelta(seconds=3)
    effects = panel.disarm(when)
    assert of(effects, SirenCommand) == [SirenCommand(on=False, at=when)]
    assert of(effects, AlarmCancelled)[0].alarm is AlarmType.ENTRY_EXIT
    assert of(effects, KeypadReply)[0].mode == "disarm"
    assert panel.state.siren_until is None


def test_disarm_while_disarmed_is_already_disarmed() -> None:
    panel = Panel()
    effects = panel.disarm(T0)
    assert [r.reason for r in of(effects, ArmRefused)] == ["already_disarmed"]
    assert of(effects, KeypadReply)[0].mode == "already_disarmed"
    assert of(effects, StatusChanged) == []


def test_disarm_during_exit_delay_reports_no_opening() -> None:
    panel = Panel()
    panel.arm(ArmMode.AWAY, T0)
    effects = panel.disarm(at(10))
    assert panel.status() is PanelStatus.DISARMED
    assert of(effects, OpenClose) == []
    assert of(effects, AlarmCancelled) == []


VISIBLE = (StatusChanged, KeypadReply, KeypadDisplay, SirenCommand, OpenClose, BypassChanged)


@pytest.mark.parametrize("status", ["arming", "armed", "pending", "triggered"])
def test_duress_disarms_exactly_like_a_valid_code_and_raises_a_silent_alarm(status: str) -> None:
    valid_panel, since = reach(status, ArmMode.AWAY)
    duress_panel, _ = reach(status, ArmMode.AWAY)
    when = since + timedelta(seconds=2)
    valid = valid_panel.disarm(when, code=VALID)
    duress = duress_panel.disarm(when, code=DURESS)

    assert [e for e in duress if isinstance(e, VISIBLE)] == [
        e for e in valid if isinstance(e, VISIBLE)
    ]
    assert duress_panel.state == valid_panel.state
    assert of(duress, AlarmRaised) == [
        AlarmRaised(
            alarm=AlarmType.DURESS,
            contact_id=121,
            zone="keypad-hall",
            at=when,
            silent=True,
            user="ivan",
        )
    ]
    assert of(duress, AlarmCancelled) == []  # the case stays open
    assert of(valid, AlarmRaised) == []


def test_duress_code_on_arming_arms_and_raises_duress() -> None:
    panel = Panel()
    effects = panel.arm(ArmMode.AWAY, T0, code=DURESS)
    assert panel.status() is PanelStatus.ARMING
    assert alarms_in(effects) == [AlarmType.DURESS]


# --- Codes: required, wrong, lockout ---


def test_arm_requires_code() -> None:
    panel = Panel(config=CONFIG.model_copy(update={"arm_requires_code": True}))
    effects = panel.arm(ArmMode.AWAY, T0)
    assert [r.reason for r in of(effects, ArmRefused)] == ["code_required"]
    assert of(effects, KeypadReply)[0].mode == "invalid_code"
    assert panel.state.failed_codes == 0
    panel.arm(ArmMode.AWAY, at(1), code=VALID)
    assert panel.status() is PanelStatus.ARMING
    assert panel.state.armed_by == "ivan"


def test_switching_armed_mode_needs_a_valid_code() -> None:
    panel, since = reach("armed", ArmMode.AWAY)
    effects = panel.arm(ArmMode.HOME, since + timedelta(seconds=1))
    assert [r.reason for r in of(effects, ArmRefused)] == ["code_required"]
    assert panel.status() is PanelStatus.ARMED_AWAY
    effects = panel.arm(ArmMode.AWAY, since + timedelta(seconds=2))  # same mode: just the answer
    assert [e.mode for e in of(effects, KeypadReply)] == ["arm_all_zones"]
    assert of(effects, StatusChanged) == []


def test_wrong_codes_lock_out_then_expire() -> None:
    config = CONFIG.model_copy(update={"lockout_after": 3, "lockout_s": 120})
    panel, since = reach("armed", ArmMode.AWAY)
    panel.config = config
    for i in range(2):
        effects = panel.disarm(since + timedelta(seconds=i), code=WRONG)
        assert [r.reason for r in of(effects, ArmRefused)] == ["wrong_code"]
        assert [r.mode for r in of(effects, KeypadReply)] == ["invalid_code"]
        assert of(effects, CodeLockout) == []
    third = since + timedelta(seconds=2)
    until = third + timedelta(seconds=120)
    effects = panel.disarm(third, code=WRONG)
    assert of(effects, CodeLockout) == [CodeLockout(at=third, until=until)]
    assert of(effects, AlarmRaised) == [
        AlarmRaised(
            alarm=AlarmType.WRONG_CODE, contact_id=461, zone="keypad-hall", at=third, silent=True
        )
    ]
    assert next_deadline(config, panel.state) == until

    # Locked: even a valid code is refused, and not counted.
    effects = panel.disarm(third + timedelta(seconds=10), code=VALID)
    assert [r.reason for r in of(effects, ArmRefused)] == ["locked_out"]
    assert panel.status() is PanelStatus.ARMED_AWAY
    assert panel.state.failed_codes == 3
    # A duress code is refused too, but its alarm gets through.
    effects = panel.disarm(third + timedelta(seconds=11), code=DURESS)
    assert [r.reason for r in of(effects, ArmRefused)] == ["locked_out"]
    assert alarms_in(effects) == [AlarmType.DURESS]

    panel.send(Tick(), until)
    assert panel.state.locked_until is None and panel.state.failed_codes == 0
    panel.disarm(until + timedelta(seconds=1))
    assert panel.status() is PanelStatus.DISARMED


def test_valid_code_resets_the_wrong_code_count() -> None:
    panel = Panel()
    for i in range(4):
        panel.disarm(at(i), code=WRONG)
    panel.arm(ArmMode.AWAY, at(5), code=VALID)
    assert panel.state.failed_codes == 0
    for i in range(4):
        effects = panel.disarm(at(10 + i), code=WRONG)
        assert of(effects, CodeLockout) == []


def test_arming_during_an_alarm_is_refused() -> None:
    panel, since = reach("pending", ArmMode.AWAY)
    effects = panel.arm(ArmMode.HOME, since + timedelta(seconds=1), code=VALID)
    assert [r.reason for r in of(effects, ArmRefused)] == ["in_alarm"]
    assert [r.mode for r in of(effects, KeypadReply)] == ["not_ready"]
    assert panel.status() is PanelStatus.PENDING


def test_absent_code_while_locked_out_is_refused_as_locked_out() -> None:
    panel = Panel()
    for i in range(5):
        panel.disarm(at(i), code=WRONG)
    effects = panel.disarm(at(10), code=ABSENT)
    assert [r.reason for r in of(effects, ArmRefused)] == ["locked_out"]
    # Arming needs no code here, and a lockout does not stop it.
    panel.arm(ArmMode.AWAY, at(11))
    assert panel.status() is PanelStatus.ARMING
