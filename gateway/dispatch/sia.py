"""The central-station link: Contact ID events over SIA DC-09 on TCP.

One ``CentralStationLink`` per receiver keeps one TCP connection and sends one
message at a time, waiting for the receiver's answer: DC-09 is strictly
message-then-reply. ``send`` makes exactly one attempt and returns only on an
ACK; anything else is a ``CentralStationError``, and the caller (the dispatch
outbox) keeps the alarm and tries again later. That split is what makes
"never silently dropped" hold: this module never decides that an alarm is
done unless a receiver said so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gateway.dispatch import dc09
from gateway.dispatch.contactid import ContactIdEvent, contact_id_data

logger = logging.getLogger(__name__)

_ACCOUNT = re.compile(r"[0-9A-Fa-f]{3,16}")


class CentralStationError(Exception):
    """The receiver did not take the message; ``reason`` says why, for logs and metrics.

    Reasons: ``nak`` (refused, e.g. a timestamp outside its band or a wrong
    key), ``duh`` (the event was not understood), ``rejected`` (the frame was
    dropped without an answer, e.g. a CRC it disagrees with), ``bad reply``
    (an answer that is not a valid ACK for this message), ``timeout``,
    ``connection refused``, ``connection lost`` and ``connect failed``.
    ``detail`` adds what is known, such as the receiver's clock on a NAK.
    """

    def __init__(self, reason: str, detail: str = "", hint: str = "") -> None:
        self.reason = reason
        self.detail = detail
        self.hint = hint
        """The likely cause, for people: ``wrong key or account?`` on a NAK
        stamped by a receiver whose clock agrees with ours."""
        super().__init__(f"{self.summary}: {detail}" if detail else self.summary)

    @property
    def summary(self) -> str:
        """What an operator reads: ``NAK (wrong key or account?)``, ``connection refused``."""
        label = self.reason.upper() if self.reason in ("nak", "duh") else self.reason
        return f"{label} ({self.hint})" if self.hint else label


def _utc_now() -> datetime:
    return datetime.now(UTC)


CLOCK_TOLERANCE = timedelta(seconds=15)
"""A receiver clock this close to ours did not refuse our timestamp (the
narrowest band seen, pysiaalarm's, is 20 s ahead and 40 s behind)."""


def _nak(receiver_time: str | None, ours: datetime) -> CentralStationError:
    """A NAK, explained. DC-09 has one NAK for a bad timestamp, an unknown
    account and an undecryptable message; the receiver's clock in it tells
    the first apart from the other two."""
    if receiver_time is None:
        return CentralStationError("nak", "no receiver time", "wrong key or account?")
    try:
        theirs = datetime.strptime(receiver_time, "%H:%M:%S,%m-%d-%Y").replace(tzinfo=UTC)
    except ValueError:
        return CentralStationError("nak", f"receiver time {receiver_time}", "wrong key or account?")
    skew = (theirs - ours.astimezone(UTC)).total_seconds()
    detail = f"receiver time {receiver_time}, ours {ours.astimezone(UTC):%H:%M:%S,%m-%d-%Y}"
    if abs(skew) <= CLOCK_TOLERANCE.total_seconds():
        return CentralStationError("nak", detail, "wrong key or account?")
    return CentralStationError("nak", detail, f"clocks {abs(skew):.0f} s apart: NTP?")


class CentralStationLink:
    """A DC-09 sender for one receiver account, encrypted when given a key.

    The connection opens on the first ``send``, is reused while it stays up,
    and is dropped after any failure that could leave it out of step (a
    timeout, a garbled reply), so the next ``send`` starts clean. Every
    attempt takes a new sequence number and a fresh timestamp from ``clock``,
    because receivers refuse stale timestamps. ``line`` defaults to ``0``: the
    ``L`` prefix is mandatory in DC-09 (the receiver prefix is not).
    ``ack_timeout_s`` bounds connecting and waiting for the answer.
    ``key_encoding`` says how ``key`` is written (``dc09.key_bytes``).
    """

    def __init__(
        self,
        host: str,
        port: int,
        account: str,
        *,
        key: str | None = None,
        key_encoding: dc09.KeyEncoding = "ascii",
        receiver: str | None = None,
        line: str | None = None,
        ack_timeout_s: float = 5.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not _ACCOUNT.fullmatch(account):
            raise ValueError(f"account must be 3 to 16 hex characters, not {account!r}")
        if ack_timeout_s <= 0:
            raise ValueError("ack_timeout_s must be positive")
        self._host = host
        self._port = port
        self._account = account.upper()
        self._key = dc09.key_bytes(key, key_encoding) if key is not None else None
        self._receiver = dc09.check_hex_id("receiver", receiver) if receiver else None
        self._line = dc09.check_hex_id("line", line) if line else "0"
        self._ack_timeout_s = ack_timeout_s
        self._clock = clock
        self._sequence = 0
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, event: ContactIdEvent) -> None:
        """Send one event and return once the receiver ACKs it; else ``CentralStationError``."""
        async with self._lock:
            try:
                async with asyncio.timeout(self._ack_timeout_s):
                    reply = await self._attempt(event)
            except TimeoutError as exc:
                await self._drop()
                detail = f"no answer in {self._ack_timeout_s} s"
                raise CentralStationError("timeout", detail) from exc
            except CentralStationError:
                await self._drop()
                raise
        if reply.kind is dc09.ReplyKind.NAK:
            raise _nak(reply.timestamp, self._clock())
        if reply.kind is not dc09.ReplyKind.ACK:
            detail = f"receiver time {reply.timestamp}" if reply.timestamp else ""
            raise CentralStationError(reply.kind.value.lower(), detail, "event not understood")

    async def close(self) -> None:
        """Close the connection; a later ``send`` opens a new one."""
        async with self._lock:
            await self._drop()

    async def _attempt(self, event: ContactIdEvent) -> dc09.Reply:
        reader, writer = await self._connection()
        self._sequence = self._sequence % dc09.MAX_SEQUENCE + 1
        frame = dc09.encode_message(
            contact_id_data(event),
            account=self._account,
            sequence=self._sequence,
            timestamp=self._clock(),
            line=self._line,
            receiver=self._receiver,
            key=self._key,
        )
        try:
            writer.write(frame)
            await writer.drain()
            raw = await self._read_reply(reader)
        except OSError as exc:
            raise CentralStationError("connection lost", str(exc)) from exc
        if not raw.strip():
            raise CentralStationError("rejected", "empty answer; the receiver dropped the frame")
        try:
            return dc09.parse_reply(raw, sequence=self._sequence, key=self._key)
        except dc09.FrameError as exc:
            raise CentralStationError("bad reply", str(exc)) from exc

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = self._reader, self._writer
        if reader is not None and writer is not None:
            # The receiver closed an idle connection (it restarted, or closes
            # after each message): reconnect now rather than fail this send.
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            await self._drop()
        try:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        except ConnectionRefusedError as exc:
            raise CentralStationError("connection refused", f"{self._host}:{self._port}") from exc
        except OSError as exc:
            raise CentralStationError("connect failed", str(exc)) from exc
        logger.info("connected to central station %s:%d", self._host, self._port)
        self._reader, self._writer = reader, writer
        return reader, writer

    @staticmethod
    async def _read_reply(reader: asyncio.StreamReader) -> bytes:
        buffer = b""
        while (end := dc09.reply_end(buffer)) is None:
            chunk = await reader.read(1024)
            if not chunk:
                raise CentralStationError("connection lost", "closed before answering")
            buffer += chunk
        return buffer[:end]

    async def _drop(self) -> None:
        # Abort rather than close: after a failure nothing queued is worth
        # flushing, and a graceful close could wait on a receiver that hangs.
        writer, self._reader, self._writer = self._writer, None, None
        if writer is None:
            return
        writer.transport.abort()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
