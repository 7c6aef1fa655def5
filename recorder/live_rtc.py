"""WebRTC sessions of the live relay: an SDP offer in, an answer out, the peer connection kept
until the viewer leaves, its connection fails, or it stops being allowed.

Who may watch is not decided here: the caller (the WHEP route) passes an ``owner`` that must match
to end a session, and a ``still_allowed`` check that is re-run every ``recheck_s`` — a session
whose check fails is closed, as the WebSocket streams are.

A session may also carry the viewer's microphone (an intercom call): its audio is then
``sendrecv`` and what the viewer sends goes to a :class:`recorder.backchannel.Talk`, which the
caller starts when the viewer may speak. A caller can tie tasks to a session (:meth:`follow`) and
end a session itself (:meth:`terminate`) — a call's media ends with the call.

Non-trickle ICE, as WHEP clients use it: the offer carries the viewer's candidates and the answer
all of ours. Every session is cleaned up the same way whether the viewer left (DELETE), its
connection failed or closed, it never connected, or its offer was refused half-way.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aioice import Candidate, Connection
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription
from prometheus_client import Gauge, Histogram

from recorder.backchannel import Talk
from recorder.live import LiveRelay, Viewer

log = logging.getLogger(__name__)

VIEWERS = Gauge("moydom_live_viewers", "Open live-view (WebRTC) sessions of this process")
FIRST_FRAME = Histogram(
    "moydom_live_first_frame_seconds",
    "From a viewer's offer to its first video packet handed to WebRTC",
    buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10),
)


class OfferError(Exception):
    """The offer cannot be answered: not SDP, no video, or no H.264 a browser would take."""


@dataclass(frozen=True)
class Answer:
    session_id: str
    sdp: str


@dataclass(eq=False)
class LiveSession:
    id: str
    camera: str
    scope: str
    """What the session was opened on (a camera, a call): ending it must name the same."""
    owner: object
    pc: RTCPeerConnection
    viewer: Viewer
    still_allowed: Callable[[], bool]
    talk: Talk | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def restrict_host_addresses(pc: RTCPeerConnection, addresses: Sequence[str]) -> None:
    """Gather host candidates on ``addresses`` only, instead of aioice's choice (every interface
    address but loopback). Call between ``setRemoteDescription`` and ``setLocalDescription``.

    aiortc has no option for it, so this wraps the gathering of each transceiver's aioice
    connection (a private attribute of aiortc's ``RTCIceGatherer``, stable across 1.x)."""
    seen: set[int] = set()
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        if id(connection) not in seen:
            seen.add(id(connection))
            _gather_only(connection, list(addresses))


def _gather_only(connection: Connection, ours: list[str]) -> None:
    gather = connection.get_component_candidates

    async def only_ours(component: int, addresses: list[str], timeout: int = 5) -> list[Candidate]:
        return await gather(component=component, addresses=ours, timeout=timeout)

    connection.get_component_candidates = only_ours  # type: ignore[method-assign]


def _capabilities(kind: str, *mimes: str) -> list[Any]:
    """aiortc's codec capabilities of these codecs, in this order (with RTX for video)."""
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    wanted = [m.lower() for m in mimes] + ["video/rtx"]
    return sorted(
        (c for c in codecs if c.mimeType.lower() in wanted),
        key=lambda c: wanted.index(c.mimeType.lower()),
    )


MICROPHONE_CODECS = ("audio/opus", "audio/PCMU", "audio/PCMA")
"""What a viewer's microphone may send when the panel's own audio does not set the codec."""


class LiveSessions:
    """The live sessions of one process; ``relay`` supplies their tracks."""

    def __init__(
        self,
        relay: LiveRelay,
        *,
        host_addresses: Sequence[str] = (),
        recheck_s: float = 30.0,
        connect_timeout_s: float = 30.0,
    ) -> None:
        self.relay = relay
        self.host_addresses = tuple(host_addresses)
        self.recheck_s = recheck_s
        self.connect_timeout_s = connect_timeout_s
        self._sessions: dict[str, LiveSession] = {}
        self._watchdog: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    async def open(
        self,
        camera: str,
        url: str,
        offer: str,
        *,
        owner: object,
        ice_servers: list[RTCIceServer],
        still_allowed: Callable[[], bool],
        scope: str | None = None,
        talk: Talk | None = None,
    ) -> Answer:
        """Answer a viewer's offer for ``camera`` (opening its upstream if it is the first).
        With ``talk``, the viewer's microphone (the offer's audio, sent) goes to it.

        Raises :class:`OfferError`, :class:`recorder.live.CameraUnavailable` or
        :class:`recorder.live.CodecNotRelayable`."""
        opened = time.monotonic()
        offered_audio = _offered_audio(offer)
        viewer = await self.relay.watch(camera, url)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
        session_id = secrets.token_urlsafe(16)
        session = LiveSession(
            session_id, camera, scope or camera, owner, pc, viewer, still_allowed, talk
        )
        self._sessions[session.id] = session
        VIEWERS.inc()
        viewer.video.on_first = lambda: FIRST_FRAME.observe(time.monotonic() - opened)
        try:
            # Our transceivers exist before the offer is applied, so aiortc negotiates the
            # camera's codecs (it picks codecs while applying the offer, not when answering).
            video = pc.addTransceiver(viewer.video, direction="sendonly")
            video.setCodecPreferences(_capabilities("video", "video/H264"))
            mime = viewer.info.audio_mime
            if viewer.audio is not None and mime is not None and mime.lower() in offered_audio:
                direction = "sendrecv" if talk is not None else "sendonly"
                audio = pc.addTransceiver(viewer.audio, direction=direction)
                audio.setCodecPreferences(_capabilities("audio", mime))
            elif talk is not None:  # the panel sends no audio a browser takes: listen only
                audio = pc.addTransceiver("audio", direction="recvonly")
                audio.setCodecPreferences(_capabilities("audio", *MICROPHONE_CODECS))
            if talk is not None:
                pc.on("track", lambda track: self._microphone(talk, track))
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            except OperationError as exc:
                raise OfferError(f"the offer has no codec the camera sends (H.264): {exc}") from exc
            except (ValueError, InternalError, InvalidStateError) as exc:
                raise OfferError(f"malformed offer: {exc}") from exc
            if self.host_addresses:
                restrict_host_addresses(pc, self.host_addresses)
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            await self._close(session, "offer refused")
            raise
        pc.on("connectionstatechange", lambda: self._on_state(session))
        viewer.video.on("ended", lambda: self._ending(session, "the camera's stream ended"))
        self._spawn(session, self._expect_connected(session))
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._recheck())
        log.info(
            "live %s: session %s answered in %.2f s", camera, session.id, time.monotonic() - opened
        )
        return Answer(session.id, pc.localDescription.sdp)

    async def end(self, session_id: str, *, scope: str, owner: object) -> bool:
        """End a viewer's own session; ``False`` if there is no such session of that owner."""
        session = self._sessions.get(session_id)
        if session is None or session.scope != scope or session.owner != owner:
            return False
        await self._close(session, "viewer left")
        return True

    async def terminate(self, session_id: str, reason: str) -> None:
        """End a session whoever owns it (the caller decided it must end: a call ended)."""
        session = self._sessions.get(session_id)
        if session is not None:
            await self._close(session, reason)

    def follow(self, session_id: str, coro: Any) -> None:
        """Run ``coro`` for as long as the session lives (cancelled when it closes)."""
        session = self._sessions.get(session_id)
        if session is None:
            coro.close()
            return
        self._spawn(session, coro)

    def is_open(self, session_id: str) -> bool:
        return session_id in self._sessions

    @staticmethod
    def _microphone(talk: Talk, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            talk.listen(track)

    async def close_all(self) -> None:
        """Close every session (shutdown of the serving loop)."""
        for session in list(self._sessions.values()):
            await self._close(session, "shutting down")
        if self._watchdog is not None:
            self._watchdog.cancel()

    def close(self) -> None:
        """Stop the relay's upstreams (process shutdown, after the loop stopped)."""
        self.relay.close()

    def _spawn(self, session: LiveSession, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)

    def _on_state(self, session: LiveSession) -> None:
        if session.pc.connectionState in ("failed", "closed"):
            self._ending(session, f"connection {session.pc.connectionState}")

    def _ending(self, session: LiveSession, reason: str) -> None:
        """Close a session from a callback (unless it is being closed already)."""
        if session.id in self._sessions:
            self._spawn(session, self._close(session, reason))

    async def _expect_connected(self, session: LiveSession) -> None:
        await asyncio.sleep(self.connect_timeout_s)
        if session.pc.connectionState != "connected":
            await self._close(session, "did not connect")

    async def _recheck(self) -> None:
        """Every ``recheck_s``: close the sessions whose viewer is no longer allowed."""
        while self._sessions:
            await asyncio.sleep(self.recheck_s)
            for session in list(self._sessions.values()):
                try:
                    allowed = await asyncio.to_thread(session.still_allowed)
                except Exception:  # fail closed: a check that cannot run allows nothing
                    log.exception(
                        "live %s: re-checking session %s failed", session.camera, session.id
                    )
                    allowed = False
                if not allowed:
                    await self._close(session, "no longer allowed")

    async def _close(self, session: LiveSession, reason: str) -> None:
        if self._sessions.pop(session.id, None) is None:
            return
        VIEWERS.dec()
        session.viewer.close()
        current = asyncio.current_task()
        for task in session.tasks:
            if task is not current:
                task.cancel()
        if session.talk is not None:
            await session.talk.close()
        await session.pc.close()
        log.info("live %s: session %s closed: %s", session.camera, session.id, reason)


def _offered_audio(offer: str) -> set[str]:
    """The audio codecs (lower-case MIME types) an offer accepts; checks it is SDP with video."""
    try:
        description = SessionDescription.parse(offer)
    except (ValueError, IndexError, KeyError) as exc:
        raise OfferError(f"malformed offer: {exc}") from exc
    if not any(media.kind == "video" for media in description.media):
        raise OfferError("the offer has no video")
    return {
        codec.mimeType.lower()
        for media in description.media
        if media.kind == "audio"
        for codec in media.rtp.codecs
    }
