"""Motion: the detector on synthetic frames, the tracker's hysteresis, and real cameras.

A still scene with sensor noise must give no motion range; a ball sweeping
over the same scene must — on the main stream (keyframes only) and on a
sub-stream (every frame at the detect rate).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from recorder.camera import CameraRecorder
from recorder.layout import SegmentInfo
from recorder.motion import Gray, MotionConfig, MotionDetector, MotionRange, MotionTracker
from tests.rtsp import RtspServer, scene
from tests.support import free_port

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SIZE = (100, 178)


def noisy_still(rng: np.random.Generator, sigma: float = 6.0) -> Gray:
    """A fixed gradient picture with fresh Gaussian sensor noise."""
    base = np.tile(np.linspace(40, 200, SIZE[1]), (SIZE[0], 1))
    return np.clip(base + rng.normal(0, sigma, SIZE), 0, 255).astype(np.uint8)


def with_block(frame: Gray, x: int, y: int = 40, side: int = 14) -> Gray:
    out = frame.copy()
    out[y : y + side, x : x + side] = 255
    return out


def run(detector: MotionDetector, frames: list[Gray], fps: float = 5.0) -> list[bool]:
    return [detector.detect(f, T0 + timedelta(seconds=i / fps)) for i, f in enumerate(frames)]


def test_a_noisy_still_scene_has_no_motion() -> None:
    rng = np.random.default_rng(1)
    answers = run(MotionDetector(MotionConfig()), [noisy_still(rng) for _ in range(100)])
    assert not any(answers)


def test_a_moving_block_is_motion_in_every_frame() -> None:
    rng = np.random.default_rng(2)
    frames = [noisy_still(rng) for _ in range(10)]
    frames += [with_block(noisy_still(rng), 10 + 8 * i) for i in range(15)]
    answers = run(MotionDetector(MotionConfig()), frames)
    assert not any(answers[:10]) and all(answers[10:])


def test_a_mask_hides_motion_inside_it_only() -> None:
    rng = np.random.default_rng(3)
    left_half = ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))
    detector = MotionDetector(MotionConfig(mask=(left_half,)))
    frames = [noisy_still(rng) for _ in range(5)]
    inside = [with_block(noisy_still(rng), 10 + 4 * i) for i in range(10)]
    outside = [with_block(noisy_still(rng), 110 + 4 * i) for i in range(10)]
    answers = run(detector, frames + inside + outside)
    assert not any(answers[:15]) and all(answers[16:])


def test_the_lights_going_on_is_not_motion() -> None:
    rng = np.random.default_rng(4)
    dark = [noisy_still(rng) // 4 for _ in range(10)]
    lit = [noisy_still(rng) for _ in range(10)]
    assert not any(run(MotionDetector(MotionConfig()), dark + lit))


def test_the_contour_area_sets_the_smallest_motion() -> None:
    rng = np.random.default_rng(5)
    frames = [noisy_still(rng) for _ in range(5)]
    frames += [with_block(noisy_still(rng), 20 + 3 * i, side=5) for i in range(5)]
    assert any(run(MotionDetector(MotionConfig(contour_area=20)), frames))
    assert not any(run(MotionDetector(MotionConfig(contour_area=80)), frames))


def track(answers: list[bool], start_frames: int = 2, still_s: float = 2.0) -> list[MotionRange]:
    ranges: list[MotionRange] = []
    config = MotionConfig(start_frames=start_frames, still_s=still_s)
    tracker = MotionTracker("hall", config, ranges.append)
    for i, moving in enumerate(answers):
        tracker.update(moving, T0 + timedelta(seconds=i))
    tracker.flush()
    return ranges


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


def test_a_single_moving_frame_starts_no_range() -> None:
    assert track([False, True, False, False, True, False]) == []


def test_a_range_runs_from_its_first_to_its_last_moving_frame() -> None:
    answers = [False, True, True, True, False, False, False, False]
    assert track(answers) == [MotionRange("hall", at(1), at(3))]


def test_a_short_pause_does_not_split_a_range_a_long_one_does() -> None:
    answers = [True, True, False, True, True, False, False, True, True, False, False, False]
    assert track(answers) == [
        MotionRange("hall", at(0), at(4)),
        MotionRange("hall", at(7), at(8)),
    ]


def test_overlaps_sees_closed_open_and_starting_motion() -> None:
    tracker = MotionTracker("hall", MotionConfig(start_frames=2, still_s=2))
    for i, moving in enumerate([True, True, False, False, False, True]):
        tracker.update(moving, at(i))
    assert tracker.overlaps(at(1), at(1))  # the closed range 0-1
    assert not tracker.overlaps(at(2), at(4))
    assert tracker.overlaps(at(5), at(9))  # one moving frame, maybe the start of a range


@pytest.fixture(scope="module")
def cameras() -> Iterator[RtspServer]:
    """A still noisy scene and a ball over it, each with a 160x90 sub-stream."""
    mounts = {
        "/still": scene(320, 180, 10, noise=0.3),
        "/still-sub": scene(160, 90, 10, noise=0.3),
        "/ball": scene(320, 180, 10, noise=0.3, ball=True),
        "/ball-sub": scene(160, 90, 10, noise=0.3, ball=True),
    }
    with RtspServer(free_port(), mounts) as server:
        yield server


def record_motion(
    server: RtspServer, mount: str, tmp_path: Path, substream: bool, seconds: float = 8.0
) -> tuple[list[MotionRange], list[SegmentInfo]]:
    ranges: list[MotionRange] = []
    segments: list[SegmentInfo] = []
    online = threading.Event()
    recorder = CameraRecorder(
        mount.strip("/"),
        server.url(mount),
        tmp_path,
        segment_s=3,
        detect_url=server.url(f"{mount}-sub") if substream else None,
        motion=MotionConfig(still_s=2),
        on_segment=segments.append,
        on_motion=ranges.append,
        on_status=lambda s: online.set() if s.online else None,
    )
    recorder.start()
    try:
        assert online.wait(10)
        assert recorder.online
        time.sleep(seconds)
    finally:
        recorder.stop()
    return ranges, segments


@pytest.mark.slow
@pytest.mark.parametrize("substream", [False, True], ids=["main-keyframes", "substream"])
def test_a_still_noisy_camera_records_no_motion(
    cameras: RtspServer, tmp_path: Path, substream: bool
) -> None:
    ranges, segments = record_motion(cameras, "/still", tmp_path, substream)
    assert ranges == []
    assert segments and not any(s.motion for s in segments)


@pytest.mark.slow
@pytest.mark.parametrize("substream", [False, True], ids=["main-keyframes", "substream"])
def test_a_moving_ball_makes_a_motion_range_and_flags_its_segments(
    cameras: RtspServer, tmp_path: Path, substream: bool
) -> None:
    ranges, segments = record_motion(cameras, "/ball", tmp_path, substream)
    assert len(ranges) == 1  # continuous motion: one range, closed at stop
    (motion,) = ranges
    assert motion.end - motion.start >= timedelta(seconds=5)
    assert segments and all(s.motion for s in segments[1:])
    assert all(s.path.name.endswith("_motion.mp4") for s in segments if s.motion)
