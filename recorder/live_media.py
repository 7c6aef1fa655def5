"""The camera's packets as WebRTC takes them: what passes without decoding (H.264, G.711,
Opus), keyframes that carry their parameter sets, G.711 in 20 ms pieces, timestamps that
survive reconnects, and the one transcoding done — audio a browser cannot take (AAC, the
default of many cameras and intercom panels) decoded once per camera and sent as G.711 µ-law.
Pure functions and small classes, shared by the relay and its tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeAlias

import av
from av.audio.stream import AudioStream
from av.stream import Stream

from recorder.source import Session

Packet: TypeAlias = "av.Packet[Stream]"  # generic in the stubs only

#: Camera audio codecs that pass to WebRTC unchanged: FFmpeg's name → (RTP codec, clock rate).
AUDIO_PASS = {
    "pcm_alaw": ("audio/PCMA", 8000),
    "pcm_mulaw": ("audio/PCMU", 8000),
    "opus": ("audio/opus", 48000),
}
TRANSCODED = ("audio/PCMU", 8000)
"""What other audio becomes: every browser takes G.711 µ-law, and an intercom's voice is 8 kHz."""
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
    """The WebRTC codec the audio goes out as; ``None`` when there is no audio."""
    audio_transcoded: bool = False
    """The audio cannot pass as it is and is transcoded to :data:`TRANSCODED` (once per camera)."""

    @property
    def relayable(self) -> bool:
        return self.video_codec == "h264"


def describe(session: Session) -> StreamInfo:
    """The stream info of a freshly opened RTSP session."""
    video = session.video.codec_context
    audio = session.audio.codec_context if session.audio is not None else None
    mime, transcoded = None, False
    if audio is not None:
        codec, rate = AUDIO_PASS.get(audio.name, TRANSCODED)
        transcoded = audio.name not in AUDIO_PASS or audio.sample_rate != rate
        mime = TRANSCODED[0] if transcoded else codec
    return StreamInfo(
        video_codec=video.name,
        profile=video.profile,
        width=video.width,
        height=video.height,
        audio_codec=audio.name if audio is not None else None,
        audio_mime=mime,
        audio_transcoded=transcoded,
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


class ToPcmu:
    """One RTSP session's audio decoded and re-encoded as G.711 µ-law, 8 kHz mono, in 20 ms
    packets (time base 1/8000). A packet that does not decode is skipped (logged once)."""

    def __init__(self, stream: AudioStream) -> None:
        self._decoder = stream.codec_context
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=TRANSCODED[1])
        encoder = av.CodecContext.create("pcm_mulaw", "w")
        assert isinstance(encoder, av.AudioCodecContext)
        encoder.format, encoder.layout, encoder.sample_rate = "s16", "mono", TRANSCODED[1]
        self._encoder = encoder
        self._time_base = Fraction(1, TRANSCODED[1])
        self._pending = b""
        self._next: int | None = None
        self.failed: str | None = None
        """The first decoding error, for the caller to log."""

    def feed(self, packet: Packet) -> list[Packet]:
        try:
            frames = self._decoder.decode(packet)
        except av.FFmpegError as exc:
            if self.failed is None:
                self.failed = str(exc)
            return []
        for frame in frames:
            if self._next is None:
                start = frame.pts if frame.pts is not None else packet.pts or 0
                tb = frame.time_base or packet.time_base or Fraction(1, frame.sample_rate)
                self._next = round(start * tb * TRANSCODED[1])
            for resampled in self._resampler.resample(frame):
                resampled.pts = None
                for encoded in self._encoder.encode(resampled):
                    self._pending += bytes(encoded)
        parts = []
        while len(self._pending) >= PCM_CHUNK and self._next is not None:
            part = av.Packet(self._pending[:PCM_CHUNK])
            part.pts, part.time_base = self._next, self._time_base
            self._pending = self._pending[PCM_CHUNK:]
            self._next += PCM_CHUNK
            parts.append(part)
        return parts
