"""Talking to an intercom panel: the subscriber's microphone sent over the panel's ONVIF
back-channel (ONVIF Streaming Specification, "Back channel connection").

PyAV's RTSP demuxer only receives, so this is a small RTSP client of its own, for the one thing
it needs: ``DESCRIBE`` with ``Require: www.onvif.org/ver20/backchannel``, find the media the
panel marks ``a=sendonly`` (it receives there), ``SETUP`` every stream of the description with RTP
interleaved over the RTSP TCP connection (no UDP ports to open or firewall), ``PLAY``, then G.711
in RTP, one packet per 20 ms. What the panel sends on the other streams is read and dropped: a
session of the back-channel alone is what ONVIF allows, but a panel may not cope with streams
left unconnected — GStreamer's ONVIF server errors out their sources and then, now and then (one
session in about fifteen under load, measured), never passes what it receives. Digest and Basic
authentication, keep-alives at half the session timeout, ``TEARDOWN`` at the end. The live relay
reads the panel's picture and sound on its own connection, as for any camera.

:class:`Talk` is the media side of one subscriber's microphone: it consumes the WebRTC track
from the moment the session exists (frames not consumed would pile up in aiortc), and forwards
them only once the caller :meth:`Talk.start`\\ s it — who may talk, and when, is the gateway's
decision. Every failure below is a :class:`BackChannelError`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from prometheus_client import Counter

log = logging.getLogger(__name__)

REQUIRE = "www.onvif.org/ver20/backchannel"
RATE = 8000
CHUNK = 160
"""Samples (and bytes: G.711 is one byte per sample) per RTP packet: 20 ms."""
CODECS = {"PCMU": (0, "pcm_mulaw"), "PCMA": (8, "pcm_alaw")}
"""What we can send: RTP encoding name -> (static payload type, FFmpeg encoder)."""
USER_AGENT = "moydom"

SENT = Counter("moydom_talk_packets_total", "RTP packets sent to panels' back-channels")


class BackChannelError(Exception):
    """The panel has no usable back-channel, refused it, or the connection failed."""


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    """Lower-case names; a repeated header keeps its last value."""
    body: str


@dataclass(frozen=True)
class Target:
    """The back-channel stream of a panel's SDP."""

    control: str
    payload_type: int
    codec: str
    """``PCMU`` or ``PCMA``."""


def find_backchannel(sdp: str, base: str) -> Target:
    """The ``sendonly`` audio stream of a DESCRIBE answer that we can feed (G.711, 8 kHz)."""
    sections = re.split(r"\r?\n(?=m=)", sdp)
    for section in sections[1:]:
        lines = section.splitlines()
        if not lines[0].startswith("m=audio") or "a=sendonly" not in lines:
            continue
        payloads = [int(p) for p in lines[0].split()[3:] if p.isdigit()]
        names = {
            int(m[1]): (m[2].upper(), int(m[3]))
            for line in lines
            if (m := re.match(r"a=rtpmap:(\d+) ([\w-]+)/(\d+)", line))
        }
        control = next((line[10:].strip() for line in lines if line.startswith("a=control:")), "")
        for pt in payloads:
            codec, rate = names.get(pt, _STATIC.get(pt, ("", 0)))
            if codec in CODECS and rate == RATE:
                return Target(_absolute(control, base), pt, codec)
        raise BackChannelError(f"the panel's back-channel takes {names or payloads}, not G.711")
    raise BackChannelError("the panel offers no back-channel (no sendonly audio in its SDP)")


_STATIC = {0: ("PCMU", RATE), 8: ("PCMA", RATE)}


def stream_controls(sdp: str, base: str) -> list[str]:
    """The control URL of every media section, in order."""
    controls = []
    for section in re.split(r"\r?\n(?=m=)", sdp)[1:]:
        lines = section.splitlines()
        control = next((line[10:].strip() for line in lines if line.startswith("a=control:")), "")
        controls.append(_absolute(control, base))
    return controls


def _absolute(control: str, base: str) -> str:
    if control.startswith("rtsp://"):
        return control
    if not control or control == "*":
        return base
    return base.rstrip("/") + "/" + control


class _Auth:
    """HTTP-style authentication as RTSP servers use it (RFC 2617, without qop=auth-int)."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.challenge: dict[str, str] | None = None
        self.basic = False
        self._nc = 0

    def learn(self, header: str) -> bool:
        """Take a ``WWW-Authenticate`` challenge; ``False`` if we cannot answer it."""
        scheme, _, rest = header.partition(" ")
        if scheme.lower() == "digest":
            self.challenge = dict(re.findall(r'(\w+)="?([^",]*)"?', rest))
            return True
        self.basic = scheme.lower() == "basic"
        return self.basic

    def header(self, method: str, uri: str) -> str | None:
        if self.challenge is not None:
            c = self.challenge
            ha1 = _md5(f"{self.user}:{c.get('realm', '')}:{self.password}")
            ha2 = _md5(f"{method}:{uri}")
            fields = {
                "username": self.user,
                "realm": c.get("realm", ""),
                "nonce": c.get("nonce", ""),
                "uri": uri,
            }
            if "auth" in c.get("qop", "").split(","):
                self._nc += 1
                cnonce, nc = secrets.token_hex(8), f"{self._nc:08x}"
                digest = _md5(f"{ha1}:{fields['nonce']}:{nc}:{cnonce}:auth:{ha2}")
                fields |= {"qop": "auth", "nc": nc, "cnonce": cnonce}
            else:
                digest = _md5(f"{ha1}:{fields['nonce']}:{ha2}")
            fields["response"] = digest
            quoted = ", ".join(
                f"{k}={v}" if k in ("qop", "nc") else f'{k}="{v}"' for k, v in fields.items()
            )
            return f"Digest {quoted}"
        if self.basic:
            return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - RTSP Digest is MD5 by definition


class BackChannel:
    """One RTSP session to a panel carrying only its back-channel; :meth:`open`, then
    :meth:`send` G.711 bytes, :meth:`close` at the end."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "rtsp" or not parts.hostname:
            raise BackChannelError(f"not an RTSP URL: {parts.scheme}://{parts.hostname or ''}")
        self.host, self.port = parts.hostname, parts.port or 554
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self.url = urlunsplit(("rtsp", netloc, parts.path or "/", parts.query, ""))
        self._auth = (
            _Auth(unquote(parts.username), unquote(parts.password or ""))
            if parts.username
            else None
        )
        self.timeout_s = timeout_s
        self.target: Target | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._cseq = 0
        self._session: str | None = None
        self._channel = 0
        self._waiting: dict[int, asyncio.Future[Response]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = secrets.randbelow(1 << 16)
        self._timestamp = secrets.randbelow(1 << 32)
        self._ssrc = secrets.randbelow(1 << 32)
        self._first = True
        self.closed = asyncio.Event()

    async def open(self) -> None:
        """Connect and start the back-channel; raises :class:`BackChannelError`."""
        try:
            await asyncio.wait_for(self._open(), self.timeout_s)
        except TimeoutError:
            await self.close()
            raise BackChannelError(
                f"{self.host}: no back-channel within {self.timeout_s} s"
            ) from None
        except (OSError, BackChannelError) as exc:
            await self.close()
            if isinstance(exc, BackChannelError):
                raise
            raise BackChannelError(f"{self.host}:{self.port}: {exc}") from exc

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._tasks.append(asyncio.create_task(self._read()))
        described = await self._request("DESCRIBE", self.url, {"Accept": "application/sdp"})
        base = described.headers.get("content-base", self.url)
        self.target = find_backchannel(described.body, base)
        session = ""
        for index, control in enumerate(stream_controls(described.body, base)):
            transport = f"RTP/AVP/TCP;unicast;interleaved={2 * index}-{2 * index + 1}"
            setup = await self._request("SETUP", control, {"Transport": transport})
            session = session or setup.headers.get("session", "")
            self._session = session.split(";")[0].strip()
            if not self._session:
                raise BackChannelError(f"{self.host}: SETUP answered without a session")
            if control == self.target.control:
                match = re.search(r"interleaved=(\d+)", setup.headers.get("transport", ""))
                self._channel = int(match[1]) if match else 2 * index
        timeout = re.search(r"timeout=(\d+)", session)
        await self._request("PLAY", base if base.startswith("rtsp://") else self.url, {})
        keep = max(int(timeout[1]) if timeout else 60, 2) / 2
        self._tasks.append(asyncio.create_task(self._keep_alive(keep)))
        log.info("back-channel to %s:%d open (%s)", self.host, self.port, self.target.codec)

    def send(self, samples: bytes) -> None:
        """One RTP packet of G.711 ``samples`` (20 ms is 160), interleaved on the connection."""
        if self._writer is None or self.target is None or self.closed.is_set():
            raise BackChannelError("the back-channel is not open")
        marker = 0x80 if self._first else 0
        self._first = False
        header = struct.pack(
            "!BBHII", 0x80, marker | self.target.payload_type, self._seq, self._timestamp,
            self._ssrc,
        )  # fmt: skip
        self._seq = (self._seq + 1) & 0xFFFF
        self._timestamp = (self._timestamp + len(samples)) & 0xFFFFFFFF
        packet = header + samples
        self._writer.write(b"$" + struct.pack("!BH", self._channel, len(packet)) + packet)
        SENT.inc()

    async def close(self) -> None:
        """``TEARDOWN`` (best effort) and disconnect."""
        if self._writer is not None and self._session and not self.closed.is_set():
            with contextlib.suppress(BackChannelError, OSError, TimeoutError):
                await asyncio.wait_for(self._request("TEARDOWN", self.url, {}), 2)
        self.closed.set()
        for task in self._tasks:
            task.cancel()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(BackChannelError("the connection closed"))

    async def _request(self, method: str, uri: str, headers: dict[str, str]) -> Response:
        for _attempt in range(2):
            response = await self._exchange(method, uri, headers)
            challenge = response.headers.get("www-authenticate")
            if response.status != 401 or self._auth is None or challenge is None:
                break
            if not self._auth.learn(challenge):
                break
        if response.status != 200:
            raise BackChannelError(
                f"{self.host}: {method} answered {response.status} {response.reason}"
            )
        return response

    async def _exchange(self, method: str, uri: str, headers: dict[str, str]) -> Response:
        if self._writer is None or self.closed.is_set():
            raise BackChannelError("the connection closed")
        self._cseq += 1
        cseq = self._cseq
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {cseq}", f"User-Agent: {USER_AGENT}"]
        lines.append(f"Require: {REQUIRE}")
        if self._session:
            lines.append(f"Session: {self._session}")
        if self._auth is not None and (auth := self._auth.header(method, uri)):
            lines.append(f"Authorization: {auth}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiting[cseq] = waiter
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            return await waiter
        finally:
            self._waiting.pop(cseq, None)

    async def _read(self) -> None:
        """Answers to our requests, and whatever the panel interleaves (RTCP), skipped."""
        assert self._reader is not None
        try:
            while True:
                first = await self._reader.readexactly(1)
                if first == b"$":
                    _channel, size = struct.unpack("!BH", await self._reader.readexactly(3))
                    await self._reader.readexactly(size)
                    continue
                head = (first + await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                status_line, *lines = head.split("\r\n")
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    if value:
                        headers[name.strip().lower()] = value.strip()
                size = int(headers.get("content-length", "0"))
                body = (await self._reader.readexactly(size)).decode("utf-8", "replace")
                parts = status_line.split(" ", 2)
                if len(parts) < 2 or not parts[0].startswith("RTSP/") or not parts[1].isdigit():
                    continue  # a request from the server (ANNOUNCE, …): not ours to act on
                reason = parts[2] if len(parts) > 2 else ""
                response = Response(int(parts[1]), reason, headers, body)
                waiter = self._waiting.get(int(headers.get("cseq", "-1")))
                if waiter is not None and not waiter.done():
                    waiter.set_result(response)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError):
            pass
        finally:
            self.closed.set()
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(BackChannelError(f"{self.host}: the panel hung up"))

    async def _keep_alive(self, every_s: float) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(every_s)
            try:
                await asyncio.wait_for(self._request("GET_PARAMETER", self.url, {}), 5)
            except (BackChannelError, TimeoutError):
                log.warning("back-channel to %s: keep-alive failed", self.host)


class Talk:
    """One subscriber's microphone toward one panel: consumed from :meth:`listen` on, forwarded
    from :meth:`start` on, as 20 ms G.711 packets (resampled to 8 kHz mono on the way)."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self.url, self.timeout_s = url, timeout_s
        self.channel: BackChannel | None = None
        self.refused: str | None = None
        """Why the panel last refused the back-channel, if it did (for the caller's log)."""
        self.on_first: Callable[[], None] | None = None
        """Called once, when the first packet goes to the panel: time to first audio."""
        self._track: MediaStreamTrack | None = None
        self._pump: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._encoder: av.AudioCodecContext | None = None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self._pending = b""

    def listen(self, track: MediaStreamTrack) -> None:
        """The subscriber's audio track (aiortc's remote track): consume it from now on."""
        if track.kind == "audio" and self._pump is None:
            self._track = track
            self._pump = asyncio.create_task(self._run())

    @property
    def listening(self) -> bool:
        return self._pump is not None

    async def start(self) -> None:
        """Open the back-channel (once) and forward the microphone to it; raises
        :class:`BackChannelError` when the panel refuses."""
        if self.channel is not None:
            return
        channel = BackChannel(self.url, self.timeout_s)
        await channel.open()
        assert channel.target is not None
        encoder = av.CodecContext.create(CODECS[channel.target.codec][1], "w")
        assert isinstance(encoder, av.AudioCodecContext)
        encoder.format, encoder.layout, encoder.sample_rate = "s16", "mono", RATE
        self._encoder, self._pending, self.channel = encoder, b"", channel

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self.channel is not None:
            await self.channel.close()

    async def _run(self) -> None:
        assert self._track is not None
        try:
            while True:
                frame = await self._track.recv()
                if self.channel is None or self._encoder is None:
                    continue  # not (yet) allowed to talk: dropped here, never queued
                if self.channel.closed.is_set():
                    log.warning("back-channel to %s closed by the panel", self.channel.host)
                    self._drop()
                    continue
                if isinstance(frame, av.AudioFrame):
                    try:
                        self._forward(frame)
                    except (BackChannelError, av.FFmpegError) as exc:
                        log.warning("back-channel to %s: %s", self.channel.host, exc)
                        self._drop()
        except MediaStreamError:
            return

    def _drop(self) -> None:
        """Forget a back-channel that failed (the caller may :meth:`start` a new one)."""
        if self.channel is not None:
            self._closing = asyncio.create_task(self.channel.close())
            self.channel = None

    def _forward(self, frame: av.AudioFrame) -> None:
        assert self.channel is not None and self._encoder is not None
        for resampled in self._resampler.resample(frame):
            resampled.pts = None
            for packet in self._encoder.encode(resampled):
                self._pending += bytes(packet)
        while len(self._pending) >= CHUNK:
            chunk, self._pending = self._pending[:CHUNK], self._pending[CHUNK:]
            self.channel.send(chunk)
            if self.on_first is not None:
                self.on_first()
                self.on_first = None
