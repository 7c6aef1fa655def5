"""A camera over RTSP: PyAV on TCP, packets without decoding, reconnecting with backoff.

When the camera's server goes away, PyAV's ``demux`` simply ends; a stalled
connection raises after the socket timeout. Both are a disconnect. The source
then reconnects with exponential backoff (capped) and reports each change of
availability once — the gateway stores them like a device's availability.
PyAV errors never leave this module: a session just ends, with a reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import av
from av.container import InputContainer
from av.stream import Stream

log = logging.getLogger(__name__)

#: FFmpeg's RTSP options: TCP (no UDP loss or NAT trouble), a short probe so a
#: connection starts in about a second, and a socket timeout in µs. The socket
#: timeout is what turns a silent camera into a disconnect (an open fails
#: after ~3 s, a stalled read after ~6 s). PyAV's own ``timeout=`` is not
#: used: its interrupt callback takes the GIL on every socket poll (over a
#: thousand a second for a 1080p camera), which cost more CPU than all of
#: the recorder's Python code.
RTSP_OPTIONS = {
    "rtsp_transport": "tcp",
    "timeout": "3000000",
    "analyzeduration": "1000000",
    "probesize": "500000",
}


@dataclass(frozen=True)
class CameraStatus:
    """A change of a camera's availability."""

    camera: str
    online: bool
    at: datetime
    reason: str


StatusCallback = Callable[[CameraStatus], None]


@dataclass
class Backoff:
    """Delays between reconnects: ``initial``, doubling up to ``cap`` seconds."""

    initial: float = 0.5
    cap: float = 30.0
    _next: float = 0.0

    def reset(self) -> None:
        """A connection worked: the next failure retries quickly again."""
        self._next = 0.0

    def next(self) -> float:
        """The delay before the next attempt."""
        self._next = self.initial if self._next == 0 else min(self._next * 2, self.cap)
        return self._next


class Session:
    """One connection: its streams and its packets until the connection ends."""

    def __init__(
        self, container: InputContainer, stop: threading.Event, on_first: Callable[[], None]
    ) -> None:
        self.container = container
        self.video: av.VideoStream = container.streams.video[0]
        audio = container.streams.audio
        self.audio: av.AudioStream | None = audio[0] if audio else None
        self.reason = "end of stream"
        self.delivered = False
        self._stop = stop
        self._on_first = on_first

    def packets(self) -> Iterator[av.Packet[Stream]]:
        """Packets of the video (and audio) stream, until EOF, an error or stop."""
        streams: list[Stream] = [self.video] if self.audio is None else [self.video, self.audio]
        try:
            for packet in self.container.demux(streams):
                if self._stop.is_set():
                    self.reason = "stopped"
                    return
                if packet.dts is None:
                    continue  # the demuxer's flush packets at EOF, or a packet before timing
                if not self.delivered:
                    self.delivered = True
                    self._on_first()
                yield packet
        except (av.FFmpegError, OSError) as exc:
            self.reason = f"read failed: {exc}"


class CameraSource:
    """Sessions on one camera URL, for as long as ``stop`` is not set."""

    def __init__(
        self,
        camera: str,
        url: str,
        stop: threading.Event,
        on_status: StatusCallback | None = None,
    ) -> None:
        self.camera = camera
        self.url = url
        self.stop = stop
        self.on_status = on_status
        self.backoff = Backoff()
        self.online: bool | None = None

    def sessions(self) -> Iterator[Session]:
        """Yield a session per successful connection; reconnect after each ends.

        The consumer reads ``session.packets()`` to the end, then asks for the
        next session; the source closes the old one and waits its backoff.
        """
        while not self.stop.is_set():
            try:
                container = av.open(self.url, options=RTSP_OPTIONS)
            except (av.FFmpegError, OSError) as exc:
                self._report(False, f"connect failed: {exc}")
                self.stop.wait(self.backoff.next())
                continue
            try:
                if not container.streams.video:
                    self._report(False, "no video stream")
                else:
                    session = Session(container, self.stop, self._streaming)
                    yield session
                    if session.delivered:
                        self.backoff.reset()
                    self._report(False, session.reason)
            finally:
                container.close()
            self.stop.wait(self.backoff.next())

    def _streaming(self) -> None:
        """Online at a session's first packet, not merely at connect."""
        self._report(True, "streaming")

    def _report(self, online: bool, reason: str) -> None:
        # Stopping the recorder says nothing about the camera: no offline then.
        if self.online is online or self.stop.is_set():
            return
        self.online = online
        log.info("%s %s: %s", self.camera, "online" if online else "offline", reason)
        if self.on_status is not None:
            try:
                self.on_status(CameraStatus(self.camera, online, datetime.now(UTC), reason))
            except Exception:
                log.exception("%s: on_status failed", self.camera)
