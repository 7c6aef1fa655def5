"""The last few seconds of a camera, in memory, for clips that must start before their event.

An intercom call or an alarm asks for footage from *before* it happened. The
segment files hold it too, but the open one only up to its last fragment; the
buffer holds every packet of the last ``seconds`` (from a keyframe, so a clip
made from it plays from its first frame). It keeps the demuxed packets
themselves, no copy: the segment writer rebases their timestamps but never
touches their data, so the buffer keeps the original timing beside them.
It holds the current connection only; a reconnect empties it.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
from av.stream import Stream

from recorder.segments import MP4_AUDIO


class BufferedPacket(NamedTuple):
    """A packet with the timing it had when demuxed (its own fields get rebased)."""

    packet: av.Packet[Stream]
    stream_index: int
    pts: int | None
    dts: int
    duration: int
    time_base: Fraction
    keyframe: bool
    wall: datetime


class _Templates:
    """Copies of a connection's stream parameters that outlive the connection.

    An output container that is never written holds them, so a clip can be
    muxed after the camera's input container is closed.
    """

    def __init__(self, video: av.VideoStream, audio: av.AudioStream | None) -> None:
        self._holder = av.open(io.BytesIO(), "w", format="mp4")
        self.streams: dict[int, Stream] = {
            video.index: self._holder.add_stream_from_template(video)
        }
        if audio is not None and audio.codec_context.name in MP4_AUDIO:
            self.streams[audio.index] = self._holder.add_stream_from_template(audio)


@dataclass(frozen=True)
class Preroll:
    """A snapshot of the buffer: packets from a keyframe on, oldest first."""

    camera: str
    packets: tuple[BufferedPacket, ...]
    templates: _Templates | None

    @property
    def start(self) -> datetime | None:
        """Wall-clock time of the first packet, or None if the buffer was empty."""
        return self.packets[0].wall if self.packets else None

    def write_mp4(self, path: Path) -> float:
        """Write the packets to a standalone MP4 (``moov`` first); return its seconds of video."""
        if not self.packets or self.templates is None:
            raise ValueError(f"{self.camera}: the pre-roll buffer is empty")
        templates = self.templates.streams
        origin = float(self.packets[0].dts * self.packets[0].time_base)
        end = 0.0
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            streams = {i: out.add_stream_from_template(t) for i, t in templates.items()}
            for b in self.packets:
                if b.stream_index not in streams:
                    continue
                shift = round(origin / b.time_base)
                if b.dts < shift:
                    continue
                copy = av.Packet(bytes(b.packet))
                copy.time_base = b.time_base
                copy.dts = b.dts - shift
                copy.pts = None if b.pts is None else b.pts - shift
                copy.duration = b.duration
                copy.is_keyframe = b.keyframe
                copy.stream = streams[b.stream_index]
                out.mux(copy)
                end = max(end, float((b.dts + b.duration) * b.time_base) - origin)
        return end


class PrerollBuffer:
    """The last ``seconds`` of packets, whole GOPs; filled by the recording thread."""

    def __init__(self, camera: str, seconds: float) -> None:
        self.camera = camera
        self.keep = timedelta(seconds=seconds)
        self._lock = threading.Lock()
        self._gops: deque[list[BufferedPacket]] = deque()
        self._templates: _Templates | None = None
        self._time_bases: dict[int, Fraction] = {}
        self._video_index = -1

    def begin(self, video: av.VideoStream, audio: av.AudioStream | None) -> None:
        """A new connection: forget the old one's packets and parameters."""
        templates = _Templates(video, audio)
        streams: list[Stream] = [video] if audio is None else [video, audio]
        time_bases = {s.index: s.time_base for s in streams if s.index in templates.streams}
        with self._lock:
            self._gops.clear()
            self._templates = templates
            self._time_bases = {i: tb for i, tb in time_bases.items() if tb is not None}
            self._video_index = video.index

    def add(self, packet: av.Packet[Stream], wall: datetime) -> None:
        """Keep a packet (before the writer rebases it); drop GOPs older than needed."""
        index = packet.stream_index
        time_base = self._time_bases.get(index)
        dts = packet.dts
        if time_base is None or dts is None:
            return
        keyframe = index == self._video_index and packet.is_keyframe
        duration = packet.duration or 0
        buffered = BufferedPacket(
            packet, index, packet.pts, dts, duration, time_base, keyframe, wall
        )
        with self._lock:
            if keyframe:
                self._gops.append([buffered])
            elif self._gops:  # nothing before the first keyframe: a clip could not start there
                self._gops[-1].append(buffered)
            while len(self._gops) >= 2 and self._gops[1][0].wall <= wall - self.keep:
                self._gops.popleft()

    def snapshot(self) -> Preroll:
        """The buffered packets, from the newest keyframe at least ``seconds`` old."""
        with self._lock:
            packets = tuple(p for gop in self._gops for p in gop)
            return Preroll(self.camera, packets, self._templates)
