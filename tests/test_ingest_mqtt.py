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

from gateway.ingest.mqtt import (
    MAX_PACKET_BYTES,
    Incoming,
    IngestLink,
    LinkConfig,
    ProtocolError,
    _packet,
    _read_varint,
    _string,
    _varint,
    properties,
)
from gateway.ingest.worker import Inbox
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
        on_unsuback=lambda _mid: None,
        on_disconnect=events["disconnected"].append,
    )
    link.start()
    wait_until(lambda: events["connected"] == 1)
    link.subscribe(1, f"{gateway.settings.mqtt_topic_root}/+/+/#", qos=1)
    time.sleep(0.3)
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
