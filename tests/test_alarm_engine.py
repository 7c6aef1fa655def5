"""The alarm engine, table-driven: every status x every event x every mode, with
explicit times; then the behaviours the issue names one by one (restart,
duress, lockout, force arm, double knock, supervision, keypads, Contact ID).

No I/O: the engine is a pure function, so time is whatever the test says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from pydantic import TypeAdapter, ValidationError

from alarms import (
    AlarmCancelled,
    AlarmRaised,
    AlarmRestored,
    AlarmType,
    ArmMode,
    ArmRefused,
    ArmRequest,
    BypassChanged,
    CodeCheck,
    CodeLockout,
    DisarmRequest,
    Effect,
    Event,
    KeypadDisplay,
    KeypadReply,
    ModeTiming,
    OpenClose,
    PanelConfig,
    PanelState,
    PanelStatus,
    Panic,
    SetBypass,
    SirenCommand,
    Source,
    StatusChanged,
    Tampered,
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
    contact_id_event,
    display_for,
    keypad_mode,
    mode_from_keypad,
    next_deadline,
    step,
)

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
KEYPAD = Source(kind="keypad", device="keypad-hall", transaction=11)
APP = Source(kind="app")
VALID = CodeCheck(result="valid", user="ivan")
DURESS = CodeCheck(result="duress", user="ivan")
WRONG = CodeCheck(result="wrong")
ABSENT = CodeCheck(result="absent")
MODES = list(ArmMode)

ZONES = {
    "door": Zone(id="door", name="Front door"),
    "window": Zone(id="window", name="Kitchen window", type=ZoneType.INSTANT),
    "hall": Zone(
        id="hall", name="Hall motion", type=ZoneType.INSTANT, modes=frozenset({ArmMode.AWAY})
    ),
    "leak": Zone(id="leak", name="Bathroom leak", type=ZoneType.ALWAYS, alarm=AlarmType.LEAK),
}
# Distinct numbers per mode, so a mix-up of modes shows in the times.
TIMING = {
    ArmMode.AWAY: ModeTiming(exit_delay_s=60, entry_delay_s=30, trigger_time_s=180),
    ArmMode.HOME: ModeTiming(exit_delay_s=20, entry_delay_s=15, trigger_time_s=120),
    ArmMode.NIGHT: ModeTiming(exit_delay_s=10, entry_delay_s=45, trigger_time_s=90),
    ArmMode.VACATION: ModeTiming(exit_delay_s=90, entry_delay_s=20, trigger_time_s=300),
}
CONFIG = PanelConfig(zones=ZONES, timing=TIMING)

E = TypeVar("E")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def of(effects: Sequence[Effect], kind: type[E]) -> list[E]:
    return [e for e in effects if isinstance(e, kind)]


def alarms_in(effects: Sequence[Effect]) -> list[AlarmType]:
    return [e.alarm for e in of(effects, AlarmRaised)]


@dataclass
class Panel:
    """Drives the engine as the gateway would: the state through JSON after every step."""

    config: PanelConfig = CONFIG
    state: PanelState = field(default_factory=PanelState)
    log: list[Effect] = field(default_factory=list)

    def send(self, event: Event, when: datetime) -> list[Effect]:
        state, effects = step(self.config, self.state, event, when)
        self.state = PanelState.model_validate_json(state.model_dump_json())
        assert self.state == state
        self.log.extend(effects)
        return effects

    def status(self) -> PanelStatus:
        return self.state.status

    def arm(self, mode: ArmMode, when: datetime, **kw: Any) -> list[Effect]:
        kw.setdefault("code", ABSENT)
        kw.setdefault("source", KEYPAD)
        return self.send(ArmRequest(mode=mode, **kw), when)

    def disarm(
        self, when: datetime, code: CodeCheck = VALID, source: Source = KEYPAD
    ) -> list[Effect]:
        return self.send(DisarmRequest(code=code, source=source), when)


def other(mode: ArmMode) -> ArmMode:
    return MODES[(MODES.index(mode) + 1) % len(MODES)]


# --- The table: reach each status, send each event, check status and alarms ---


def reach(status: str, mode: ArmMode) -> tuple[Panel, datetime]:
    """A panel in ``status`` (armed in ``mode``) and the time it got there."""
    panel, timing = Panel(), TIMING[mode]
    if status == "disarmed":
        return panel, T0
    panel.arm(mode, T0)
    if status == "arming":
        return panel, T0
    armed_at = at(timing.exit_delay_s)
    panel.send(Tick(), armed_at)
    if status == "armed":
        return panel, armed_at
    pending_at = armed_at + timedelta(seconds=10)
    panel.send(ZoneTripped(zone="door"), pending_at)
    if status == "pending":
        return panel, pending_at
    triggered_at = pending_at + timedelta(seconds=timing.entry_delay_s)
    panel.send(Tick(), triggered_at)
    return panel, triggered_at


EVENTS: dict[str, Callable[[ArmMode], Event]] = {
    "trip_door": lambda m: ZoneTripped(zone="door"),
    "trip_window": lambda m: ZoneTripped(zone="window"),
    "trip_hall": lambda m: ZoneTripped(zone="hall"),
    "trip_leak": lambda m: ZoneTripped(zone="leak"),
    "restore_door": lambda m: ZoneRestored(zone="door"),
    "tamper_window": lambda m: Tampered(zone="window"),
    "seen_window": lambda m: ZoneSeen(zone="window"),
    "offline_window": lambda m: ZoneOffline(zone="window"),
    "online_window": lambda m: ZoneOnline(zone="window"),
    "panic": lambda m: Panic(source=KEYPAD),
    "arm_same": lambda m: ArmRequest(mode=m, code=VALID, source=KEYPAD),
    "arm_other": lambda m: ArmRequest(mode=other(m), code=VALID, source=KEYPAD),
    "disarm_valid": lambda m: DisarmRequest(code=VALID, source=KEYPAD),
    "disarm_duress": lambda m: DisarmRequest(code=DURESS, source=KEYPAD),
    "disarm_wrong": lambda m: DisarmRequest(code=WRONG, source=KEYPAD),
    "disarm_absent": lambda m: DisarmRequest(code=ABSENT, source=KEYPAD),
    "bypass_window": lambda m: SetBypass(zone="window", bypassed=True, code=VALID, source=APP),
    "tick_before": lambda m: Tick(),
    "tick_at_deadline": lambda m: Tick(),
}

B, EX, LK, TP, PN, DU, SV = (
    AlarmType.BURGLARY,
    AlarmType.ENTRY_EXIT,
    AlarmType.LEAK,
    AlarmType.TAMPER,
    AlarmType.PANIC,
    AlarmType.DURESS,
    AlarmType.SUPERVISION,
)
# Expected status after the event ("armed" = armed in the mode, "armed:other" =
# arming the other mode, "hall" = depends on whether the AWAY-only hall zone is
# watched) and the alarms raised. Events not listed for a status: status unchanged,
# no alarm.
COMMON: dict[str, tuple[str, list[AlarmType]]] = {
    "trip_leak": ("same", [LK]),
    "tamper_window": ("same", [TP]),
    "panic": ("same", [PN]),
    "disarm_duress": ("disarmed", [DU]),
    "disarm_valid": ("disarmed", []),
}
TABLE: dict[str, dict[str, tuple[str, list[AlarmType]]]] = {
    "disarmed": {
        "arm_same": ("arming", []),
        "arm_other": ("arming:other", []),
    },
    "arming": {
        "trip_window": ("disarmed", []),
        "trip_hall": ("hall:disarmed", []),
        "arm_other": ("arming:other", []),
        "tick_at_deadline": ("armed", []),
    },
    "armed": {
        "trip_door": ("pending", []),
        "trip_window": ("triggered", [B]),
        "trip_hall": ("hall:triggered", [B]),
        "offline_window": ("same", [SV]),
        "arm_other": ("arming:other", []),
    },
    "pending": {
        "trip_window": ("triggered", [B]),
        "trip_hall": ("hall:triggered", [B]),
        "offline_window": ("same", [SV]),
        "tick_at_deadline": ("triggered", [EX]),
    },
    "triggered": {
        "offline_window": ("same", [SV]),
        "tick_at_deadline": ("armed", []),
    },
}


def expected(status: str, event: str, mode: ArmMode) -> tuple[str, list[AlarmType]]:
    outcome, alarms = TABLE[status].get(event) or COMMON.get(event) or ("same", [])
    if outcome.startswith("hall:"):
        if mode is not ArmMode.AWAY:
            return "same", []
        outcome = outcome.removeprefix("hall:")
    return outcome, alarms


def status_named(name: str, before: str, mode: ArmMode) -> tuple[PanelStatus, ArmMode | None]:
    name = before if name == "same" else name
    if name == "disarmed":
        return PanelStatus.DISARMED, None
    if name == "arming:other":
        return PanelStatus.ARMING, other(mode)
    if name == "armed":
        return mode.status, mode
    return PanelStatus(name), mode


@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
@pytest.mark.parametrize("event_name", list(EVENTS))
@pytest.mark.parametrize("status", list(TABLE))
def test_status_event_mode_table(status: str, event_name: str, mode: ArmMode) -> None:
    panel, since = reach(status, mode)
    assert panel.status() is status_named(status, status, mode)[0]
    now = since + timedelta(seconds=1)
    if event_name == "tick_at_deadline":
        now = panel.state.deadline or now
    before = panel.state
    effects = panel.send(EVENTS[event_name](mode), now)

    outcome, alarms = expected(status, event_name, mode)
    want_status, want_mode = status_named(outcome, status, mode)
    assert panel.status() is want_status, effects
    assert panel.state.armed_mode is want_mode
    assert alarms_in(effects) == alarms
    assert all(e.at <= now for e in effects)
    changes = of(effects, StatusChanged)
    if want_status is not before.status:
        assert changes and changes[0].old is before.status and changes[-1].new is want_status
    # A status with a timer always has it, and next_deadline never lies past it.
    if want_status in (PanelStatus.ARMING, PanelStatus.PENDING, PanelStatus.TRIGGERED):
        deadline = panel.state.deadline
        nd = next_deadline(panel.config, panel.state)
        assert deadline is not None and nd is not None and nd <= deadline
    else:
        assert panel.state.deadline is None


# --- Arming and the timers of each mode ---


@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
def test_full_cycle_times_per_mode(mode: ArmMode) -> None:
    timing, panel = TIMING[mode], Panel()
    effects = panel.arm(mode, T0)
    assert of(effects, KeypadReply) == [
        KeypadReply(device="keypad-hall", transaction=11, mode=keypad_mode(mode), at=T0)
    ]
    assert of(effects, KeypadDisplay)[-1].mode == "exit_delay"
    assert of(effects, KeypadDisplay)[-1].delay_s == timing.exit_delay_s
    assert panel.state.deadline == at(timing.exit_delay_s)
    assert panel.send(Tick(), at(timing.exit_delay_s - 0.001)) == []

    armed_at = at(timing.exit_delay_s)
    effects = panel.send(Tick(), armed_at)
    assert panel.status() is mode.status
    assert of(effects, OpenClose) == [
        OpenClose(opened=False, user=None, mode=mode, at=armed_at, contact_id=401)
    ]

    trip_at = armed_at + timedelta(seconds=100)
    effects = panel.send(ZoneTripped(zone="door"), trip_at)
    assert panel.status() is PanelStatus.PENDING
    assert of(effects, KeypadDisplay) == [
        KeypadDisplay(mode="entry_delay", delay_s=int(timing.entry_delay_s), at=trip_at)
    ]
    fire_at = trip_at + timedelta(seconds=timing.entry_delay_s)
    effects = panel.send(Tick(), fire_at)
    assert of(effects, AlarmRaised) == [
        AlarmRaised(alarm=AlarmType.ENTRY_EXIT, contact_id=134, zone="door", at=fire_at)
    ]
    assert of(effects, SirenCommand) == [
        SirenCommand(on=True, duration_s=int(timing.trigger_time_s), at=fire_at)
    ]
    assert of(effects, KeypadDisplay)[-1].mode == "in_alarm"

    end_at = fire_at + timedelta(seconds=timing.trigger_time_s)
    effects = panel.send(Tick(), end_at)
    assert panel.status() is mode.status
    assert of(effects, SirenCommand) == [SirenCommand(on=False, at=end_at)]
    assert panel.state.alarm_zone is None


def test_zero_exit_delay_arms_at_once_and_reports_closing_with_user() -> None:
    config = CONFIG.model_copy(update={"timing": {ArmMode.AWAY: ModeTiming(exit_delay_s=0)}})
    panel = Panel(config=config)
    effects = panel.arm(ArmMode.AWAY, T0, code=VALID, source=APP)
    assert panel.status() is PanelStatus.ARMED_AWAY
    assert [(c.old, c.new) for c in of(effects, StatusChanged)] == [
        (PanelStatus.DISARMED, PanelStatus.ARMED_AWAY)
    ]
    assert of(effects, OpenClose) == [
        OpenClose(opened=False, user="ivan", mode=ArmMode.AWAY, at=T0, contact_id=407)
    ]
    assert next_deadline(config, panel.state) is None


def test_zero_entry_delay_triggers_at_once_as_entry_exit() -> None:
    timing = {ArmMode.AWAY: ModeTiming(exit_delay_s=0, entry_delay_s=0)}
    panel = Panel(config=CONFIG.model_copy(update={"timing": timing}))
    panel.arm(ArmMode.AWAY, T0)
    effects = panel.send(ZoneTripped(zone="door"), at(5))
    assert panel.status() is PanelStatus.TRIGGERED
    assert alarms_in(effects) == [AlarmType.ENTRY_EXIT]


def test_delayed_zone_during_exit_delay_does_nothing() -> None:
    panel = Panel()
    panel.arm(ArmMode.AWAY, T0)
    assert panel.send(ZoneTripped(zone="door"), at(5)) == []
    panel.send(ZoneRestored(zone="door"), at(8))
    panel.send(Tick(), at(60))
    assert panel.status() is PanelStatus.ARMED_AWAY


def test_instant_zone_during_exit_delay_aborts_arming() -> None:
    panel = Panel()
    panel.arm(ArmMode.AWAY, T0)
    effects = panel.send(ZoneTripped(zone="window"), at(5))
    assert panel.status() is PanelStatus.DISARMED
    refused = of(effects, ArmRefused)
    assert [(r.reason, r.open_zones, r.zone_names) for r in refused] == [
        ("not_ready", ["window"], ["Kitchen window"])
    ]
    assert of(effects, OpenClose) == []  # no closing was reported, so no opening
    assert of(effects, KeypadDisplay)[-1].mode == "disarm"
    assert next_deadline(CONFIG, panel.state) is None


def test_allow_open_instant_zone_neither_blocks_nor_aborts_arming() -> None:
    motion = Zone(id="pir", name="Hall PIR", type=ZoneType.INSTANT, allow_open=True)
    panel = Panel(config=PanelConfig(zones={"pir": motion}, timing=TIMING))
    panel.send(ZoneTripped(zone="pir"), T0)
    panel.arm(ArmMode.AWAY, at(1))
    assert panel.status() is PanelStatus.ARMING
    panel.send(ZoneTripped(zone="pir"), at(10))
    assert panel.status() is PanelStatus.ARMING
    panel.send(Tick(), at(61))
    effects = panel.send(ZoneTripped(zone="pir"), at(100))
    assert panel.status() is PanelStatus.TRIGGERED
    assert alarms_in(effects) == [AlarmType.BURGLARY]


def test_zone_not_watched_in_mode_is_ignored() -> None:
    panel = Panel()
    panel.arm(ArmMode.HOME, T0)
    panel.send(Tick(), at(20))
    assert panel.send(ZoneTripped(zone="hall"), at(30)) == []
    assert panel.status() is PanelStatus.ARMED_HOME


# --- Restarts: deadlines are state, and fire at their original time ---


def test_restart_mid_entry_delay_fires_at_the_original_deadline() -> None:
    panel, since = reach("pending", ArmMode.AWAY)
    deadline = since + timedelta(seconds=30)
    stored = panel.state.model_dump_json()  # what the database column holds

    # The gateway is killed; it comes back a day later with a message queued.
    restored = PanelState.model_validate_json(stored)
    back = since + timedelta(days=1)
    state, effects = step(CONFIG, restored, ZoneSeen(zone="window"), back)

    changes = [(c.old, c.new, c.at) for c in of(effects, StatusChanged)]
    assert changes == [
        (PanelStatus.PENDING, PanelStatus.TRIGGERED, deadline),
        (PanelStatus.TRIGGERED, PanelStatus.ARMED_AWAY, deadline + timedelta(seconds=180)),
    ]
    assert of(effects, AlarmRaised) == [
        AlarmRaised(alarm=AlarmType.ENTRY_EXIT, contact_id=134, zone="door", at=deadline)
    ]
    assert [(s.on, s.at) for s in of(effects, SirenCommand)] == [
        (True, deadline),
        (False, deadline + timedelta(seconds=180)),
    ]
    assert state.status is PanelStatus.ARMED_AWAY


def test_restart_after_exit_delay_then_a_trip_waiting_in_the_broker() -> None:
    panel = Panel()
    panel.arm(ArmMode.AWAY, T0)
    restored = PanelState.model_validate(panel.state.model_dump(mode="json"))
    state, effects = step(CONFIG, restored, ZoneTripped(zone="door"), at(3600))
    assert [(c.new, c.at) for c in of(effects, StatusChanged)] == [
        (PanelStatus.ARMED_AWAY, at(60)),
        (PanelStatus.PENDING, at(3600)),
    ]
    assert state.deadline == at(3630)


def test_step_does_not_touch_its_inputs_and_rejects_naive_time() -> None:
    panel, since = reach("pending", ArmMode.AWAY)
    before = panel.state.model_dump_json()
    step(CONFIG, panel.state, DisarmRequest(code=VALID, source=KEYPAD), since)
    assert panel.state.model_dump_json() == before
    with pytest.raises(ValueError, match="aware"):
        step(CONFIG, panel.state, Tick(), datetime(2026, 3, 1))


def test_other_time_zones_are_converted_to_utc() -> None:
    novosibirsk = T0.astimezone(timezone(timedelta(hours=7)))
    request = ArmRequest(mode=ArmMode.AWAY, code=ABSENT, source=APP)
    state, _ = step(CONFIG, PanelState(), request, novosibirsk)
    assert state.deadline == at(60)
    assert state.deadline is not None and state.deadline.utcoffset() == timedelta(0)


# --- Configuration changes, unknown devices ---


def test_events_for_devices_that_are_not_zones_change_nothing() -> None:
    panel = Panel()
    for event in (ZoneTripped(zone="cam"), Tampered(zone="cam"), ZoneOffline(zone="cam")):
        assert panel.send(event, T0) == []
    assert panel.state == PanelState()


def test_removed_zone_is_forgotten() -> None:
    panel = Panel()
    panel.send(ZoneTripped(zone="window"), T0)
    panel.send(ZoneOffline(zone="window"), T0)
    panel.config = PanelConfig(zones={"door": ZONES["door"]}, timing=TIMING)
    panel.send(Tick(), at(1))
    assert panel.state.open_zones == frozenset() and panel.state.offline == frozenset()
    panel.arm(ArmMode.AWAY, at(2))
    assert panel.status() is PanelStatus.ARMING


def test_zone_keys_must_be_ids() -> None:
    with pytest.raises(ValidationError, match="differs"):
        PanelConfig(zones={"a": Zone(id="b", name="B")})


# --- Keypads, Contact ID, serialisation ---


def test_keypad_words() -> None:
    assert [keypad_mode(m) for m in MODES] == [
        "arm_all_zones",
        "arm_day_zones",
        "arm_night_zones",
        "arm_all_zones",
    ]
    assert mode_from_keypad("arm_all_zones") is ArmMode.AWAY
    assert mode_from_keypad("arm_day_zones") is ArmMode.HOME
    assert mode_from_keypad("arm_night_zones") is ArmMode.NIGHT
    for action in ("disarm", "emergency", "panic", "exit_delay", "whatever"):
        assert mode_from_keypad(action) is None


def test_display_for_a_keypad_that_comes_back() -> None:
    panel, since = reach("pending", ArmMode.HOME)
    shown = display_for(panel.state, since + timedelta(seconds=4.5))
    assert (shown.mode, shown.delay_s) == ("entry_delay", 11)
    panel, since = reach("armed", ArmMode.NIGHT)
    assert display_for(panel.state, since).mode == "arm_night_zones"
    assert display_for(PanelState(), T0).mode == "disarm"


def test_contact_id_events() -> None:
    assert contact_id_event(AlarmRaised(alarm=AlarmType.LEAK, contact_id=154, at=T0)) == (1, 154)
    assert contact_id_event(OpenClose(opened=True, at=T0)) == (1, 401)
    assert contact_id_event(OpenClose(opened=False, at=T0, contact_id=407)) == (3, 407)
    assert contact_id_event(AlarmCancelled(at=T0)) == (1, 406)
    assert contact_id_event(BypassChanged(zone="z", bypassed=False, at=T0)) == (3, 570)
    trouble = Trouble(zone="z", kind="tamper", at=T0, contact_id=383)
    assert contact_id_event(trouble) == (1, 383)
    restored = TroubleRestored(zone="z", kind="offline", at=T0, contact_id=381)
    assert contact_id_event(restored) == (3, 381)
    assert contact_id_event(trouble.model_copy(update={"reported": False})) is None
    assert contact_id_event(restored.model_copy(update={"reported": False})) is None
    back = AlarmRestored(alarm=AlarmType.TAMPER, contact_id=137, zone="z", at=T0)
    assert contact_id_event(back) == (3, 137)
    assert contact_id_event(CodeLockout(at=T0, until=T0)) is None
    assert contact_id_event(KeypadDisplay(mode="disarm", at=T0)) is None


def test_events_and_effects_read_back_through_their_tags() -> None:
    panel, _ = reach("triggered", ArmMode.AWAY)
    effects = TypeAdapter(list[Effect])
    assert effects.validate_json(effects.dump_json(panel.log)) == panel.log
    events = TypeAdapter(Event)
    arm = ArmRequest(mode=ArmMode.NIGHT, code=VALID, source=KEYPAD, bypass=frozenset({"door"}))
    assert events.validate_json(events.dump_json(arm)) == arm
    assert events.validate_python({"type": "tick"}) == Tick()
