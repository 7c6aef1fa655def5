"""The central-station link against a real DC-09 receiver: pysiaalarm's.

The receiver runs in its own process (this module, run as
``python -m tests.test_sia receive PORT ACCOUNT[:KEY]...``) and prints each
event it accepts as a JSON line. A separate process is what lets a test
restart the receiver for real: killing it closes its connections the way a
crashed central station does, which stopping an in-process server does not.
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pysiaalarm.account import SIAAccount
from pysiaalarm.event import SIAEvent
from pysiaalarm.sync.client import SIAClient

from gateway.dispatch import dc09
from gateway.dispatch.contactid import ContactIdEvent, contact_id_data
from gateway.dispatch.sia import CentralStationError, CentralStationLink
from tests.support import free_port

# Every Contact ID code moydom sends (alarms/contactid.py): the alarms of the
# brief (panic, duress, burglary, entry/exit, tamper, water leak, supervision,
# open/close by user, wrong code), then remote arm/disarm, cancel, sensor
# tamper trouble and bypass.
MOYDOM_CODES = [120, 121, 130, 134, 137, 154, 381, 401, 461, 407, 406, 383, 570]
BURGLARY, TAMPER, PANIC, WATER_LEAK, OPEN_CLOSE = 130, 137, 120, 154, 401
KEY = "0123456789ABCDEF"
REPO = Path(__file__).resolve().parents[1]
WRONG_KEY = "FEDCBA9876543210"
KEY_256 = "00112233445566778899AABBCCDDEEFF"


class Receiver:
    """pysiaalarm's threaded SIAClient in a child process, on a 127.0.0.1 port."""

    def __init__(self, port: int, accounts: list[str]) -> None:
        self.port = port
        self.accounts = accounts
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.test_sia", "receive", str(self.port), *self.accounts],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._proc = proc
        ready = threading.Event()
        threading.Thread(target=self._read, args=(proc, ready), daemon=True).start()
        assert ready.wait(10), "receiver did not start"

    def _read(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "ready":
                ready.set()
            else:
                self.events.put(json.loads(line))

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None

    def expect(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def drain(self, wait: float) -> list[dict[str, Any]]:
        """Every event that arrives within ``wait`` seconds."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.events.get(timeout=left))
            except queue.Empty:
                break
        return got

    def nothing(self, wait: float = 0.5) -> bool:
        try:
            self.events.get(timeout=wait)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    started: list[Receiver] = []

    def start(*accounts: str) -> Receiver:
        receiver = Receiver(free_port(), list(accounts))
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.kill()


def test_unencrypted_events_arrive_with_code_zone_and_account(receiver_factory: Any) -> None:
    receiver = receiver_factory("1234")
    codes = MOYDOM_CODES

    async def scenario() -> None:
        link = CentralStationLink("127.0.0.1", receiver.port, "1234")
        try:
            for zone, code in enumerate(codes, start=1):
                await link.send(ContactIdEvent("1234", code, zone=zone))
        finally:
            await link.close()

    asyncio.run(scenario())
    got = [receiver.expect() for _ in codes]
    assert [(e["event_type"], e["ri"], e["account"]) for e in got] == [
        (f"{code:03d}", f"{zone:03d}", "1234") for zone, code in enumerate(codes, start=1)
    ]
    assert got[codes.index(BURGLARY)]["code"] == "BA"  # as the receiver's SIA mapping reads it
    assert {e["event_qualifier"] for e in got} == {"1"}
    assert {e["partition"] for e in got} == {"01"}
    # One connection, a new sequence number per message.
    assert [e["sequence"] for e in got] == [f"{n:04d}" for n in range(1, len(codes) + 1)]


@pytest.mark.parametrize(
    ("receiver_key", "link_key", "encoding"),
    [
        (KEY, KEY, "ascii"),
        (KEY_256, KEY_256, "ascii"),
        # The same AES-128 key written as 32 hex digits of its bytes.
        (KEY, KEY.encode().hex(), "hex"),
    ],
)
def test_encrypted_event_arrives(
    receiver_factory: Any, receiver_key: str, link_key: str, encoding: dc09.KeyEncoding
) -> None:
    receiver = receiver_factory(f"5678:{receiver_key}")
    event = ContactIdEvent("5678", OPEN_CLOSE, 3, zone=7)

    async def scenario() -> None:
        link = CentralStationLink(
            "127.0.0.1", receiver.port, "5678", key=link_key, key_encoding=encoding, receiver="1"
        )
        try:
            await link.send(event)
        finally:
            await link.close()

    asyncio.run(scenario())
    got = receiver.expect()
    assert got["encrypted"] is True
    assert (got["event_type"], got["event_qualifier"], got["ri"]) == ("401", "3", "007")
    assert got["code"] == "CL"  # closing (armed) by user
    assert got["receiver"] == "R1"


def test_the_ack_on_an_encrypted_line_is_encrypted_with_the_key(receiver_factory: Any) -> None:
    receiver = receiver_factory(f"5678:{KEY}")
    frame = _frame(ContactIdEvent("5678", PANIC), key=KEY)
    reply = asyncio.run(_exchange_raw(receiver.port, frame))
    parsed = dc09.parse_reply(reply, sequence=1, key=dc09.key_bytes(KEY))
    assert (parsed.kind, parsed.encrypted) == (dc09.ReplyKind.ACK, True)
    assert parsed.timestamp is not None  # decrypted from the receiver's ACK
    with pytest.raises(dc09.FrameError, match="does not decrypt"):
        dc09.parse_reply(reply, sequence=1, key=dc09.key_bytes(WRONG_KEY))


def test_wrong_key_is_not_acked(receiver_factory: Any) -> None:
    receiver = receiver_factory(f"5678:{KEY}")

    async def scenario() -> None:
        link = CentralStationLink("127.0.0.1", receiver.port, "5678", key=WRONG_KEY)
        try:
            await link.send(ContactIdEvent("5678", BURGLARY, zone=1))
        finally:
            await link.close()

    with pytest.raises(CentralStationError) as err:
        asyncio.run(scenario())
    assert err.value.reason == "nak"
    assert receiver.nothing()


def test_receiver_not_running_fails_fast_with_connection_refused() -> None:
    async def scenario() -> None:
        link = CentralStationLink("127.0.0.1", free_port(), "1234")
        await link.send(ContactIdEvent("1234", BURGLARY))

    started = time.monotonic()
    with pytest.raises(CentralStationError) as err:
        asyncio.run(scenario())
    assert err.value.reason == "connection refused"
    assert time.monotonic() - started < 1.0


def test_link_recovers_after_the_receiver_restarts(receiver_factory: Any) -> None:
    receiver = receiver_factory("1234")
    failures: list[str] = []
    first: list[dict[str, Any]] = []

    async def scenario() -> None:
        link = CentralStationLink("127.0.0.1", receiver.port, "1234")
        try:
            await link.send(ContactIdEvent("1234", BURGLARY, zone=1))
            # Read what it received before killing it: a killed receiver
            # takes along what it had not yet handed over.
            first.append(await asyncio.to_thread(receiver.expect))
            await asyncio.to_thread(receiver.kill)
            await asyncio.to_thread(receiver.start)
            for _ in range(2):
                try:
                    await link.send(ContactIdEvent("1234", BURGLARY, zone=2))
                    return
                except CentralStationError as exc:
                    failures.append(exc.reason)
        finally:
            await link.close()

    asyncio.run(scenario())
    assert first[0]["ri"] == "001"
    assert receiver.expect()["ri"] == "002"
    assert len(failures) <= 1, failures


def test_stale_timestamp_is_nakked_and_the_next_attempt_is_fresh(receiver_factory: Any) -> None:
    """The receiver NAKs a clock 10 min behind; each attempt re-stamps and re-numbers."""
    receiver = receiver_factory("1234")
    skew = [timedelta(0)]

    async def scenario() -> None:
        link = CentralStationLink(
            "127.0.0.1", receiver.port, "1234", clock=lambda: datetime.now(UTC) - skew[0]
        )
        try:
            await link.send(ContactIdEvent("1234", WATER_LEAK, zone=3))
            skew[0] = timedelta(minutes=10)
            with pytest.raises(CentralStationError) as err:
                await link.send(ContactIdEvent("1234", WATER_LEAK, zone=4))
            assert err.value.reason == "nak"
            assert "receiver time" in err.value.detail
            skew[0] = timedelta(0)
            await link.send(ContactIdEvent("1234", WATER_LEAK, zone=4))
        finally:
            await link.close()

    asyncio.run(scenario())
    first, retried = receiver.expect(), receiver.expect()
    assert (first["sequence"], first["ri"]) == ("0001", "003")
    assert (retried["sequence"], retried["ri"]) == ("0003", "004")
    assert receiver.nothing()


def test_receiver_checks_the_crc(receiver_factory: Any) -> None:
    """A frame whose CRC disagrees is dropped (empty answer); the same frame intact is ACKed."""
    receiver = receiver_factory("1234")
    frame = _frame(ContactIdEvent("1234", TAMPER, zone=9))
    bad_crc = frame[:1] + (b"0000" if frame[1:5] != b"0000" else b"FFFF") + frame[5:]
    assert asyncio.run(_exchange_raw(receiver.port, bad_crc)).strip() == b""
    assert receiver.nothing()
    reply = asyncio.run(_exchange_raw(receiver.port, frame))
    assert dc09.parse_reply(reply, sequence=1, key=None).kind is dc09.ReplyKind.ACK
    assert receiver.expect()["event_type"] == "137"


def test_a_receiver_that_never_answers_times_out() -> None:
    async def scenario() -> None:
        async def silent(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
            await reader.read()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = CentralStationLink("127.0.0.1", port, "1234", ack_timeout_s=0.3)
        try:
            with pytest.raises(CentralStationError) as err:
                await link.send(ContactIdEvent("1234", BURGLARY))
            assert err.value.reason == "timeout"
        finally:
            await link.close()
            server.close()

    asyncio.run(scenario())


def test_a_receiver_that_hangs_up_is_a_lost_connection() -> None:
    async def scenario() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r")
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = CentralStationLink("127.0.0.1", port, "1234")
        try:
            with pytest.raises(CentralStationError) as err:
                await link.send(ContactIdEvent("1234", BURGLARY))
            assert err.value.reason == "connection lost"
        finally:
            await link.close()
            server.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("key", "encoding"),
    [("0123", "ascii"), (KEY + "0", "ascii"), ("G" * 16, "ascii"), (KEY, "hex"), ("Z" * 32, "hex")],
)
def test_bad_keys_are_refused(key: str, encoding: dc09.KeyEncoding) -> None:
    with pytest.raises(ValueError, match="key"):
        CentralStationLink("127.0.0.1", 1, "1234", key=key, key_encoding=encoding)


def test_frame_layout_length_and_crc() -> None:
    assert dc09.crc16_arc(b"123456789") == 0xBB3D  # the CRC-16/ARC check value
    event = ContactIdEvent("1234", BURGLARY, zone=15)
    assert contact_id_data(event) == "[#1234|1130 01 015]"
    stamp = datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC)
    frame = _frame(event, receiver="12", line="3", timestamp=stamp)
    body = b'"ADM-CID"0001R12L3#1234[#1234|1130 01 015]_23:59:58,12-31-2026'
    assert frame == b"\n" + f"{dc09.crc16_arc(body):04X}{len(body):04X}".encode() + body + b"\r"
    assert frame[5:9] == b"003E"


def _framed(body: bytes) -> bytes:
    """A reply as a receiver frames it: LF, CRC, length, body, CR."""
    return b"\n" + f"{dc09.crc16_arc(body):04X}{len(body):04X}".encode() + body + b"\r"


_GOOD_ACK = _framed(b'"ACK"0001L0#1234[]')


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (_framed(b'"ACK"0002L0#1234[]'), "sequence 0002"),  # an answer to another message
        (_framed(b'"*ACK"0001L0#1234[00112233445566778899AABBCCDDEEFF'), "encrypted ACK on an"),
        (b'"ACK"0001L0#1234[]', "ACK without CRC"),
        (b'\n0000000A"ACK"0001\r', "CRC mismatch"),
        (
            _framed(b'"ACK"0001L0#1234[]')[:5] + b"0099" + _framed(b'"ACK"0001L0#1234[]')[9:],
            "length",
        ),
        (b"garbage\r", "not a DC-09 reply"),
    ],
)
def test_replies_that_are_not_an_ack_for_this_message(reply: bytes, error: str) -> None:
    with pytest.raises(dc09.FrameError, match=error):
        dc09.parse_reply(reply, sequence=1, key=None)


def test_unencrypted_ack_on_an_encrypted_line_is_refused() -> None:
    with pytest.raises(dc09.FrameError, match="unencrypted ACK"):
        dc09.parse_reply(_framed(b'"ACK"0001L0#1234[]'), sequence=1, key=dc09.key_bytes(KEY))


def test_pysiaalarm_replies_parse() -> None:
    """Replies as pysiaalarm 3.2.2 writes them, "None" where no receiver was sent included."""
    ack = dc09.parse_reply(_framed(b'"ACK"0001NoneL0#1234[]'), sequence=1, key=None)
    assert ack.kind is dc09.ReplyKind.ACK
    nak = dc09.parse_reply(
        _framed(b'"NAK"0000NoneL0A0[]_16:44:06,11-25-2026'), sequence=5, key=None
    )
    assert (nak.kind, nak.timestamp) == (dc09.ReplyKind.NAK, "16:44:06,11-25-2026")
    assert dc09.reply_end(b'"NAK"') == 5
    assert dc09.reply_end(b"\n1234") is None
    assert dc09.parse_reply(b'"NAK"', sequence=7, key=None).kind is dc09.ReplyKind.NAK
    duh = dc09.parse_reply(_framed(b'"DUH"0007L0#1234[]'), sequence=7, key=None)
    assert duh.kind is dc09.ReplyKind.DUH


@given(
    account=st.from_regex(r"[0-9A-Fa-f]{3,16}", fullmatch=True),
    code=st.integers(100, 999),
    qualifier=st.sampled_from([1, 3, 6]),
    partition=st.integers(0, 99),
    zone=st.integers(0, 999),
    key=st.none() | st.sampled_from([KEY, KEY_256]),
)
def test_every_valid_event_decodes_in_the_receiver(
    account: str, code: int, qualifier: int, partition: int, zone: int, key: str | None
) -> None:
    """pysiaalarm's own parser reads back every field of every event we can build."""
    event = ContactIdEvent(account, code, qualifier, partition, zone)
    frame = _frame(event, key=key, timestamp=datetime.now(UTC)).decode("ascii").strip()
    parsed = SIAEvent.from_line(frame, {event.account: SIAAccount(event.account, key)})
    assert parsed.valid_message  # the receiver's CRC agrees
    assert (parsed.account, parsed.event_type, parsed.event_qualifier) == (
        event.account,
        f"{code:03d}",
        str(qualifier),
    )
    assert (parsed.partition, parsed.ri) == (f"{partition:02d}", f"{zone:03d}")
    assert parsed.valid_timestamp


_bad_accounts = st.text(max_size=20).filter(
    lambda s: not (3 <= len(s) <= 16 and all(c in "0123456789abcdefABCDEF" for c in s))
)
_bad_codes = st.integers().filter(lambda n: not 100 <= n <= 999) | st.booleans()
_bad_zones = st.integers().filter(lambda n: not 0 <= n <= 999) | st.booleans() | st.text()


@given(account=_bad_accounts)
def test_bad_account_is_refused(account: str) -> None:
    with pytest.raises(ValueError, match="account"):
        ContactIdEvent(account, 130)


@given(code=_bad_codes)
def test_bad_code_is_refused(code: int) -> None:
    with pytest.raises(ValueError, match="code"):
        ContactIdEvent("1234", code)


@given(zone=_bad_zones)
def test_bad_zone_is_refused(zone: Any) -> None:
    with pytest.raises(ValueError, match="zone"):
        ContactIdEvent("1234", 130, zone=zone)


@pytest.mark.parametrize("qualifier", [0, 2, 4, 5, 7, True])
def test_bad_qualifier_is_refused(qualifier: int) -> None:
    with pytest.raises(ValueError, match="qualifier"):
        ContactIdEvent("1234", 130, qualifier)


def test_account_is_kept_upper_case() -> None:
    assert ContactIdEvent("abc", 130).account == "ABC"


def _frame(
    event: ContactIdEvent,
    *,
    key: str | None = None,
    receiver: str | None = None,
    line: str = "0",
    timestamp: datetime | None = None,
) -> bytes:
    """Message number 1 for ``event``, stamped now unless a timestamp is given."""
    return dc09.encode_message(
        contact_id_data(event),
        account=event.account,
        sequence=1,
        timestamp=timestamp or datetime.now(UTC),
        line=line,
        receiver=receiver,
        key=dc09.key_bytes(key) if key else None,
    )


async def _exchange_raw(port: int, frame: bytes) -> bytes:
    """Write one frame on a new connection and return the receiver's whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        buffer = b""
        while dc09.reply_end(buffer) is None:
            chunk = await asyncio.wait_for(reader.read(1024), 5)
            assert chunk, "receiver closed without answering"
            buffer += chunk
        return buffer
    finally:
        writer.close()
        await writer.wait_closed()


def _data_account(content: str | None) -> str | None:
    match = re.search(r"#([0-9A-Fa-f]{3,16})\|", content or "")
    return match[1] if match else None


def _receive(port: int, accounts: list[str]) -> None:
    """The receiver process: pysiaalarm's SIAClient, one JSON line per accepted event."""
    lock = threading.Lock()

    def on_event(event: SIAEvent) -> None:
        record = {
            "account": event.account,
            "code": event.code,
            "event_type": event.event_type,
            "event_qualifier": event.event_qualifier,
            "partition": event.partition,
            "ri": event.ri,
            "sequence": event.sequence,
            "receiver": event.receiver,
            "encrypted": event.encrypted,
            # The data block's account (the home's), next to the header's above.
            "data_account": _data_account(event.content),
        }
        with lock:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()

    sia_accounts = []
    for spec in accounts:
        account, _, key = spec.partition(":")
        sia_accounts.append(SIAAccount(account, key or None))
    client = SIAClient("127.0.0.1", port, sia_accounts, function=on_event)
    client.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin or kills us
    client.stop()


if __name__ == "__main__" and sys.argv[1:2] == ["receive"]:
    _receive(int(sys.argv[2]), sys.argv[3:])
