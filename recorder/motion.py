"""Motion on a small grayscale frame, against a slowly adapting background.

The method is the one Frigate's improved detector made the norm for NVRs:
shrink the frame to ~100 px high, blur away sensor noise, compare with a
running average of past frames, threshold the difference, dilate, and count
contours larger than a minimum area. Masked areas (a tree, a road, a clock
overlay) are blacked out before comparing. A sudden change of most of the
picture (lights on, IR switching) is not motion: the background is reset.
:class:`MotionTracker` turns the per-frame answers into ranges with
hysteresis, so one noisy frame starts nothing and a pause does not split one
walk across the room into many ranges.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import cv2
import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[np.uint8]
_KERNEL = np.ones((3, 3), np.uint8)
#: A mask polygon: (x, y) corners as fractions of the frame's width and height.
Polygon = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class MotionConfig:
    """Per-camera motion settings.

    ``threshold``: how much a pixel must differ from the background (0-255);
    ``contour_area``: the smallest changed area counted, in pixels of the
    ``frame_height``-high frame; ``mask``: polygons ignored; ``background_s``:
    how fast the background absorbs a change (seconds); ``start_frames`` and
    ``still_s``: the tracker's hysteresis; ``detect_fps``: frames analysed per
    second; ``keyframes_only``: decode only keyframes (cheapest; about one
    frame per GOP) — None means yes on a main stream, no on a sub-stream.
    """

    threshold: int = 30
    contour_area: int = 30
    frame_height: int = 100
    mask: tuple[Polygon, ...] = ()
    background_s: float = 20.0
    lightning_fraction: float = 0.8
    start_frames: int = 2
    still_s: float = 10.0
    detect_fps: float = 5.0
    keyframes_only: bool | None = None


class MotionDetector:
    """Answers "is there motion in this frame?" for one camera's stream of frames."""

    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._avg: npt.NDArray[np.float32] | None = None
        self._mask: npt.NDArray[np.bool_] | None = None
        self._last: datetime | None = None
        self._moving_since: datetime | None = None

    def small_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) frames are shrunk to before analysis."""
        h = min(self.config.frame_height, height)
        return max(1, round(width * h / height)), h

    def detect(self, gray: Gray, at: datetime) -> bool:
        """Compare a small grayscale frame (see :meth:`small_size`) with the background."""
        frame = cv2.GaussianBlur(gray, (5, 5), 0)
        if self._mask is None or self._mask.shape != frame.shape:
            self._mask = _mask(self.config.mask, frame.shape)
            self._avg = None
        frame[self._mask] = 0
        if self._avg is None or self._last is None:
            self._avg = frame.astype(np.float32)
            self._last = at
            return False
        alpha = min(1.0, max(0.0, (at - self._last).total_seconds()) / self.config.background_s)
        self._last = at
        delta = cv2.absdiff(frame, cv2.convertScaleAbs(self._avg))
        _, changed = cv2.threshold(delta, self.config.threshold, 255, cv2.THRESH_BINARY)
        changed = cv2.dilate(changed, _KERNEL)
        contours, _ = cv2.findContours(changed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        areas = [cv2.contourArea(c) for c in contours]
        if sum(areas) > self.config.lightning_fraction * frame.size:
            self._avg = frame.astype(np.float32)  # the whole picture changed: new background
            self._moving_since = None
            return False
        moving = any(a > self.config.contour_area for a in areas)
        if not moving:
            self._moving_since = None
        elif self._moving_since is None:
            self._moving_since = at
        # A change that stays (a parked car) joins the background after a while;
        # while something moves, the background holds still so it cannot absorb it.
        settled = (
            self._moving_since is not None
            and (at - self._moving_since).total_seconds() > self.config.background_s
        )
        if not moving or settled:
            cv2.accumulateWeighted(frame, self._avg, alpha)
        return moving


def _mask(polygons: Sequence[Polygon], shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """True where a mask polygon covers the frame."""
    height, width = shape[:2]
    canvas = np.zeros((height, width), np.uint8)
    for polygon in polygons:
        points = np.array([[x * (width - 1), y * (height - 1)] for x, y in polygon], np.int32)
        cv2.fillPoly(canvas, [points], 255)
    return canvas > 0


@dataclass(frozen=True)
class MotionRange:
    """A span of motion on one camera, from its first to its last moving frame."""

    camera: str
    start: datetime
    end: datetime


MotionCallback = Callable[[MotionRange], None]


class MotionTracker:
    """Per-frame motion answers in, motion ranges out, with hysteresis.

    A range starts after ``start_frames`` moving frames in a row (dated from
    the first of them) and ends once nothing has moved for ``still_s``
    seconds (dated at the last moving frame). Fed by the detection thread,
    queried by the recording thread: every method takes the lock.
    """

    def __init__(
        self, camera: str, config: MotionConfig, on_motion: MotionCallback | None = None
    ) -> None:
        self.camera = camera
        self.start_frames = config.start_frames
        self.still = timedelta(seconds=config.still_s)
        self.on_motion = on_motion
        self._lock = threading.Lock()
        self._run: tuple[datetime, datetime, int] | None = None  # first, last, count
        self._open: MotionRange | None = None
        self._recent: deque[MotionRange] = deque(maxlen=64)

    def update(self, moving: bool, at: datetime) -> None:
        """One analysed frame's answer."""
        closed: MotionRange | None = None
        with self._lock:
            if moving:
                first, count = (at, 1) if self._run is None else (self._run[0], self._run[2] + 1)
                self._run = (first, at, count)
                if self._open is not None:
                    self._open = MotionRange(self.camera, self._open.start, at)
                elif count >= self.start_frames:
                    self._open = MotionRange(self.camera, first, at)
            else:
                self._run = None
                if self._open is not None and at - self._open.end >= self.still:
                    closed, self._open = self._open, None
                    self._recent.append(closed)
        if closed is not None and self.on_motion is not None:
            self.on_motion(closed)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether any known motion (closed, open, or starting) touches [start, end]."""
        with self._lock:
            spans = [(r.start, r.end) for r in self._recent]
            if self._open is not None:
                spans.append((self._open.start, self._open.end))
            if self._run is not None:
                spans.append((self._run[0], self._run[1]))
        return any(s <= end and e >= start for s, e in spans)

    def flush(self) -> None:
        """Close an open range now (the recorder stops)."""
        with self._lock:
            closed, self._open = self._open, None
            self._run = None
            if closed is not None:
                self._recent.append(closed)
        if closed is not None and self.on_motion is not None:
            self.on_motion(closed)
