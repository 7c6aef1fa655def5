"""The detect path: decoding a camera at a low rate for motion, on its own thread.

Decoding lives here and only here; the recording path never decodes. With a
sub-stream URL the worker keeps its own connection to it; otherwise the
recording thread hands it main-stream packets through a small queue that
drops (and resynchronises on the next keyframe) rather than ever slowing
the recording down. By default the main stream is decoded on keyframes only,
about one frame per GOP: decoding every frame of a 1080p stream costs more
than everything else the recorder does.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeAlias

import av
import numpy as np
from av.stream import Stream

from recorder.motion import MotionConfig, MotionDetector, MotionTracker
from recorder.source import CameraSource

log = logging.getLogger(__name__)

QUEUE_PACKETS = 64


@dataclass(frozen=True)
class _NewStream:
    """The recording thread connected again: a fresh decoder for these parameters."""

    codec: str
    extradata: bytes | None


if TYPE_CHECKING:  # PyAV's Packet is generic only to the type checker
    _Item: TypeAlias = _NewStream | tuple[av.Packet[Stream], datetime]


def _decoder(codec: str, extradata: bytes | None) -> av.VideoCodecContext:
    ctx = av.CodecContext.create(codec, "r")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.extradata = extradata
    _low_latency(ctx)
    return ctx


def _low_latency(ctx: av.VideoCodecContext) -> None:
    """One decoding thread: frame threads would hold frames back by a GOP each when
    only keyframes are fed, and the detect path should not take more cores anyway."""
    ctx.thread_type = "NONE"
    ctx.thread_count = 1


class MotionWorker:
    """Decodes frames, asks the detector, and tells the tracker; one thread per camera."""

    def __init__(
        self,
        camera: str,
        config: MotionConfig,
        tracker: MotionTracker,
        stop: threading.Event,
        detect_url: str | None = None,
    ) -> None:
        self.camera = camera
        self.config = config
        self.tracker = tracker
        self.stop = stop
        self.detect_url = detect_url
        keyframes = config.keyframes_only
        self.keyframes_only = detect_url is None if keyframes is None else keyframes
        self.detector = MotionDetector(config)
        self._queue: queue.Queue[_Item] = queue.Queue(QUEUE_PACKETS)
        self._resync = False
        self._last: datetime | None = None

    # -- fed by the recording thread (main-stream detection) --------------------

    def begin(self, video: av.VideoStream) -> None:
        """A new connection: drop the old one's queued packets, then send its decoder
        parameters through the queue, ahead of its packets; never blocks."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        ctx = video.codec_context
        self._queue.put_nowait(_NewStream(ctx.name, ctx.extradata))  # only this thread puts
        self._resync = False

    def offer(self, packet: av.Packet[Stream], wall: datetime) -> None:
        """A main-stream video packet; never blocks (a full queue drops it and the
        packets up to the next keyframe, which the decoder could not use)."""
        keyframe = packet.is_keyframe
        if (self.keyframes_only or self._resync) and not keyframe:
            return
        try:
            self._queue.put_nowait((packet, wall))
        except queue.Full:
            self._resync = True
        else:
            self._resync = False

    # -- the detect thread ----------------------------------------------------

    def run(self) -> None:
        """The thread body: until ``stop``; closes the open motion range at the end."""
        try:
            if self.detect_url is None:
                self._run_queue()
            else:
                self._run_substream(self.detect_url)
        finally:
            self.tracker.flush()

    def _run_queue(self) -> None:
        ctx: av.VideoCodecContext | None = None
        while not self.stop.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(item, _NewStream):
                ctx = _decoder(item.codec, item.extradata)
            elif ctx is not None:
                self._decode(ctx, *item)

    def _run_substream(self, url: str) -> None:
        source = CameraSource(f"{self.camera}/detect", url, self.stop)
        for session in source.sessions():
            ctx = session.video.codec_context
            _low_latency(ctx)
            for packet in session.packets():
                if self.keyframes_only and not packet.is_keyframe:
                    continue
                self._decode(ctx, packet, datetime.now(UTC))

    def _decode(self, ctx: av.VideoCodecContext, packet: av.Packet[Stream], at: datetime) -> None:
        try:
            frames = ctx.decode(packet)
        except av.FFmpegError as exc:
            log.debug("%s: decode error %s", self.camera, exc)
            return
        for frame in frames:
            due = (
                self._last is None
                or (at - self._last).total_seconds() >= 1 / self.config.detect_fps
            )
            if not due:
                continue
            self._last = at
            width, height = self.detector.small_size(frame.width, frame.height)
            gray = frame.reformat(width, height, "gray", interpolation="AREA").to_ndarray()
            small = np.asarray(gray, np.uint8)
            self.tracker.update(self.detector.detect(small, at), at)
