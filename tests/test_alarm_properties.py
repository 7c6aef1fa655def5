"""Property tests of the alarm engine (hypothesis): random events at random times.

- a pending deadline is never lost: in arming, pending and triggered there is
  a deadline, and next_deadline is not after it;
- nothing is ever raised from a bypassed zone;
- the state always survives JSON (the gateway stores it after every step);
- step never changes its inputs;
- jumping far ahead in one step (a restart) gives exactly what ticking at every
  deadline on time would have given: same effects, same times, same state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alarms import (
    AlarmRaised,
    AlarmType,
    ArmMode,
    ArmRequest,
    CodeCheck,
    DisarmRequest,
    Effect,
    Event,
    ModeTiming,
    PanelConfig,
    PanelState,
    PanelStatus,
    Panic,
    SetBypass,
    Source,
    StatusChanged,
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
    next_deadline,
    step,
)
from tests.test_alarm_engine import T0

ZONES = {
    "door": Zone(id="door", name="Door"),
    "window": Zone(id="window", name="Window", type=ZoneType.INSTANT),
    "pet": Zone(
        id="pet", name="Pet PIR", type=ZoneType.INSTANT, confirm_within_s=20, check_in_s=300
    ),
    "hall": Zone(
        id="hall",
        name="Hall",
        modes=frozenset({ArmMode.AWAY, ArmMode.HOME}),
        allow_open=True,
    ),
    "leak": Zone(
        id="leak", name="Leak", type=ZoneType.ALWAYS, alarm=AlarmType.LEAK, check_in_s=600
    ),
    "button": Zone(id="button", name="Panic button", type=ZoneType.ALWAYS, alarm=AlarmType.PANIC),
}
CONFIG = PanelConfig(
    zones=ZONES,
    timing={
        ArmMode.AWAY: ModeTiming(exit_delay_s=60, entry_delay_s=30, trigger_time_s=120),
        ArmMode.HOME: ModeTiming(exit_delay_s=0, entry_delay_s=15, trigger_time_s=60),
        ArmMode.NIGHT: ModeTiming(exit_delay_s=10, entry_delay_s=0, trigger_time_s=90),
    },
    lockout_after=3,
    lockout_s=120,
)
ZONE_IDS = [*ZONES, "ghost"]

zone_ids = st.sampled_from(ZONE_IDS)
# Trips favour the zones that start entry delays and alarms.
trip_ids = st.sampled_from(["door", "door", "window", "hall", "pet", "pet", *ZONE_IDS])
codes = st.builds(
    CodeCheck,
    # Mostly codes that work, or nothing would ever get armed.
    result=st.sampled_from(["valid", "valid", "valid", "absent", "duress", "wrong"]),
    user=st.sampled_from([None, "ivan", "olga"]),
)
sources = st.one_of(
    st.builds(
        Source,
        kind=st.just("keypad"),
        device=st.just("keypad-1"),
        transaction=st.integers(0, 255),
    ),
    st.builds(Source, kind=st.sampled_from(["app", "api"])),
)
arm_requests = st.builds(
    ArmRequest,
    mode=st.sampled_from(list(ArmMode)),
    code=codes,
    source=sources,
    force=st.booleans(),
    bypass=st.frozensets(zone_ids, max_size=2),
)
events: st.SearchStrategy[Event] = st.one_of(
    # Trips and arming are the point: they come most often.
    *[st.builds(ZoneTripped, zone=trip_ids)] * 4,
    *[st.builds(ZoneRestored, zone=zone_ids)] * 3,
    *[arm_requests] * 3,
    st.builds(Tampered, zone=zone_ids),
    st.builds(TamperRestored, zone=zone_ids),
    st.builds(ZoneSeen, zone=zone_ids),
    st.builds(ZoneOffline, zone=zone_ids),
    st.builds(ZoneOnline, zone=zone_ids),
    st.builds(Panic, source=sources),
    st.builds(DisarmRequest, code=codes, source=sources),
    st.builds(SetBypass, zone=zone_ids, bypassed=st.booleans(), code=codes, source=sources),
    st.just(Tick()),
)
# Mostly short gaps, sometimes an outage of minutes to hours.
gaps = st.one_of(
    *[st.floats(0, 40, allow_nan=False)] * 3,
    st.integers(0, 400).map(float),
    st.integers(0, 20000).map(float),
)
random_scripts = st.lists(st.tuples(gaps, events), min_size=5, max_size=40)


def _armed_first(mode: ArmMode, rest: list[tuple[float, Event]]) -> list[tuple[float, Event]]:
    arm = ArmRequest(
        mode=mode, code=CodeCheck(result="valid"), source=Source(kind="app"), force=True
    )
    return [(0.0, arm), (100.0, Tick()), *rest]


# Half the scripts start armed, so that entry delays and alarms are common.
scripts = st.one_of(
    random_scripts, st.builds(_armed_first, st.sampled_from(list(ArmMode)), random_scripts)
)

TIMED = (PanelStatus.ARMING, PanelStatus.PENDING, PanelStatus.TRIGGERED)


def check_step(before: PanelState, now: datetime, effects: list[Effect], after: PanelState) -> None:
    # Never lose a deadline.
    if after.status in TIMED:
        nd = next_deadline(CONFIG, after)
        assert after.deadline is not None and nd is not None and nd <= after.deadline
    else:
        assert after.deadline is None
    assert (after.armed_mode is None) == (after.status is PanelStatus.DISARMED)
    nd = next_deadline(CONFIG, after)
    assert nd is None or nd > now  # everything due has fired
    # Never anything from a bypassed zone.
    for effect in effects:
        if isinstance(effect, AlarmRaised) and effect.zone in ZONES:
            assert effect.zone not in before.bypassed
    if after.status in (PanelStatus.PENDING, PanelStatus.TRIGGERED):
        assert after.alarm_zone not in after.bypassed
    # Time runs forward inside a step and never past now.
    times = [e.at for e in effects]
    assert times == sorted(times) and all(t <= now for t in times)
    # JSON, as the database column holds it.
    assert PanelState.model_validate_json(after.model_dump_json()) == after
    assert PanelState.model_validate(after.model_dump(mode="json")) == after


def run(script: list[tuple[float, Event]]) -> tuple[PanelState, datetime]:
    state, now = PanelState(), T0
    for gap, event in script:
        now += timedelta(seconds=gap)
        stored = state.model_dump_json()
        event_json = event.model_dump_json()
        new, effects = step(CONFIG, state, event, now)
        assert state.model_dump_json() == stored, "step changed its input state"
        assert event.model_dump_json() == event_json
        check_step(state, now, effects, new)
        state = PanelState.model_validate_json(new.model_dump_json())
    return state, now


@settings(max_examples=300, deadline=None)
@given(scripts)
def test_random_scripts_keep_the_invariants(script: list[tuple[float, Event]]) -> None:
    run(script)


@settings(max_examples=200, deadline=None)
@given(scripts, st.integers(1, 50000))
def test_a_restart_is_the_same_as_ticking_on_time(
    script: list[tuple[float, Event]], outage: int
) -> None:
    state, now = run(script)
    later = now + timedelta(seconds=outage)

    jumped, jumped_effects = step(CONFIG, state, Tick(), later)

    ticked, ticked_effects = state, []
    while (due := next_deadline(CONFIG, ticked)) is not None and due <= later:
        ticked, effects = step(CONFIG, ticked, Tick(), due)
        ticked_effects += effects
    ticked, effects = step(CONFIG, ticked, Tick(), later)
    ticked_effects += effects

    assert jumped_effects == ticked_effects
    assert jumped == ticked


bypass_scripts = st.lists(
    st.tuples(
        gaps,
        st.one_of(
            st.builds(ZoneTripped, zone=zone_ids),
            st.builds(ZoneRestored, zone=zone_ids),
            st.builds(Tampered, zone=zone_ids),
            st.builds(ZoneOffline, zone=zone_ids),
            st.just(Tick()),
        ),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(ArmMode)),
    st.frozensets(st.sampled_from(list(ZONES)), min_size=1),
    bypass_scripts,
)
def test_bypassed_zones_never_trigger(
    mode: ArmMode, bypassed: frozenset[str], script: list[tuple[float, Event]]
) -> None:
    arm = ArmRequest(
        mode=mode, code=CodeCheck(result="valid"), source=Source(kind="app"), bypass=bypassed
    )
    state, effects = step(CONFIG, PanelState(), arm, T0)
    assert state.bypassed == bypassed
    now = T0
    for gap, event in script:
        now += timedelta(seconds=gap)
        state, effects = step(CONFIG, state, event, now)
        for effect in effects:
            if isinstance(effect, AlarmRaised):
                assert effect.zone not in bypassed
            if isinstance(effect, StatusChanged) and effect.new in TIMED[1:]:
                assert state.alarm_zone not in bypassed
