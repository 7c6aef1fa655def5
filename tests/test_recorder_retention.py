"""The retention planner: expiry per policy, eviction below the floor, held footage kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from recorder.retention import DiskSpace, RetentionPolicy, StoredSegment, plan

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MB = 1_000_000


def seg(
    camera: str,
    age_days: float,
    size: int = MB,
    *,
    motion: bool = False,
    held: bool = False,
    event: bool = False,
) -> StoredSegment:
    end = NOW - timedelta(days=age_days)
    start = end - timedelta(seconds=10)
    path = Path(f"/a/{camera}/{start:%Y%m%d%H%M%S%f}.mp4")
    return StoredSegment(path, camera, start, end, size, motion, held, event)


ROOMY = DiskSpace(free_bytes=100 * MB, floor_bytes=10 * MB)


def test_continuous_footage_expires_after_its_days() -> None:
    old, young = seg("hall", 7.01), seg("hall", 6.99)
    result = plan([old, young], {}, NOW, ROOMY)
    assert result.expired == (old,) and result.evicted == ()
    assert not result.below_floor and not result.held_only
    assert result.free_after == 101 * MB


def test_motion_and_event_footage_keep_their_longer_periods() -> None:
    policy = RetentionPolicy(continuous_days=2, motion_days=5, event_days=30)
    plain, motion, event = seg("yard", 3), seg("yard", 3, motion=True), seg("yard", 20, event=True)
    old_motion = seg("yard", 6, motion=True)
    result = plan([plain, motion, event, old_motion], {"yard": policy}, NOW, ROOMY)
    assert set(result.expired) == {plain, old_motion}


def test_each_camera_has_its_own_policy_and_others_the_default() -> None:
    short = RetentionPolicy(continuous_days=1, motion_days=1, event_days=1)
    a, b = seg("a", 2), seg("b", 2)
    result = plan([a, b], {"a": short}, NOW, ROOMY, default=RetentionPolicy())
    assert result.expired == (a,)


def test_held_footage_never_expires() -> None:
    held = seg("hall", 400, held=True)
    assert plan([held], {}, NOW, ROOMY).delete == ()


def test_below_the_floor_the_oldest_unheld_footage_goes_first_across_cameras() -> None:
    oldest_held = seg("a", 5, held=True)
    older, old, newer = seg("b", 4), seg("a", 3), seg("b", 1)
    disk = DiskSpace(free_bytes=8 * MB, floor_bytes=10 * MB)
    result = plan([newer, old, oldest_held, older], {}, NOW, disk)
    assert result.evicted == (older, old)
    assert result.below_floor and not result.held_only
    assert result.free_after == 10 * MB


def test_expiry_counts_before_eviction() -> None:
    expired = seg("a", 8, size=5 * MB)
    kept = seg("a", 1)
    result = plan([expired, kept], {}, NOW, DiskSpace(free_bytes=6 * MB, floor_bytes=10 * MB))
    assert result.expired == (expired,) and result.evicted == ()
    assert not result.below_floor


def test_only_held_footage_left_below_the_floor_is_reported() -> None:
    held = [seg("a", d, held=True) for d in (1, 2, 3)]
    unheld = seg("b", 4)
    result = plan([*held, unheld], {}, NOW, DiskSpace(free_bytes=0, floor_bytes=10 * MB))
    assert result.evicted == (unheld,)
    assert result.below_floor and result.held_only
    assert result.free_after == MB


segments = st.lists(
    st.builds(
        seg,
        camera=st.sampled_from(["a", "b", "c"]),
        age_days=st.floats(min_value=0, max_value=40),
        size=st.integers(min_value=1, max_value=50 * MB),
        motion=st.booleans(),
        held=st.booleans(),
        event=st.booleans(),
    ),
    max_size=40,
    unique_by=lambda s: s.path,
)
policies = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.builds(
        RetentionPolicy,
        continuous_days=st.floats(min_value=0, max_value=30),
        motion_days=st.floats(min_value=0, max_value=30),
        event_days=st.floats(min_value=0, max_value=30),
    ),
)
disks = st.builds(
    DiskSpace,
    free_bytes=st.integers(min_value=0, max_value=500 * MB),
    floor_bytes=st.integers(min_value=0, max_value=500 * MB),
)


@given(segments, policies, disks)
def test_plans_never_touch_held_footage_and_evict_oldest_first(
    stored: list[StoredSegment], policy: dict[str, RetentionPolicy], disk: DiskSpace
) -> None:
    result = plan(stored, policy, NOW, disk)
    deleted = set(result.delete)
    assert len(deleted) == len(result.delete), "nothing planned twice"
    assert not any(s.held for s in deleted)
    assert result.free_after == disk.free_bytes + sum(s.bytes for s in deleted)
    for s in result.expired:
        assert NOW - s.end > policy.get(s.camera, RetentionPolicy()).keep_for(s)
    remaining = [s for s in stored if s not in deleted]
    for s in remaining:
        assert s.held or NOW - s.end <= policy.get(s.camera, RetentionPolicy()).keep_for(s)
    if result.evicted:
        assert result.below_floor
        newest_evicted = max(s.start for s in result.evicted)
        assert all(s.held or s.start >= newest_evicted for s in remaining)
        # Eviction stops as soon as the floor is reached.
        assert result.free_after - result.evicted[-1].bytes < disk.floor_bytes
    assert result.held_only == (result.free_after < disk.floor_bytes)
    if result.held_only:
        assert all(s.held for s in remaining)
