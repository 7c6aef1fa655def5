"""The ingest worker's MQTT v5 connection: one persistent session, QoS 1 in,
PUBACKs sent when the writer says so.

Why not paho: a profile of the ingest worker at 6,000 messages/s put about
40 µs of CPU per message in paho (a ``recv`` of one byte for the packet type
and each length byte, a ``select`` per packet, v5 property objects, an
``MQTTMessage``, topic matching for callbacks, one queued packet and one
wake-up byte per PUBACK). This client does what ingest needs and nothing
else: it reads the socket in large chunks and cuts every complete packet out
of the buffer at once, hands the PUBLISHes of one read to the worker as a
list, and writes the PUBACKs of a committed batch with one ``sendall``.

What it implements of MQTT v5 (OASIS standard, 2019):

- CONNECT with clean start off, Session Expiry Interval, Receive Maximum and
  Maximum Packet Size (:data:`MAX_PACKET_BYTES`: the broker drops, rather
  than sends, anything larger, and a packet that claims more is refused),
  user name and password; CONNACK (session present, reason code, the server's
  keep alive if it sets one);
- SUBSCRIBE and UNSUBSCRIBE with their ACKs; the worker's probes are
  UNSUBSCRIBEs whose UNSUBACK it is told about, in order with the PUBLISHes
  read before it;
- incoming PUBLISH at QoS 0 and 1 (properties skipped; no topic aliases,
  since the CONNECT allows none); a QoS 2 PUBLISH is a protocol error, as the
  subscriptions are QoS 1;
- PUBACK on request, PUBLISH at QoS 0 (the worker's notices), PINGREQ when
  nothing was sent for the keep-alive interval, also while the worker holds
  the reader back (``ping_if_due``), and DISCONNECT;
- reconnecting after a lost connection or a refused session, waiting 1 s,
  then twice as long each time up to 5 s.

Each connection has a number (``epoch``). An acknowledgement names the epoch
its messages came on and is dropped if the connection has changed since: a
packet id means something only on the connection that delivered it.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
MAX_PACKET_BYTES = 2 * 1024 * 1024
"""Twice the largest packet the generated broker config accepts from a device
(``max_packet_size 1048576``); ingest refuses bodies over 64 KiB anyway."""
CONNECT_TIMEOUT_S = 10.0
SEND_TIMEOUT_S = 30.0
"""A send that blocks this long (the broker reads nothing) counts as a lost connection."""
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 5.0

Incoming = tuple[str, bytes, int, bool]
"""(topic, payload, packet id (0 for QoS 0), DUP flag) of one PUBLISH."""

# Packet types (the high nibble of the first byte).
CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 2, 3, 4, 5, 6, 7
SUBACK, UNSUBACK, PINGRESP, DISCONNECT, AUTH = 9, 11, 13, 14, 15

REASONS = {
    0x00: "Success",
    0x04: "Disconnect with Will Message",
    0x11: "No subscription existed",
    0x80: "Unspecified error",
    0x81: "Malformed Packet",
    0x82: "Protocol Error",
    0x83: "Implementation specific error",
    0x84: "Unsupported Protocol Version",
    0x85: "Client Identifier not valid",
    0x86: "Bad User Name or Password",
    0x87: "Not authorized",
    0x88: "Server unavailable",
    0x89: "Server busy",
    0x8A: "Banned",
    0x8B: "Server shutting down",
    0x8C: "Bad authentication method",
    0x8D: "Keep Alive timeout",
    0x8E: "Session taken over",
    0x8F: "Topic Filter invalid",
    0x90: "Topic Name invalid",
    0x93: "Receive Maximum exceeded",
    0x94: "Topic Alias invalid",
    0x95: "Packet too large",
    0x97: "Quota exceeded",
    0x98: "Administrative action",
    0x99: "Payload format invalid",
    0x9C: "Use another server",
    0x9D: "Server moved",
    0x9F: "Connection rate exceeded",
    0xA2: "Wildcard Subscriptions not supported",
}

# Property identifier -> how its value is encoded (MQTT v5, section 2.2.2.2).
_BYTE, _TWO, _FOUR, _VARINT, _UTF8, _BINARY, _PAIR = range(7)
_PROPERTY_TYPES = {
    0x01: _BYTE,
    0x02: _FOUR,
    0x03: _UTF8,
    0x08: _UTF8,
    0x09: _BINARY,
    0x0B: _VARINT,
    0x11: _FOUR,
    0x12: _UTF8,
    0x13: _TWO,
    0x15: _UTF8,
    0x16: _BINARY,
    0x17: _BYTE,
    0x18: _FOUR,
    0x19: _BYTE,
    0x1A: _UTF8,
    0x1C: _UTF8,
    0x1F: _UTF8,
    0x21: _TWO,
    0x22: _TWO,
    0x23: _TWO,
    0x24: _BYTE,
    0x25: _BYTE,
    0x26: _PAIR,
    0x27: _FOUR,
    0x28: _BYTE,
    0x29: _BYTE,
    0x2A: _BYTE,
}
SERVER_KEEP_ALIVE = 0x13
REASON_STRING = 0x1F


class ProtocolError(Exception):
    """The broker sent something this client does not accept; the connection is dropped."""


class ConnectionLost(Exception):
    """The connection ended; the reader reconnects."""


class Refused(Exception):
    """The broker answered CONNECT with a failure reason code."""


def reason_text(code: int, detail: str = "") -> str:
    name = REASONS.get(code, f"reason code {code:#04x}")
    return f"{name} ({detail})" if detail else name


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    """(value, position after it); raises ProtocolError past 4 bytes or the end."""
    value, shift = 0, 0
    for i in range(pos, min(pos + 4, len(buf))):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    raise ProtocolError("malformed variable byte integer")


def _string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return struct.pack(">H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def properties(data: bytes, pos: int) -> tuple[dict[int, object], int]:
    """The property block at ``pos``: {identifier: value} and the position after it."""
    length, pos = _read_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError("properties run past the packet")
    found: dict[int, object] = {}
    while pos < end:
        ident = data[pos]
        kind = _PROPERTY_TYPES.get(ident)
        pos += 1
        value: object
        if kind == _BYTE:
            value, pos = data[pos], pos + 1
        elif kind == _TWO:
            value, pos = int.from_bytes(data[pos : pos + 2], "big"), pos + 2
        elif kind == _FOUR:
            value, pos = int.from_bytes(data[pos : pos + 4], "big"), pos + 4
        elif kind == _VARINT:
            value, pos = _read_varint(data, pos)
        elif kind in (_UTF8, _BINARY):
            size = int.from_bytes(data[pos : pos + 2], "big")
            raw = bytes(data[pos + 2 : pos + 2 + size])
            value, pos = (raw.decode("utf-8", "replace") if kind == _UTF8 else raw), pos + 2 + size
        elif kind == _PAIR:
            for _ in range(2):
                pos += 2 + int.from_bytes(data[pos : pos + 2], "big")
            continue
        else:
            raise ProtocolError(f"unknown property {ident:#04x}")
        found[ident] = value
    if pos != end:
        raise ProtocolError("malformed properties")
    return found, end


@dataclass(frozen=True)
class LinkConfig:
    host: str
    port: int
    client_id: str
    username: str
    password: str
    session_expiry_s: int
    receive_maximum: int
    keepalive_s: int = 30
    tls: ssl.SSLContext | None = None
    """Over TLS (an mqtts:// URL), the broker's name checked against ``host``."""


class IngestLink:
    """One persistent MQTT v5 session, kept connected by its own reader thread.

    Callbacks, all on the reader thread: ``on_connect(epoch, session_present)``
    (before anything of that connection is read), ``on_messages(epoch,
    messages)`` with the PUBLISHes of one read, in order (it may block: the
    reader then reads nothing, and TCP holds the rest in the broker),
    ``on_unsuback(packet_id)`` after the messages that arrived before it, and
    ``on_disconnect(reason)``.
    """

    def __init__(
        self,
        cfg: LinkConfig,
        *,
        on_connect: Callable[[int, bool], None],
        on_messages: Callable[[int, list[Incoming]], None],
        on_unsuback: Callable[[int], None],
        on_disconnect: Callable[[str], None],
    ) -> None:
        self.cfg = cfg
        self.on_connect = on_connect
        self.on_messages = on_messages
        self.on_unsuback = on_unsuback
        self.on_disconnect = on_disconnect
        self._stop = threading.Event()
        self._wlock = threading.Lock()
        """Held across each send (and only there)."""
        self._id_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._epoch = 0
        self._keepalive = float(cfg.keepalive_s)
        self._last_sent = 0.0
        self._ping_sent: float | None = None
        self._next_id = 0
        self._thread = threading.Thread(target=self._run, name="ingest-mqtt", daemon=True)

    # --- the writer's side (any thread) ----------------------------------------

    def start(self) -> None:
        self._thread.start()

    def _send(self, epoch: int | None, data: bytes) -> bool:
        """Send on the current connection (only if it is ``epoch``'s, when given)."""
        with self._wlock:
            return self._send_locked(epoch, data)

    def _send_locked(self, epoch: int | None, data: bytes) -> bool:
        """:meth:`_send` with ``_wlock`` held: one packet's bytes never interleave
        with another's. The only lock held across a (possibly blocking) send."""
        sock = self._sock
        if sock is None or (epoch is not None and epoch != self._epoch):
            return False
        try:
            sock.sendall(data)
        except OSError as exc:
            log.warning("ingest: sending to the broker failed: %s", exc)
            _shutdown(sock)  # the reader sees the end and reconnects
            return False
        self._last_sent = time.monotonic()
        return True

    def _packet_id(self) -> int:
        # Its own lock, not the sending one: a caller that registers the id
        # (under a lock of its own) must not wait for a blocked send.
        with self._id_lock:
            self._next_id = self._next_id % 65535 + 1
            return self._next_id

    def ack(self, epoch: int, packet_ids: list[int]) -> bool:
        """PUBACKs (reason Success) for these packet ids, in one write; False if
        the connection they came on is gone."""
        if not packet_ids:
            return True
        body = struct.pack(
            f">{2 * len(packet_ids)}H", *chain.from_iterable((0x4002, p) for p in packet_ids)
        )
        return self._send(epoch, body)

    def subscribe(self, epoch: int, topic_filter: str, qos: int) -> int | None:
        """SUBSCRIBE; its packet id, or None if the connection is gone."""
        mid = self._packet_id()
        body = struct.pack(">H", mid) + b"\x00" + _string(topic_filter) + bytes([qos])
        return mid if self._send(epoch, _packet(0x82, body)) else None

    def unsubscribe(self, epoch: int, topic_filter: str, mid: int | None = None) -> int | None:
        """UNSUBSCRIBE (``mid``: a packet id from :meth:`new_packet_id`); its packet
        id, or None if the connection is gone."""
        mid = mid or self._packet_id()
        body = struct.pack(">H", mid) + b"\x00" + _string(topic_filter)
        return mid if self._send(epoch, _packet(0xA2, body)) else None

    def new_packet_id(self) -> int:
        """A packet id to register before the packet that uses it is sent."""
        return self._packet_id()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """PUBLISH at QoS 0 on whatever connection there is."""
        first = 0x31 if retain else 0x30
        return self._send(None, _packet(first, _string(topic) + b"\x00" + payload))

    def ping_if_due(self) -> None:
        """PINGREQ if nothing was sent for the keep-alive interval (so that a
        reader held back by the worker does not lose the connection). Never
        waits for another thread's send: the reader calls it, and a send
        under way is traffic the broker sees anyway."""
        if time.monotonic() - self._last_sent < self._keepalive:
            return
        if not self._wlock.acquire(blocking=False):
            return
        try:
            sent = self._send_locked(None, b"\xc0\x00")
        finally:
            self._wlock.release()
        if sent and self._ping_sent is None:
            self._ping_sent = time.monotonic()

    def stop(self) -> None:
        """DISCONNECT (normal: the session stays in the broker) and end the reader."""
        self._stop.set()
        with self._wlock:
            sock = self._sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.sendall(b"\xe0\x00")
                _shutdown(sock)
        self._thread.join(5)

    # --- the reader thread -------------------------------------------------------

    def _run(self) -> None:
        delay = 0.0
        unreachable = False
        while not self._stop.is_set():
            if delay and self._stop.wait(delay):
                return
            delay = min(max(delay * 2, BACKOFF_MIN_S), BACKOFF_MAX_S)
            try:
                sock = socket.create_connection(
                    (self.cfg.host, self.cfg.port), timeout=CONNECT_TIMEOUT_S
                )
            except OSError as exc:
                if not unreachable:
                    log.warning("ingest: cannot reach the broker (%s); retrying", exc)
                    unreachable = True
                continue
            unreachable = False
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.cfg.tls is not None:
                    sock = self.cfg.tls.wrap_socket(sock, server_hostname=self.cfg.host)
                buf = bytearray()
                session_present = self._handshake(sock, buf)
            except Refused as exc:
                log.error("ingest: broker refused the session: %s", exc)
                sock.close()
                continue
            except (OSError, ConnectionLost, ProtocolError, IndexError, ValueError) as exc:
                log.warning("ingest: connecting to the broker failed: %s", exc)
                sock.close()
                continue
            delay = 0.0
            self._serve(sock, buf, session_present)
            delay = BACKOFF_MIN_S

    def _handshake(self, sock: socket.socket, buf: bytearray) -> bool:
        """CONNECT and its CONNACK; whether the broker had our session."""
        cfg = self.cfg
        props = (
            b"\x11"
            + struct.pack(">I", cfg.session_expiry_s)
            + b"\x21"
            + struct.pack(">H", cfg.receive_maximum)
            + b"\x27"
            + struct.pack(">I", MAX_PACKET_BYTES)
        )
        # Flags: user name, password; clean start off.
        header = _string("MQTT") + b"\x05\xc0" + struct.pack(">H", cfg.keepalive_s)
        body = (
            header
            + _varint(len(props))
            + props
            + _string(cfg.client_id)
            + _string(cfg.username)
            + _string(cfg.password.encode())
        )
        sock.settimeout(CONNECT_TIMEOUT_S)
        sock.sendall(_packet(0x10, body))
        while True:
            packet = _cut(buf)
            if packet is not None:
                break
            data = sock.recv(READ_CHUNK)
            if not data:
                raise ConnectionLost("the broker closed the connection before CONNACK")
            buf += data
        first, payload = packet
        if first >> 4 != CONNACK or len(payload) < 2:
            raise ProtocolError(f"expected CONNACK, got packet type {first >> 4}")
        found, _ = properties(payload, 2) if len(payload) > 2 else ({}, 2)
        if payload[1] >= 0x80:
            raise Refused(reason_text(payload[1], str(found.get(REASON_STRING, ""))))
        keepalive = found.get(SERVER_KEEP_ALIVE)
        if isinstance(keepalive, int) and keepalive > 0:
            self._keepalive = float(keepalive)
        sock.settimeout(SEND_TIMEOUT_S)
        return bool(payload[0] & 1)

    def _serve(self, sock: socket.socket, buf: bytearray, session_present: bool) -> None:
        with self._wlock:
            self._epoch += 1
            epoch = self._epoch
            self._sock = sock
            self._last_sent = time.monotonic()
            self._ping_sent = None
        reason = "the connection ended"
        try:
            self.on_connect(epoch, session_present)
            self._read(sock, buf, epoch)
        except (OSError, ConnectionLost, ProtocolError, IndexError, ValueError) as exc:
            # IndexError, ValueError: a packet shorter than its fields say.
            reason = str(exc) or type(exc).__name__
        finally:
            # Shut down first: a send blocked on this connection fails at once
            # and lets go of the lock, instead of waiting out its timeout.
            _shutdown(sock)
            with self._wlock:
                self._sock = None
            sock.close()
        if not self._stop.is_set():
            self.on_disconnect(reason)

    def _read(self, sock: socket.socket, buf: bytearray, epoch: int) -> None:
        while not self._stop.is_set():
            if buf:
                self._dispatch(buf, epoch)
            now = time.monotonic()
            self.ping_if_due()
            wait = max(0.05, min(1.0, self._last_sent + self._keepalive - now))
            # TLS may hold decrypted bytes the socket no longer shows as readable.
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            ready = pending or select.select([sock], [], [], wait)[0]
            if not ready:
                # Only a socket with nothing to read is a silent broker: after
                # the worker held the reader back, the PINGRESP waits unread.
                ping = self._ping_sent
                if ping is not None and time.monotonic() - ping > self._keepalive:
                    raise ConnectionLost("no answer to PINGREQ within the keep-alive interval")
                continue
            data = sock.recv(READ_CHUNK)
            if not data:
                raise ConnectionLost("the broker closed the connection")
            self._ping_sent = None  # the broker is alive
            buf += data

    def _dispatch(self, buf: bytearray, epoch: int) -> None:
        """Handle every complete packet in ``buf`` and remove it from there."""
        pos, size = 0, len(buf)
        messages: list[Incoming] = []
        while True:
            header = _header(buf, pos, size)
            if header is None:
                break
            start, end = header
            if end > size:
                break  # the rest of the packet is still on its way
            first = buf[pos]
            if first >> 4 == PUBLISH:
                messages.append(_publish(first, buf, start, end))
            else:
                if messages:
                    self.on_messages(epoch, messages)
                    messages = []
                self._control(first, bytes(buf[start:end]))
            pos = end
        if messages:
            self.on_messages(epoch, messages)
        del buf[:pos]

    def _control(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == UNSUBACK:
            self.on_unsuback(int.from_bytes(body[0:2], "big"))
        elif kind == SUBACK:
            _, pos = properties(body, 2)
            codes = list(body[pos:])
            refused = [c for c in codes if c >= 0x80]
            if refused:
                log.error("ingest: the broker refused a subscription: %s", reason_text(refused[0]))
            else:
                log.info("ingest: subscribed (granted QoS %s)", ", ".join(map(str, codes)))
        elif kind == PINGRESP:
            self._ping_sent = None
        elif kind == DISCONNECT:
            code = body[0] if body else 0
            found, _ = properties(body, 1) if len(body) > 1 else ({}, 1)
            raise ConnectionLost(
                "the broker disconnected us: "
                + reason_text(code, str(found.get(REASON_STRING, "")))
            )
        elif kind in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            pass  # this client publishes at QoS 0 and receives at most QoS 1
        else:
            raise ProtocolError(f"unexpected packet type {kind}")


def _publish(first: int, buf: bytearray, start: int, end: int) -> Incoming:
    qos = (first >> 1) & 3
    size = (buf[start] << 8) | buf[start + 1]
    pos = start + 2 + size
    topic = buf[start + 2 : pos].decode("utf-8", "replace")
    if qos == 1:
        packet_id = (buf[pos] << 8) | buf[pos + 1]
        pos += 2
    elif qos == 0:
        packet_id = 0
    else:
        raise ProtocolError("a QoS 2 PUBLISH on a QoS 1 subscription")
    # Properties: skipped (the CONNECT allows no topic aliases).
    plen = buf[pos]
    if plen < 0x80:
        pos += 1 + plen
    else:
        plen, pos = _read_varint(buf, pos)
        pos += plen
    if pos > end:
        raise ProtocolError("malformed PUBLISH")
    return topic, bytes(buf[pos:end]), packet_id, bool(first & 8)


def _header(buf: bytearray, pos: int, size: int) -> tuple[int, int] | None:
    """(start, end) of the body of the packet at ``pos``; None if its fixed
    header is not all in ``buf`` yet. A remaining length over four bytes, or
    over :data:`MAX_PACKET_BYTES`, is a protocol error."""
    length, shift, i = 0, 0, pos + 1
    while i < size:
        byte = buf[i]
        i += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            if i - pos + length > MAX_PACKET_BYTES:
                raise ProtocolError(f"a packet of {length} bytes, over the maximum we allow")
            return i, i + length
        shift += 7
        if shift > 21:
            raise ProtocolError("malformed remaining length")
    return None


def _cut(buf: bytearray) -> tuple[int, bytes] | None:
    """The first complete packet in ``buf`` (removed from it), or None."""
    header = _header(buf, 0, len(buf))
    if header is None or header[1] > len(buf):
        return None
    start, end = header
    packet = (buf[0], bytes(buf[start:end]))
    del buf[:end]
    return packet


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
