"""A WHEP viewer on aiortc: what the tests and the benchmark watch a camera with.

It offers recvonly video and audio with host candidates on the given addresses only (loopback
by default: nothing leaves the machine), posts the offer, applies the answer and counts the
frames that arrive. :func:`skip_decoding` makes this process's receivers hand over encoded
frames instead of decoding them, so fifty 1080p viewers fit on a small machine: a frame then
counts once it is complete (all its RTP packets in), which is what the relay is responsible for.

As a process of many viewers (the benchmark's load): ::

    python -m bench.live.client --url URL --camera ID --token T --viewers N

prints a JSON line per viewer at its first frame (``{"first_frame_s": …}``); then for each line
on its stdin, the viewers' video frame counts (``{"frames": […]}``); when its stdin closes, the
viewers leave (DELETE) and it prints their counts once more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCSessionDescription,
    rtcrtpreceiver,
)
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from recorder.live_rtc import restrict_host_addresses


class WhepError(Exception):
    """The endpoint refused the offer (or the DELETE)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


class _Undecoded(Decoder):
    """A decoder that hands the encoded frame through (see :func:`skip_decoding`)."""

    def decode(self, encoded_frame: JitterFrame) -> list[Any]:
        return [encoded_frame]


def skip_decoding() -> None:
    """This process's receivers stop decoding: ``recv`` returns encoded frames."""

    def undecoded(codec: RTCRtpCodecParameters) -> Decoder:
        return _Undecoded()

    rtcrtpreceiver.get_decoder = undecoded  # type: ignore[attr-defined]


class WhepViewer:
    """One viewer of one camera over WHEP."""

    def __init__(
        self, base_url: str, camera: str, token: str, host_addresses: Sequence[str] = ("127.0.0.1",)
    ) -> None:
        self.endpoint = f"{base_url}/api/v1/cameras/{camera}/whep"
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.host_addresses = list(host_addresses)
        self.session_url: str | None = None
        self.answer = ""
        self.frames = {"video": 0, "audio": 0}
        self.last: dict[str, Any] = {}
        self.first_frame_s: float | None = None
        self._started = 0.0
        self._first = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, http: httpx.AsyncClient) -> None:
        """Offer, and apply the answer; raises :class:`WhepError` on anything but 201."""
        self._started = time.monotonic()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", self._on_track)
        restrict_host_addresses(self.pc, self.host_addresses)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        response = await http.post(
            self.endpoint,
            content=self.pc.localDescription.sdp,
            headers={**self.headers, "Content-Type": "application/sdp"},
        )
        if response.status_code != 201:
            await self.pc.close()
            raise WhepError(response.status_code, response.json().get("detail", ""))
        self.session_url = self.base_url + response.headers["location"]
        self.answer = response.text
        await self.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.create_task(self._count(track)))

    async def _count(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames[track.kind] += 1
                self.last[track.kind] = frame
                if track.kind == "video" and self.first_frame_s is None:
                    self.first_frame_s = time.monotonic() - self._started
                    self._first.set()
        except MediaStreamError:
            return

    async def wait_frames(self, count: int, timeout: float = 15.0, kind: str = "video") -> None:
        """Until ``count`` more frames of ``kind`` arrived; TimeoutError otherwise."""
        target = self.frames[kind] + count
        deadline = time.monotonic() + timeout
        while self.frames[kind] < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.frames[kind]} {kind} frames, wanted {target}")
            await asyncio.sleep(0.05)

    async def leave(self, http: httpx.AsyncClient) -> int:
        """DELETE the session; the status the endpoint answered."""
        assert self.session_url is not None
        response = await http.delete(self.session_url, headers=self.headers)
        return response.status_code

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


async def _crowd(args: argparse.Namespace) -> None:
    skip_decoding()
    async with httpx.AsyncClient(timeout=30) as http:
        viewers = [WhepViewer(args.url, args.camera, args.token) for _ in range(args.viewers)]
        for viewer in viewers:
            await viewer.start(http)
        for viewer in viewers:
            await asyncio.wait_for(viewer._first.wait(), 30)
            print(json.dumps({"first_frame_s": viewer.first_frame_s}), flush=True)
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, sys.stdin.readline):  # a line: report counts
            print(json.dumps({"frames": [v.frames["video"] for v in viewers]}), flush=True)
        for viewer in viewers:
            await viewer.leave(http)
            await viewer.close()
        print(json.dumps({"frames": [v.frames["video"] for v in viewers]}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--camera", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--viewers", type=int, default=1)
    asyncio.run(_crowd(parser.parse_args()))


if __name__ == "__main__":
    main()
