"""The live relay: one RTSP connection per camera, its encoded packets fanned out to every viewer.

go2rtc's model: the first viewer of a camera opens the upstream (a
:class:`recorder.source.CameraSource`, so the recorder's RTSP options, timeouts and reconnect
backoff); later viewers share it; ``idle_s`` after the last one leaves, it is closed. Nothing is
decoded but audio that WebRTC cannot carry (AAC), which is transcoded to G.711 once per camera:
each viewer's track hands the camera's H.264 access units and audio packets to aiortc, whose
sender only cuts them into RTP packets.

The upstream reads in a thread (PyAV blocks in ``demux``) and hands each packet to the event loop
with one ``call_soon_threadsafe``; fan-out, viewer queues and the idle timer live on the loop
only, so none of them needs a lock.

A viewer starts at a keyframe — after it joins, after a reconnect, and after its queue overflowed
— because a decoder can do nothing before one. An RTSP camera cannot be asked for a keyframe, so
a viewer joining a running upstream waits up to one GOP.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from prometheus_client import Counter, Gauge

from recorder.live_media import (
    Packet,
    StreamInfo,
    Timeline,
    ToPcmu,
    audio_parts,
    describe,
    repack,
    with_parameter_sets,
)
from recorder.source import CameraSource

log = logging.getLogger(__name__)

UPSTREAMS = Gauge("moydom_live_upstreams", "Open live upstreams (RTSP readers) of this process")
UPSTREAM_SESSIONS = Counter(
    "moydom_live_upstream_sessions_total", "RTSP connections the live relay opened"
)

VIDEO_QUEUE = 120
"""Packets a viewer may lag behind (about 4 s at 30 fps) before it skips to the next keyframe."""
AUDIO_QUEUE = 200


class CameraUnavailable(Exception):
    """The camera delivered nothing within the open timeout."""


class CodecNotRelayable(Exception):
    """The camera's video cannot reach a browser without transcoding, which the relay never does."""


class RelayTrack(MediaStreamTrack):
    """One viewer's video or audio: the upstream's packets (video from a keyframe on)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue[Packet | None] = asyncio.Queue(
            VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE
        )
        self._synced = kind == "audio"
        self.on_first: Callable[[], None] | None = None
        """Called once, when the first packet goes to the sender: time to first frame."""

    def offer(self, packet: Packet, keyframe: bool) -> None:
        """Queue a packet; a video viewer that fell a queue behind skips to the next keyframe."""
        if self._queue.full():
            if self.kind == "video":
                self._clear()
                self._synced = False
            else:
                self._queue.get_nowait()
        if not self._synced:
            if not keyframe:
                return
            self._synced = True
        self._queue.put_nowait(packet)

    def resync(self) -> None:
        """The upstream reconnected: video waits for the new session's first keyframe."""
        self._synced = self.kind == "audio"

    def end(self) -> None:
        """The upstream is gone for good: ``recv`` raises once the queue is drained."""
        if self._queue.full():
            self._clear()
        self._queue.put_nowait(None)

    def _clear(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    async def recv(self) -> Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        if self.on_first is not None:
            self.on_first()
            self.on_first = None
        return packet


class Viewer:
    """One viewer of one camera: its tracks, until :meth:`close`."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.video = RelayTrack("video")
        self.audio: RelayTrack | None = RelayTrack("audio")

    @property
    def info(self) -> StreamInfo:
        assert self.upstream.info is not None  # a viewer is handed out once the upstream is ready
        return self.upstream.info

    def close(self) -> None:
        """Leave; the last viewer to leave starts the upstream's idle timer."""
        self.upstream.detach(self)


class Upstream:
    """One camera's RTSP reader, shared by its viewers; closed ``idle_s`` after the last left."""

    def __init__(
        self,
        camera: str,
        url: str,
        loop: asyncio.AbstractEventLoop,
        idle_s: float,
        on_closed: Callable[[Upstream], None],
    ) -> None:
        self.camera, self.url = camera, url
        self.viewers: set[Viewer] = set()
        self.ready = asyncio.Event()
        self.info: StreamInfo | None = None
        self.stopped = threading.Event()
        self._loop, self._idle_s, self._on_closed = loop, idle_s, on_closed
        self._idle: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._read, name=f"live-{camera}", daemon=True)

    @property
    def alive(self) -> bool:
        """Whether the reader thread (and so at most one RTSP connection) still runs."""
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def attach(self, viewer: Viewer) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self.viewers.add(viewer)

    def detach(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        if not self.viewers and not self.stopped.is_set() and self._idle is None:
            self._idle = self._loop.call_later(self._idle_s, self._close_idle)

    def _close_idle(self) -> None:
        self._idle = None
        if not self.viewers:
            log.info(
                "live %s: no viewers for %.0f s; closing the upstream", self.camera, self._idle_s
            )
            self.stop()

    def stop(self) -> None:
        """Stop reading (the thread closes the connection at its next packet or timeout); new
        viewers of the camera get a new upstream from now on."""
        if not self.stopped.is_set():
            self.stopped.set()
            self._on_closed(self)

    def _gone(self) -> None:
        """The reader ended (stopped, or a bug below): the viewers' tracks end with it."""
        self.stop()
        for viewer in list(self.viewers):
            viewer.video.end()
            if viewer.audio is not None:
                viewer.audio.end()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    # -- the reader thread ---------------------------------------------------------------

    def _read(self) -> None:
        UPSTREAMS.inc()
        try:
            self._sessions()
        except Exception:
            log.exception("live %s: the upstream reader failed", self.camera)
        finally:
            UPSTREAMS.dec()
            self._post(self._gone)

    def _sessions(self) -> None:
        source = CameraSource(self.camera, self.url, self.stopped)
        video_time, audio_time = Timeline(), Timeline()
        for session in source.sessions():
            info = describe(session)
            UPSTREAM_SESSIONS.inc()
            transcode, warned = None, False
            if info.audio_transcoded and session.audio is not None:
                log.info(
                    "live %s: audio is %s, which WebRTC cannot carry: transcoding it to %s",
                    self.camera,
                    info.audio_codec,
                    info.audio_mime,
                )
                transcode = ToPcmu(session.audio)
            self._post(self._begin, info)
            video_time.restart()
            audio_time.restart()
            video = session.video.index
            audio = session.audio.index if session.audio is not None and info.audio_mime else None
            extradata = session.video.codec_context.extradata
            for demuxed in session.packets():
                packet = demuxed
                pts = packet.pts if packet.pts is not None else packet.dts
                assert pts is not None and packet.time_base is not None  # packets() drops others
                now = time.monotonic()
                if packet.stream_index == video:
                    keyframe = packet.is_keyframe
                    if keyframe:
                        packet = repack(packet, with_parameter_sets(bytes(packet), extradata))
                    packet.pts = video_time.place(pts, packet.time_base, now)
                    self._post(self._fan_video, packet, keyframe)
                elif packet.stream_index == audio and transcode is not None:
                    for part in transcode.feed(packet):
                        assert part.pts is not None and part.time_base is not None
                        part.pts = audio_time.place(part.pts, part.time_base, now)
                        self._post(self._fan_audio, part)
                    if transcode.failed is not None and not warned:
                        warned = True
                        log.warning(
                            "live %s: audio does not decode: %s", self.camera, transcode.failed
                        )
                elif packet.stream_index == audio:
                    packet.pts = audio_time.place(pts, packet.time_base, now)
                    for part in audio_parts(packet, info):
                        self._post(self._fan_audio, part)

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        """Run ``callback`` on the loop; a closed loop (process exit) stops the reader."""
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            self.stopped.set()

    # -- on the loop ---------------------------------------------------------------------

    def _begin(self, info: StreamInfo) -> None:
        self.info = info
        self.ready.set()
        for viewer in self.viewers:
            viewer.video.resync()

    def _fan_video(self, packet: Packet, keyframe: bool) -> None:
        for viewer in self.viewers:
            viewer.video.offer(packet, keyframe)

    def _fan_audio(self, packet: Packet) -> None:
        for viewer in self.viewers:
            if viewer.audio is not None:
                viewer.audio.offer(packet, True)


class LiveRelay:
    """The upstreams of one process, keyed by camera and URL (a changed URL is a new camera)."""

    def __init__(self, *, idle_s: float = 10.0, open_timeout_s: float = 10.0) -> None:
        self.idle_s = idle_s
        self.open_timeout_s = open_timeout_s
        self._upstreams: dict[tuple[str, str], Upstream] = {}
        self._all: list[Upstream] = []

    @property
    def open_upstreams(self) -> int:
        """Upstreams whose reader still runs, each holding at most one RTSP connection."""
        return sum(upstream.alive for upstream in self._all)

    async def watch(self, camera: str, url: str) -> Viewer:
        """A new viewer of ``camera``, once its upstream has opened (the first viewer opens it).

        Raises :class:`CameraUnavailable` or :class:`CodecNotRelayable`."""
        upstream = self._upstreams.get((camera, url))
        if upstream is None:
            upstream = Upstream(camera, url, asyncio.get_running_loop(), self.idle_s, self._forget)
            self._upstreams[(camera, url)] = upstream
            self._all = [u for u in self._all if u.alive] + [upstream]
            upstream.start()
        viewer = Viewer(upstream)
        upstream.attach(viewer)
        try:
            await asyncio.wait_for(upstream.ready.wait(), self.open_timeout_s)
        except TimeoutError:
            viewer.close()
            raise CameraUnavailable(
                f"camera {camera} sent nothing for {self.open_timeout_s:.0f} s"
            ) from None
        except BaseException:  # cancelled (the client went away): no viewer left behind
            viewer.close()
            raise
        info = viewer.info
        if not info.relayable:
            viewer.close()
            raise CodecNotRelayable(
                f"camera {camera} sends {info.video_codec}; live view passes H.264 only "
                "(set the camera, or its sub-stream, to H.264)"
            )
        if info.audio_mime is None:
            viewer.audio = None
        return viewer

    def _forget(self, upstream: Upstream) -> None:
        key = (upstream.camera, upstream.url)
        if self._upstreams.get(key) is upstream:
            del self._upstreams[key]

    def close(self, timeout: float = 10.0) -> None:
        """Stop every upstream and wait for the readers (process shutdown)."""
        for upstream in self._all:
            upstream.stopped.set()
        for upstream in self._all:
            upstream.join(timeout)
        self._upstreams.clear()
