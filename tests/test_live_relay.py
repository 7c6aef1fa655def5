"""The relay on a real RTSP camera, without WebRTC: a viewer keeps its track across a camera
restart (the relay reconnects; the viewer resumes at a keyframe with timestamps that keep
growing), and a camera the relay cannot pass without transcoding is refused by name."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from recorder.live import CodecNotRelayable, LiveRelay
from tests.rtsp import RtspServer, encode
from tests.support import free_port

VIDEO = f"videotestsrc is-live=true pattern=ball ! {encode(320, 180, 15)}"
HEVC = (
    "videotestsrc is-live=true ! video/x-raw,width=320,height=180,framerate=15/1 "
    "! x265enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! h265parse "
    "! rtph265pay name=pay0 pt=96 config-interval=1"
)


@pytest.mark.slow
def test_a_viewer_keeps_watching_across_a_camera_restart() -> None:
    server = RtspServer(free_port(), {"/cam": f"( {VIDEO} )"})
    server.start()

    async def body() -> None:
        relay = LiveRelay(idle_s=0.5, open_timeout_s=10)
        viewer = await relay.watch("hall", server.url("/cam"))
        first = await viewer.video.recv()
        assert first.is_keyframe
        before = [first] + [await viewer.video.recv() for _ in range(9)]
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(1.0)
        while not viewer.video._queue.empty():  # what was read before the camera vanished
            before.append(await viewer.video.recv())
        cut = time.monotonic()
        await asyncio.to_thread(server.start)
        resumed = await asyncio.wait_for(viewer.video.recv(), 15)
        gap = time.monotonic() - cut
        assert resumed.is_keyframe  # the viewer waited for the new session's keyframe
        after = [resumed] + [await viewer.video.recv() for _ in range(5)]
        stamps = [p.pts or 0 for p in before + after]
        assert all(a < b for a, b in itertools.pairwise(stamps))
        jump = (resumed.pts or 0) - (before[-1].pts or 0)
        assert jump / 90000 >= 1.0  # the outage stays a gap in time
        assert relay.open_upstreams == 1
        viewer.close()
        relay.close()
        print(
            f"resumed {gap:.1f} s after the camera came back; timestamp jump {jump / 90000:.1f} s"
        )

    try:
        asyncio.run(body())
    finally:
        server.stop()


def test_a_camera_that_needs_transcoding_is_refused_by_name() -> None:
    with RtspServer(free_port(), {"/hevc": f"( {HEVC} )"}) as server:

        async def body() -> None:
            relay = LiveRelay(idle_s=0, open_timeout_s=10)
            with pytest.raises(CodecNotRelayable, match=r"hevc; live view passes H\.264 only"):
                await relay.watch("yard", server.url("/hevc"))
            await asyncio.sleep(0.2)  # the refused viewer was the only one: idle at once
            relay.close()
            assert relay.open_upstreams == 0

        asyncio.run(body())
