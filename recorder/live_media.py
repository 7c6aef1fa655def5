"""The camera's packets as WebRTC takes them, without decoding: what passes (H.264, G.711,
Opus), keyframes that carry their parameter sets, G.711 in 20 ms pieces, and timestamps that
survive reconnects. Pure functions and one small class, shared by the relay and its tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeAlias

import av
from av.stream import Stream

from recorder.source import Session

Packet: TypeAlias = "av.Packet[Stream]"  # generic in the stubs only

#: Camera audio codecs that pass to WebRTC unchanged: FFmpeg's name → (RTP codec, clock rate).
AUDIO_PASS = {
    "pcm_alaw": ("audio/PCMA", 8000),
    "pcm_mulaw": ("audio/PCMU", 8000),
    "opus": ("audio/opus", 48000),
}
PCM_CHUNK = 160
"""G.711 is cut into 20 ms packets (cameras send up to 128 ms); it is one byte per sample."""
START_CODE = b"\x00\x00\x01"
NAL_SPS = 7


@dataclass(frozen=True)
class StreamInfo:
    """What a camera sends, and what of it passes."""

    video_codec: str
    """FFmpeg's codec name: ``h264`` passes; anything else would need transcoding."""
    profile: str | None
    width: int
    height: int
    audio_codec: str | None
    audio_mime: str | None
    """The WebRTC codec the audio passes as; ``None`` when there is none or it cannot pass."""

    @property
    def relayable(self) -> bool:
        return self.video_codec == "h264"


def describe(session: Session) -> StreamInfo:
    """The stream info of a freshly opened RTSP session."""
    video = session.video.codec_context
    audio = session.audio.codec_context if session.audio is not None else None
    mime = None
    if audio is not None and audio.name in AUDIO_PASS:
        codec, rate = AUDIO_PASS[audio.name]
        mime = codec if audio.sample_rate == rate else None
    return StreamInfo(
        video_codec=video.name,
        profile=video.profile,
        width=video.width,
        height=video.height,
        audio_codec=audio.name if audio is not None else None,
        audio_mime=mime,
    )


def nal_types(data: bytes) -> Iterator[int]:
    """The NAL unit types of an Annex-B access unit (what FFmpeg's RTSP demuxer gives)."""
    at = data.find(START_CODE)
    while at != -1 and at + 3 < len(data):
        yield data[at + 3] & 0x1F
        at = data.find(START_CODE, at + 3)


def with_parameter_sets(data: bytes, extradata: bytes | None) -> bytes:
    """A keyframe that carries its SPS and PPS: a browser joining mid-stream needs them, and
    many cameras send them only once, in the SDP (FFmpeg's extradata, Annex-B for RTSP)."""
    if not extradata or not extradata.startswith((START_CODE, b"\x00" + START_CODE)):
        return data
    return data if NAL_SPS in nal_types(data) else extradata + data


class Timeline:
    """Output timestamps that keep growing across reconnects (a camera restarts its clock), so
    every viewer's RTP timestamps stay monotonic; a gap in wall time stays a gap."""

    def __init__(self) -> None:
        self._offset: int | None = None
        self._last_s = 0.0
        self._last_wall: float | None = None

    def restart(self) -> None:
        """A new session begins: its first packet is placed after the wall-clock gap."""
        self._offset = None

    def place(self, pts: int, time_base: Fraction, now: float) -> int:
        if self._offset is None:
            gap = 0.0 if self._last_wall is None else max(now - self._last_wall, 0.001)
            self._offset = round((self._last_s + gap) / time_base) - pts
        out = pts + self._offset
        self._last_s, self._last_wall = float(out * time_base), now
        return out


def repack(packet: Packet, data: bytes) -> Packet:
    """``packet`` with other bytes (parameter sets added), keeping its timing."""
    if len(data) == packet.size:
        return packet
    out = av.Packet(data)
    out.pts, out.dts, out.time_base, out.is_keyframe = (
        packet.pts,
        packet.dts,
        packet.time_base,
        True,
    )
    return out


def audio_parts(packet: Packet, info: StreamInfo) -> list[Packet]:
    """Audio as it goes out: G.711 in 20 ms pieces, anything else as it came."""
    if info.audio_codec not in ("pcm_alaw", "pcm_mulaw") or packet.size <= PCM_CHUNK:
        return [packet]
    data = bytes(packet)
    assert packet.pts is not None
    parts = []
    for at in range(0, len(data), PCM_CHUNK):
        part = av.Packet(data[at : at + PCM_CHUNK])
        part.pts, part.time_base = packet.pts + at, packet.time_base
        parts.append(part)
    return parts
