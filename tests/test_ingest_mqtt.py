"""The ingest worker's own MQTT v5 client: framing byte by byte (packets split
across reads, every malformed length, oversize packets), the CONNECT it
sends, and keep-alive while the worker holds the reader back — the last one
against the real broker. The framing tests feed the parser bytes directly:
no broker can be made to send a malformed packet on purpose."""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

import pytest

from gateway.ingest.inbox import Inbox
from gateway.ingest.mqtt import (
    MAX_PACKET_BYTES,
    Incoming,
    IngestLink,
    LinkConfig,
    ProtocolError,
    _header,
    _packet,
    _read_varint,
    _string,
    _varint,
    properties,
)
from tests.conftest import Gateway
from tests.support import device_connect
from tests.test_ingest import wait_until

MALFORMED = (ProtocolError, IndexError, ValueError)
"""What a packet shorter than its fields say raises; the reader drops the connection."""


def _publish(topic: str, payload: bytes, packet_id: int = 0, props: bytes = b"") -> bytes:
    qos = 1 if packet_id else 0
    body = _string(topic) + (struct.pack(">H", packet_id) if qos else b"")
    return _packet(0x30 | qos << 1, body + _varint(len(props)) + props + payload)


class Collector:
    """An IngestLink that is never connected, for feeding its parser bytes."""

    def __init__(self) -> None:
        self.messages: list[Incoming] = []
        self.unsubacks: list[int] = []
        cfg = LinkConfig("127.0.0.1", 1, "c", "u", "p", 60, 10)
        self.link = IngestLink(
            cfg,
            on_connect=lambda *_: None,
            on_messages=lambda _epoch, found: self.messages.extend(found),
            on_unsuback=self.unsubacks.append,
            on_disconnect=lambda _reason: None,
        )

    def feed(self, data: bytes, step: int = 1) -> bytearray:
        buf = bytearray()
        for i in range(0, len(data), step):
            buf += data[i : i + step]
            self.link._dispatch(buf, 1)
        return buf


STREAM_PARTS = [
    _publish("moydom/h/d", b'{"occupancy": true}', packet_id=7, props=b"\x01\x01"),
    _packet(0xB0, struct.pack(">H", 9) + b"\x00"),  # UNSUBACK 9, between publishes
    _publish("moydom/h/d/availability", b'{"state": "online"}'),
    _publish("moydom/h/big", b"x" * 70_000, packet_id=8),  # a 3-byte remaining length
]


def test_packets_split_anywhere_arrive_whole_and_in_order() -> None:
    stream = b"".join(STREAM_PARTS)
    for step in (1, 2, 3, 7, 4096, len(stream)):
        got = Collector()
        assert got.feed(stream, step) == bytearray()  # nothing left over
        assert got.messages == [
            ("moydom/h/d", b'{"occupancy": true}', 7, False),
            ("moydom/h/d/availability", b'{"state": "online"}', 0, False),
            ("moydom/h/big", b"x" * 70_000, 8, False),
        ], step
        assert got.unsubacks == [9]


def test_every_truncated_publish_is_refused_not_misread() -> None:
    """A PUBLISH whose remaining length is shorter than its fields, followed
    by a valid packet: the parser must refuse it, never read the next
    packet's bytes as its packet id or payload."""
    whole = _publish("moydom/h/d", b"{}", packet_id=7, props=b"\x01\x01")
    body = whole[2:]  # one-byte remaining length
    follower = _publish("moydom/h/e", b"{}", packet_id=8)
    for cut in range(len(body) - 2):  # shorter than topic + id + properties
        short = bytes([whole[0]]) + _varint(cut) + body[:cut]
        got = Collector()
        with pytest.raises(MALFORMED):
            got.feed(short + follower, step=len(short) + len(follower))
        assert all(m[0] == "moydom/h/e" for m in got.messages), cut


@pytest.mark.parametrize(
    "header",
    [
        b"\x30\xff\xff\xff\xff\x01",  # a remaining length of five bytes
        b"\x30" + _varint(MAX_PACKET_BYTES),  # over the maximum we asked for
        b"\x32\xff\xff\xff\x7f",  # 256 MiB claimed
    ],
)
def test_malformed_and_oversize_lengths_are_refused_at_the_header(header: bytes) -> None:
    with pytest.raises(ProtocolError):
        Collector().feed(header + b"\x00" * 16, step=len(header) + 16)


def test_a_property_block_running_past_its_packet_is_refused() -> None:
    with pytest.raises(ProtocolError):
        properties(b"\x00\x00\x05\x11\x00", 2)


def test_connect_asks_for_a_maximum_packet_size() -> None:
    """Read the CONNECT the client sends to a listening socket."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    link = IngestLink(
        LinkConfig("127.0.0.1", port, "moydom-ingest-t", "u", "p", 60, 10),
        on_connect=lambda *_: None,
        on_messages=lambda *_: None,
        on_unsuback=lambda _mid: None,
        on_disconnect=lambda _reason: None,
    )
    link.start()
    conn, _ = server.accept()
    conn.settimeout(5)
    data = b""
    while len(data) < 40:
        data += conn.recv(4096)
    link._stop.set()
    conn.close()
    server.close()
    link._thread.join(5)
    assert data[0] == 0x10
    _, pos = _read_varint(data, 1)  # past the fixed header
    found, _ = properties(data, pos + 10)  # past name, version, flags and keep-alive
    assert found[0x27] == MAX_PACKET_BYTES and found[0x21] == 10


def test_keep_alive_holds_while_the_worker_holds_the_reader_back(gateway: Gateway) -> None:
    """The worker's inbox is full for three keep-alive intervals: the reader
    waits in Inbox.put_many, which pings; the broker keeps the connection
    (it drops a client silent for 1.5 keep-alives)."""
    gateway.create_contract("8201")
    motion = gateway.create_device("8201", "motion", "hall")
    inbox = Inbox(maxsize=1)
    stop = threading.Event()
    events: dict[str, Any] = {"connected": 0, "disconnected": []}
    subscribed = threading.Event()
    link: IngestLink

    def on_messages(_epoch: int, found: list[Incoming]) -> None:
        inbox.put_many([found], stop, link.ping_if_due)  # type: ignore[list-item]

    link = IngestLink(
        LinkConfig(
            "127.0.0.1",
            gateway.mqtt_port,
            "moydom-ingest-keepalive",
            *gateway.service_credentials(),
            session_expiry_s=60,
            receive_maximum=10,
            keepalive_s=2,
        ),
        on_connect=lambda epoch, _present: events.update(connected=epoch),
        on_messages=on_messages,
        on_unsuback=lambda _mid: subscribed.set(),
        on_disconnect=events["disconnected"].append,
    )
    link.start()
    wait_until(lambda: events["connected"] == 1)
    link.subscribe(1, f"{gateway.settings.mqtt_topic_root}/+/+/#", qos=1)
    # The broker handles a connection's packets in order: the probe's answer
    # means the subscription is in place.
    link.unsubscribe(1, f"{gateway.settings.mqtt_topic_root}/$probe")
    assert subscribed.wait(10)
    device = device_connect(gateway.mqtt_port, motion)
    topic = motion["topics"]["state"]
    device.publish(topic, {"seq": 0})
    wait_until(lambda: len(inbox._items) == 1)  # the inbox is full
    device.publish(topic, {"seq": 1})  # the reader waits in put_many with this one
    time.sleep(6.5)  # three keep-alive intervals
    assert events["disconnected"] == []
    taken = [inbox.take(1, 1.0, 0.0) for _ in range(2)]
    device.publish(topic, {"seq": 2})
    taken.append(inbox.take(1, 5.0, 0.0))
    stop.set()
    link.stop()
    device.close()
    assert events["connected"] == 1 and events["disconnected"] == []
    seqs = [m[1] for batch in taken for found in batch for m in found]  # type: ignore[union-attr]
    assert seqs == [b'{"seq": 0}', b'{"seq": 1}', b'{"seq": 2}']


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
    ],
)
def test_every_width_of_remaining_length_is_read_and_a_cut_header_waits(
    length: int, encoded: bytes
) -> None:
    """One to three length bytes (the fourth only says more than we allow):
    read exactly; the fixed header cut before its last byte is incomplete,
    not an error and not a guess."""
    assert _varint(length) == encoded
    packet = bytearray(b"\x30" + encoded)
    for cut in range(1, len(packet)):
        assert _header(packet[:cut], 0, cut) is None
    if 1 + len(encoded) + length <= MAX_PACKET_BYTES:
        assert _header(packet, 0, len(packet)) == (1 + len(encoded), 1 + len(encoded) + length)
    else:
        with pytest.raises(ProtocolError):
            _header(packet, 0, len(packet))


@pytest.mark.parametrize("continued", [4, 5, 8])
def test_a_remaining_length_with_a_fifth_byte_is_refused_even_when_cut(continued: int) -> None:
    """Four bytes with the continuation bit set: malformed, whatever follows,
    and refused as soon as the fifth length byte is read."""
    header = b"\x30" + b"\x80" * continued
    assert _header(bytearray(header[:4]), 0, 4) is None  # three bytes: still possible
    with pytest.raises(ProtocolError):
        _header(bytearray(header), 0, len(header))


def test_the_maximum_packet_size_is_the_whole_packet() -> None:
    """Maximum Packet Size counts the fixed header too (MQTT v5, 3.1.2.11.4)."""
    body = MAX_PACKET_BYTES - 4  # a type byte and three length bytes before it
    assert len(_varint(body)) == 3
    fits = bytearray(b"\x30" + _varint(body))
    assert _header(fits, 0, len(fits)) is not None
    over = bytearray(b"\x30" + _varint(body + 1))
    with pytest.raises(ProtocolError):
        _header(over, 0, len(over))


class FakeBroker:
    """A listening socket that accepts the link, answers its CONNECT, and then
    does only what the test says: the broker's side of a real connection."""

    def __init__(self, rcvbuf: int | None = None) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        if rcvbuf is not None:  # inherited by the accepted socket
            self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> socket.socket:
        conn, _ = self.server.accept()
        conn.settimeout(10)
        buf = bytearray()
        while _header(buf, 0, len(buf)) is None or _header(buf, 0, len(buf))[1] > len(buf):  # type: ignore[index]
            buf += conn.recv(4096)
        assert buf[0] == 0x10  # CONNECT
        conn.sendall(_packet(0x20, b"\x00\x00\x00"))  # CONNACK, no session, no properties
        self.conn = conn
        return conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


def _link(port: int, **callbacks: Any) -> IngestLink:
    return IngestLink(
        LinkConfig("127.0.0.1", port, "moydom-ingest-t", "u", "p", 60, 10),
        on_connect=callbacks.get("on_connect", lambda *_: None),
        on_messages=callbacks.get("on_messages", lambda *_: None),
        on_unsuback=callbacks.get("on_unsuback", lambda _mid: None),
        on_disconnect=callbacks.get("on_disconnect", lambda _reason: None),
    )


def test_a_packet_claiming_more_than_the_maximum_drops_the_connection_at_once() -> None:
    """Over a real socket: the header alone is enough; the link does not wait
    for (or buffer) the megabytes it claims, and reconnects."""
    broker = FakeBroker()
    dropped: list[str] = []
    gone = threading.Event()

    def on_disconnect(reason: str) -> None:
        dropped.append(reason)
        gone.set()

    link = _link(broker.port, on_disconnect=on_disconnect)
    link.start()
    try:
        conn = broker.accept()
        conn.sendall(b"\x30" + _varint(MAX_PACKET_BYTES))  # the header only
        assert gone.wait(10)
        assert "over the maximum" in dropped[0]
        assert conn.recv(16) == b""  # the link closed its end
        broker.conn = broker.accept()  # and came back
    finally:
        link.stop()
        broker.close()


def test_a_publish_of_exactly_the_maximum_is_delivered_over_a_socket() -> None:
    broker = FakeBroker()
    got: list[Incoming] = []
    arrived = threading.Event()

    def on_messages(_epoch: int, found: list[Incoming]) -> None:
        got.extend(found)
        arrived.set()

    link = _link(broker.port, on_messages=on_messages)
    link.start()
    try:
        conn = broker.accept()
        topic = "moydom/h/big"
        head = _string(topic) + b"\x00"  # QoS 0, no properties
        body = MAX_PACKET_BYTES - 4 - len(head)  # a type byte, three length bytes
        packet = _packet(0x30, head + b"x" * body)
        assert len(packet) == MAX_PACKET_BYTES
        for i in range(0, len(packet), 65_536):  # in pieces, as TCP may deliver it
            conn.sendall(packet[i : i + 65_536])
        assert arrived.wait(10)
        assert got == [(topic, b"x" * body, 0, False)]
    finally:
        link.stop()
        broker.close()


def test_no_lock_is_held_across_a_blocking_send() -> None:
    """The broker stops reading, so a large send blocks with the sending lock
    held. Meanwhile a new packet id (which the worker takes while it
    registers a probe), a due ping (the reader's) and the reader itself (an
    UNSUBACK arriving) must not wait for that send."""
    broker = FakeBroker(rcvbuf=4096)
    answered: list[int] = []
    unsuback = threading.Event()

    def on_unsuback(mid: int) -> None:
        answered.append(mid)
        unsuback.set()

    link = _link(broker.port, on_unsuback=on_unsuback)
    link.start()
    try:
        conn = broker.accept()
        sender = threading.Thread(target=link.publish, args=("moydom/x", b"x" * (32 << 20)))
        sender.start()
        wait_until(link._wlock.locked)
        assert sender.is_alive()  # blocked in sendall, the lock held
        took: list[int] = []
        getter = threading.Thread(target=lambda: took.append(link.new_packet_id()))
        getter.start()
        getter.join(5)
        assert took, "new_packet_id waited for the blocked send"
        link._last_sent = 0.0  # a ping is due
        pinger = threading.Thread(target=link.ping_if_due)
        pinger.start()
        pinger.join(5)
        assert not pinger.is_alive(), "ping_if_due waited for the blocked send"
        conn.sendall(_packet(0xB0, struct.pack(">H", 77) + b"\x00"))
        assert unsuback.wait(5), "the reader was held up by the blocked send"
        assert answered == [77] and sender.is_alive()
    finally:
        conn.close()  # the blocked send fails; the link lets go
        link.stop()
        broker.close()
        sender.join(10)
    assert not sender.is_alive()
