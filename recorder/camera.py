"""One camera's recorder: the source, the segment writer, the pre-roll and motion, wired.

Threads, not asyncio: PyAV blocks in ``demux`` and ``decode`` (releasing the
GIL), so each camera has a recording thread and, with motion detection, a
detect thread. The recording thread never decodes and never waits for the
detect thread. Callbacks run on those threads and must be quick and
thread-safe (the gateway queues them to its database writer).

Lifecycle: ``start()`` once, ``stop()`` once; ``stop`` closes the open
segment (it is final on disk and reported before ``stop`` returns) and the
open motion range. Run :func:`recorder.archive.scan` before ``start`` to
salvage what a crash left.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from recorder.detect import MotionWorker
from recorder.layout import check_camera
from recorder.motion import MotionCallback, MotionConfig, MotionTracker
from recorder.preroll import Preroll, PrerollBuffer
from recorder.segments import SegmentCallback, SegmentWriter
from recorder.source import CameraSource, StatusCallback

log = logging.getLogger(__name__)


def _ignore(_item: object) -> None:
    return None


class CameraRecorder:
    """Records one camera into ``archive_dir``; optionally detects motion.

    ``detect_url`` is the camera's sub-stream for motion detection (else the
    main stream's packets are decoded at a low rate); ``motion`` enables
    detection with its settings; ``preroll_s`` is the in-memory buffer's length.
    """

    def __init__(
        self,
        camera: str,
        url: str,
        archive_dir: Path,
        *,
        segment_s: float = 10.0,
        detect_url: str | None = None,
        motion: MotionConfig | None = None,
        on_segment: SegmentCallback = _ignore,
        on_motion: MotionCallback = _ignore,
        on_status: StatusCallback = _ignore,
        preroll_s: float = 5.0,
        fragment_s: float = 1.0,
    ) -> None:
        self.camera = check_camera(camera)
        self._stop = threading.Event()
        self.source = CameraSource(camera, url, self._stop, on_status)
        self.tracker: MotionTracker | None = None
        self.worker: MotionWorker | None = None
        self.writer = SegmentWriter(
            camera,
            archive_dir,
            on_segment,
            segment_s=segment_s,
            fragment_s=fragment_s,
        )
        if motion is not None:
            self.tracker = MotionTracker(camera, motion, on_motion)
            self.worker = MotionWorker(camera, motion, self.tracker, self._stop, detect_url)
            self.writer.motion_between = self.tracker.overlaps
        self.buffer = PrerollBuffer(camera, preroll_s)
        self._threads: list[threading.Thread] = []

    @property
    def online(self) -> bool:
        """Whether the camera is delivering video now."""
        return self.source.online is True

    def start(self) -> None:
        """Start the recording (and detect) threads."""
        if self._threads:
            raise RuntimeError(f"{self.camera}: already started")
        self._threads.append(
            threading.Thread(target=self._record, name=f"record-{self.camera}", daemon=True)
        )
        if self.worker is not None:
            self._threads.append(
                threading.Thread(target=self.worker.run, name=f"detect-{self.camera}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop, closing the open segment; returns when the threads have ended.

        Bounded by the socket timeout (a few seconds) if the camera is silent
        or being reconnected; immediate while it streams.
        """
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.error("%s: %s did not stop within %.0f s", self.camera, thread.name, timeout)

    def preroll(self) -> Preroll:
        """The last ``preroll_s`` seconds (or more, back to a keyframe) from memory."""
        return self.buffer.snapshot()

    def _record(self) -> None:
        """The recording thread: never gives up while not stopped, even on a bug below."""
        while not self._stop.is_set():
            try:
                self._sessions()
            except Exception:
                log.exception("%s: recording failed; restarting it", self.camera)
                self._stop.wait(self.source.backoff.next())
            finally:
                self.writer.end()

    def _sessions(self) -> None:
        """Sessions in, segments out. Each packet is buffered (with its original timing)
        before the writer rebases it, and offered to detection after: that thread must not
        see it while the writer changes it."""
        feed = self.worker if self.worker is not None and self.worker.detect_url is None else None
        for session in self.source.sessions():
            self.writer.begin(session.video, session.audio)
            self.buffer.begin(session.video, session.audio)
            if feed is not None:
                feed.begin(session.video)
            video = session.video.index
            for packet in session.packets():
                wall = datetime.now(UTC)
                self.buffer.add(packet, wall)
                self.writer.write(packet, wall)
                if feed is not None and packet.stream_index == video:
                    feed.offer(packet, wall)
            self.writer.end()
