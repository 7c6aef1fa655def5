"""The relay's packet handling without a camera: parameter sets on keyframes, G.711 pieces,
timestamps across reconnects, and a viewer's queue (keyframe first, skip ahead when behind)."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
import pytest

from recorder.live import AUDIO_QUEUE, VIDEO_QUEUE, RelayTrack
from recorder.live_media import (
    Packet,
    StreamInfo,
    Timeline,
    audio_parts,
    nal_types,
    repack,
    with_parameter_sets,
)

SPS = b"\x00\x00\x00\x01\x67\x42\xc0\x1e"
PPS = b"\x00\x00\x00\x01\x68\xce\x3c\x80"
IDR = b"\x00\x00\x01\x65\x88\x84\x00\x10"
SLICE = b"\x00\x00\x00\x01\x41\x9a\x02"


def packet(data: bytes, pts: int, time_base: Fraction = Fraction(1, 90000)) -> Packet:
    out = av.Packet(data)
    out.pts, out.time_base = pts, time_base
    return out


def test_nal_types_of_an_access_unit() -> None:
    assert list(nal_types(SPS + PPS + IDR)) == [7, 8, 5]
    assert list(nal_types(SLICE)) == [1]
    assert list(nal_types(b"")) == []


@pytest.mark.parametrize(
    ("data", "extradata", "expected"),
    [
        (IDR, SPS + PPS, SPS + PPS + IDR),  # only in the SDP: added
        (SPS + PPS + IDR, SPS + PPS, SPS + PPS + IDR),  # in-band already: unchanged
        (IDR, None, IDR),
        (IDR, b"\x01\x42\xc0\x1e\xff", IDR),  # avcC is not what RTSP gives: left alone
    ],
)
def test_keyframes_carry_parameter_sets(
    data: bytes, extradata: bytes | None, expected: bytes
) -> None:
    assert with_parameter_sets(data, extradata) == expected


def test_repack_keeps_timing() -> None:
    original = packet(IDR, 4500)
    same = repack(original, IDR)
    assert same is original
    grown = repack(original, SPS + PPS + IDR)
    assert bytes(grown) == SPS + PPS + IDR
    assert (grown.pts, grown.time_base, grown.is_keyframe) == (4500, Fraction(1, 90000), True)


def info(audio: str | None) -> StreamInfo:
    return StreamInfo("h264", "Baseline", 640, 360, audio, None)


def test_g711_goes_out_in_20_ms_pieces() -> None:
    big = packet(bytes(range(256)) * 4, 2048, Fraction(1, 8000))
    parts = audio_parts(big, info("pcm_alaw"))
    assert [p.size for p in parts] == [160] * 6 + [64]
    assert [p.pts for p in parts] == [2048 + 160 * i for i in range(7)]
    assert b"".join(bytes(p) for p in parts) == bytes(big)
    opus = packet(b"\xfc" * 200, 960, Fraction(1, 48000))
    assert audio_parts(opus, info("opus")) == [opus]


def test_timeline_stays_monotonic_across_reconnects() -> None:
    clock = Timeline()
    tb = Fraction(1, 90000)
    first = [clock.place(900_000 + 9000 * i, tb, now=10.0 + 0.1 * i) for i in range(5)]
    assert first == [0, 9000, 18000, 27000, 36000]
    clock.restart()  # the camera came back 2 s later with its clock at zero
    after = clock.place(0, tb, now=12.4)
    assert after == 36000 + 2 * 90000
    assert clock.place(9000, tb, now=12.5) == after + 9000
    clock.restart()  # and again, now in milliseconds
    ms = clock.place(5, Fraction(1, 1000), now=12.6)
    assert ms * Fraction(1, 1000) > (after + 9000) * tb


def drain(track: RelayTrack) -> list[int]:
    async def take() -> list[int]:
        out = []
        while not track._queue.empty():
            got = await track.recv()
            assert got.pts is not None
            out.append(got.pts)
        return out

    return asyncio.run(take())


def test_a_viewer_starts_at_a_keyframe_and_skips_ahead_when_behind() -> None:
    track = RelayTrack("video")
    track.offer(packet(SLICE, 1), keyframe=False)  # nothing to decode it against: dropped
    track.offer(packet(IDR, 2), keyframe=True)
    track.offer(packet(SLICE, 3), keyframe=False)
    assert drain(track) == [2, 3]
    for pts in range(VIDEO_QUEUE):  # the sender stalls: the queue fills up
        track.offer(packet(SLICE, 10 + pts), keyframe=False)
    track.offer(packet(SLICE, 999), keyframe=False)  # overflow: everything queued is stale
    track.offer(packet(SLICE, 1000), keyframe=False)
    track.offer(packet(IDR, 1001), keyframe=True)
    assert drain(track) == [1001]
    track.resync()  # a reconnect: wait for the new session's keyframe
    track.offer(packet(SLICE, 2000), keyframe=False)
    track.offer(packet(IDR, 2001), keyframe=True)
    assert drain(track) == [2001]


def test_audio_drops_its_oldest_when_behind() -> None:
    track = RelayTrack("audio")
    for pts in range(250):
        track.offer(packet(b"\xd5" * 160, pts, Fraction(1, 8000)), keyframe=False)
    assert drain(track) == list(range(250 - AUDIO_QUEUE, 250))
