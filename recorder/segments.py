"""Cutting a camera's packets into fragmented MP4 segments, remuxed, never decoded.

A segment starts on a video keyframe and is closed at the first keyframe
after ``segment_s`` seconds of video (so it is one GOP long if the camera's
GOP is longer). Each file is a fragmented MP4 (empty ``moov``, then
``moof``+``mdat`` pairs of at most ``fragment_s`` seconds, flushed to the OS
as written): a kill -9 leaves the open file readable up to its last complete
fragment, which the start-up scan salvages. Timestamps are rebased to 0 in
every segment; a segment's start is the wall-clock UTC time its first packet
arrived, its end that plus the video's own duration.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import av
from av.container import OutputContainer
from av.stream import Stream

from recorder.archive import salvage
from recorder.layout import SegmentInfo, finalize, make_dirs, part_path

log = logging.getLogger(__name__)

#: Audio codecs the MP4 muxer takes as they are; others (G.711 from most IP
#: cameras) would need transcoding, which the recording path never does.
MP4_AUDIO = frozenset({"aac", "mp3", "opus", "alac", "flac"})
#: A jump in the camera's timestamps larger than this starts a new segment.
MAX_DTS_JUMP_S = 10.0

SegmentCallback = Callable[[SegmentInfo], None]
MotionQuery = Callable[[datetime, datetime], bool]


def _no_motion(_start: datetime, _end: datetime) -> bool:
    return False


@dataclass
class _Open:
    """The segment being written: its file, streams and timestamp bookkeeping.

    Timestamps stay integers in each stream's time base (``origin`` is the
    segment's start in each); Fractions per packet would cost more than the
    muxing itself.
    """

    path: Path
    start: datetime
    container: OutputContainer
    streams: dict[int, Stream]
    origin: dict[int, int]
    last_dts: dict[int, int] = field(default_factory=dict)
    video_end: int = 0


class SegmentWriter:
    """Writes one camera's segments; one instance per camera, used from one thread.

    ``begin`` is called for each new connection with its streams, ``write``
    for each packet (the packet is consumed: its timestamps are rebased),
    ``end`` when the connection ends or the recorder stops. Each closed
    segment is passed to ``on_segment`` after it is final on disk.
    """

    def __init__(
        self,
        camera: str,
        archive_dir: Path,
        on_segment: SegmentCallback,
        *,
        segment_s: float = 10.0,
        fragment_s: float = 1.0,
        motion_between: MotionQuery = _no_motion,
    ) -> None:
        self.camera = camera
        self.archive_dir = archive_dir
        self.on_segment = on_segment
        self.segment_s = segment_s
        self.fragment_s = fragment_s
        self.motion_between = motion_between
        self._streams: dict[int, Stream] = {}  # the recorded input streams by index
        self._seconds: dict[int, float] = {}  # their time bases as floats
        self._video = -1
        self._open: _Open | None = None
        self._failing = False  # writing failed (disk full?): log once, not every keyframe
        self._room = 1  # free bytes to try again after a failure: the last good segment's size

    def begin(self, video: av.VideoStream, audio: av.AudioStream | None) -> None:
        """Take the streams of a new connection; the next keyframe opens a segment."""
        self.end()
        self._video = video.index
        self._streams = {video.index: video}
        if audio is not None and audio.codec_context.name in MP4_AUDIO:
            self._streams[audio.index] = audio
        elif audio is not None:
            log.info(
                "%s: not recording %s audio (MP4 takes it only transcoded)",
                self.camera,
                audio.codec_context.name,
            )
        # A stream without a time base cannot be timed: its packets are skipped.
        self._seconds = {i: float(s.time_base) for i, s in self._streams.items() if s.time_base}

    def write(self, packet: av.Packet[Stream], wall: datetime) -> None:
        """Mux one packet into the open segment, cutting on keyframes."""
        index = packet.stream_index
        tick = self._seconds.get(index)
        dts = packet.dts
        if tick is None or dts is None:
            return
        is_video = index == self._video
        seg = self._open
        if is_video and seg is not None:
            last = seg.last_dts.get(index)
            if last is not None and (dts < last or (dts - last) * tick > MAX_DTS_JUMP_S):
                log.warning("%s: camera timestamps jumped; starting a new segment", self.camera)
                self._close()
                seg = None
            elif packet.is_keyframe and (dts - seg.origin[index]) * tick >= self.segment_s:
                self._close()
                seg = None
        if seg is None:
            if not (is_video and packet.is_keyframe) or not self._has_room():
                return
            try:
                seg = self._open = self._start(dts * tick, wall)
            except (av.FFmpegError, OSError) as exc:
                self._failed(f"cannot open a segment ({exc}); retrying when there is room")
                return
        self._mux(seg, packet, dts, is_video)

    def _has_room(self) -> bool:
        """After a failure, a new segment waits for room for one like the last
        good one: opening and deleting a file at every keyframe of a full disk
        records nothing and floods the log."""
        if not self._failing:
            return True
        try:
            return shutil.disk_usage(self.archive_dir).free >= self._room
        except OSError:
            return True  # let the open fail and say why

    def end(self) -> None:
        """Close the open segment, if any (disconnect or stop)."""
        if self._open is not None:
            self._close()

    def _start(self, origin_s: float, wall: datetime) -> _Open:
        path = part_path(self.archive_dir, self.camera, wall)
        while path.exists():  # two starts within a millisecond: keep both
            wall += timedelta(milliseconds=1)
            path = part_path(self.archive_dir, self.camera, wall)
        make_dirs(path.parent)
        container = av.open(
            str(path),
            "w",
            format="mp4",
            options={
                "movflags": "frag_keyframe+empty_moov+default_base_moof",
                "frag_duration": str(round(self.fragment_s * 1_000_000)),
                "flush_packets": "1",
            },
        )
        streams = {i: container.add_stream_from_template(self._streams[i]) for i in self._seconds}
        origin = {i: round(origin_s / tick) for i, tick in self._seconds.items()}
        return _Open(path, wall, container, streams, origin)

    def _mux(self, seg: _Open, packet: av.Packet[Stream], dts: int, is_video: bool) -> None:
        index = packet.stream_index
        last = seg.last_dts.get(index)
        if last is not None and dts <= last:
            return  # the muxer refuses non-increasing timestamps; the frame is a duplicate
        origin = seg.origin[index]
        if dts < origin:
            return  # audio from before the segment's first keyframe
        seg.last_dts[index] = dts
        if is_video:
            seg.video_end = dts + (packet.duration or 0) - origin
        packet.dts = dts - origin
        pts = packet.pts
        if pts is not None:
            packet.pts = pts - origin
        packet.stream = seg.streams[index]
        try:
            seg.container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            self._failed(f"writing {seg.path} failed ({exc}); keeping what reached the disk")
            self._abandon(seg)

    def _failed(self, message: str) -> None:
        if not self._failing:
            log.error("%s: %s", self.camera, message)
        self._failing = True

    def _close(self) -> None:
        seg = self._open
        assert seg is not None
        self._open = None
        try:
            seg.container.close()
        except (av.FFmpegError, OSError) as exc:
            log.error("%s: closing %s failed (%s)", self.camera, seg.path, exc)
            self._salvage(seg)
            return
        duration = seg.video_end * self._seconds[self._video]
        end = seg.start + timedelta(seconds=duration)
        motion = self.motion_between(seg.start, end)
        try:
            info = finalize(
                seg.path,
                self.camera,
                seg.start,
                duration=duration,
                motion=motion,
                keyframe=True,
            )
        except OSError:
            log.exception(
                "%s: cannot finalize %s; the next start-up scan will", self.camera, seg.path
            )
            return
        self._room = max(info.bytes, 1)
        if self._failing:  # only a whole segment on disk says the trouble is over
            log.warning("%s: recording again", self.camera)
            self._failing = False
        self._publish(info)

    def _abandon(self, seg: _Open) -> None:
        """After a write error (disk full, I/O): keep what reached the disk, as a crash would."""
        self._open = None
        try:
            seg.container.close()
        except (av.FFmpegError, OSError):
            log.debug("%s: closing a failed segment failed too", self.camera, exc_info=True)
        self._salvage(seg)

    def _salvage(self, seg: _Open) -> None:
        try:
            info = salvage(self.camera, seg.path)
        except OSError:
            log.exception(
                "%s: cannot salvage %s; the next start-up scan will", self.camera, seg.path
            )
            return
        if info is not None:
            self._publish(info)

    def _publish(self, info: SegmentInfo) -> None:
        try:
            self.on_segment(info)
        except Exception:
            log.exception("%s: on_segment failed for %s", self.camera, info.path)
