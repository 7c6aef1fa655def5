"""SIA DC-09 framing of Contact ID (``ADM-CID``) messages, and the receiver's replies.

A message on the wire (``Rrcvr`` optional, the rest mandatory)::

    LF CRC 0LLL "ADM-CID" SEQ Rrcvr Lline #ACCT [#ACCT|QXYZ GG CCC]_HH:MM:SS,MM-DD-YYYY CR

``CRC`` is CRC-16/ARC and ``0LLL`` the length, both as upper-case hex over the
part from the first quote through the timestamp. ``SEQ`` runs 0001-9999. The
timestamp is UTC: receivers refuse (NAK) a message stamped outside a narrow
band around their clock, which is how DC-09 stops replays.

Encrypted (``"*ADM-CID"``), everything after the ``[`` is replaced by the hex of
AES-CBC with a zero IV over ``pad|#ACCT|QXYZ GG CCC]_timestamp``; the pad is
1-16 random characters (never ``|``, ``[`` or ``]``) that fill the text to whole
16-byte blocks and make two identical events encrypt differently. Receivers
disagree on how a key is written down: see ``key_bytes``.

Replies: ``"ACK"`` (the message is taken; on an encrypted line it is
``"*ACK"`` with an encrypted timestamp, proof the receiver knows the key),
``"NAK"`` (refused: bad timestamp, unknown account, undecryptable) and
``"DUH"`` (understood the frame but not the event).
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from Crypto.Cipher import AES

KeyEncoding = Literal["ascii", "hex"]
MAX_SEQUENCE = 9999
_MAX_LENGTH = 0xFFF
_BLOCK = 16
_PAD_ALPHABET = string.ascii_letters + string.digits
_HEX_ID = re.compile(r"[0-9A-Fa-f]{1,6}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_FRAME = re.compile(r"(?P<crc>[0-9A-Fa-f]{4})(?P<length>[0-9A-Fa-f]{4})(?P<body>\".*)", re.S)
_REPLY = re.compile(r"\"(?P<star>\*?)(?P<kind>ACK|NAK|DUH)\"(?P<sequence>\d{4})?(?P<rest>.*)", re.S)
_TIMESTAMP = r"_(\d{2}:\d{2}:\d{2},\d{2}-\d{2}-\d{4})"
_REPLY_TIMESTAMP = re.compile(_TIMESTAMP + r"$")
# What an encrypted ACK decrypts to: padding, "]", optional extended data, timestamp.
_ACK_PLAINTEXT = re.compile(r"[^\]]*\](?:\[[^\[\]]*\])*" + _TIMESTAMP, re.S)


class FrameError(ValueError):
    """A reply that is not a well-formed DC-09 answer to the message sent."""


class ReplyKind(StrEnum):
    """What the receiver answered."""

    ACK = "ACK"
    NAK = "NAK"
    DUH = "DUH"


@dataclass(frozen=True)
class Reply:
    """A parsed reply; ``timestamp`` is the receiver's clock when it says (NAKs do)."""

    kind: ReplyKind
    sequence: str | None
    encrypted: bool
    timestamp: str | None


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (reflected polynomial 0xA001, initial value 0), DC-09's checksum."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def check_hex_id(name: str, value: str) -> str:
    """Validate a receiver or line number (1-6 hex characters) and return it upper-case."""
    if not _HEX_ID.fullmatch(value):
        raise ValueError(f"{name} must be 1 to 6 hex characters, not {value!r}")
    return value.upper()


def key_bytes(key: str, encoding: KeyEncoding = "ascii") -> bytes:
    """The AES key for a receiver's key string.

    ``ascii``: 16, 24 or 32 hex characters whose characters are the key bytes
    (pysiaalarm, Ajax and the Home Assistant SIA integration). ``hex``: 32,
    48 or 64 hex digits encoding the key bytes (receivers that take a binary
    key). The same text means different keys under the two, so the encoding
    is stated, never guessed.
    """
    sizes = (16, 24, 32) if encoding == "ascii" else (32, 48, 64)
    if not _HEX.fullmatch(key) or len(key) not in sizes:
        chars = ", ".join(map(str, sizes))
        raise ValueError(f"a DC-09 {encoding} key must be {chars} hex characters")
    return key.encode("ascii") if encoding == "ascii" else bytes.fromhex(key)


def encode_message(
    data: str,
    *,
    account: str,
    sequence: int,
    timestamp: datetime,
    line: str,
    receiver: str | None = None,
    key: bytes | None = None,
) -> bytes:
    """One ``ADM-CID`` message with its LF, CRC, length and CR, ready to write.

    ``data`` is the bracketed data part (``contact_id_data``); ``timestamp``
    must be timezone-aware and is sent in UTC.
    """
    if not data.startswith("[") or not data.endswith("]"):
        raise ValueError(f"data must be a bracketed DC-09 data part, not {data!r}")
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence must be 1 to {MAX_SEQUENCE}, not {sequence}")
    if timestamp.tzinfo is None:
        raise ValueError("the timestamp must be timezone-aware")
    stamp = timestamp.astimezone(UTC).strftime("_%H:%M:%S,%m-%d-%Y")
    prefix = f"R{receiver}" if receiver else ""
    if key is None:
        body = f'"ADM-CID"{sequence:04d}{prefix}L{line}#{account}{data}{stamp}'
    else:
        cipher_hex = encrypt(key, data[1:] + stamp)
        body = f'"*ADM-CID"{sequence:04d}{prefix}L{line}#{account}[{cipher_hex}'
    if len(body) > _MAX_LENGTH:
        raise ValueError(f"message of {len(body)} characters exceeds DC-09's {_MAX_LENGTH}")
    raw = body.encode("ascii")
    return b"\n" + f"{crc16_arc(raw):04X}{len(raw):04X}".encode("ascii") + raw + b"\r"


def encrypt(key: bytes, text: str) -> str:
    """Upper-case hex of AES-CBC (zero IV) over ``pad|text``, DC-09's encrypted block."""
    pad_length = _BLOCK - (len(text) + 1) % _BLOCK
    pad = "".join(secrets.choice(_PAD_ALPHABET) for _ in range(pad_length))
    cipher = AES.new(key, AES.MODE_CBC, iv=bytes(_BLOCK))
    return cipher.encrypt(f"{pad}|{text}".encode("ascii")).hex().upper()


def decrypt(key: bytes, cipher_hex: str) -> str:
    """The text of an encrypted block; ``FrameError`` if it is not whole AES blocks of hex."""
    try:
        cipher_bytes = bytes.fromhex(cipher_hex)
    except ValueError as exc:
        raise FrameError("encrypted part is not hex") from exc
    if not cipher_bytes or len(cipher_bytes) % _BLOCK:
        raise FrameError("encrypted part is not whole AES blocks")
    plain = AES.new(key, AES.MODE_CBC, iv=bytes(_BLOCK)).decrypt(cipher_bytes)
    return plain.decode("ascii", errors="replace")


def reply_end(buffer: bytes) -> int | None:
    """Where the first complete reply in ``buffer`` ends, or None if more must be read.

    A reply is a frame ending in CR; a receiver that cannot tie a message to an
    account may answer a bare ``"NAK"`` with no framing, which is complete too.
    """
    cr = buffer.find(b"\r")
    if cr >= 0:
        return cr + 1
    if re.fullmatch(rb'\s*"\*?(ACK|NAK|DUH)"', buffer):
        return len(buffer)
    return None


def parse_reply(raw: bytes, *, sequence: int, key: bytes | None) -> Reply:
    """Parse and check a reply to message ``sequence``; ``FrameError`` if it is not one.

    An ACK counts only if it is framed (its CRC checked), names our sequence
    number and, on an encrypted line, is itself encrypted with our key:
    anything else could be a garbled, stale or forged answer, and taking it
    for an ACK would drop the alarm. Only a NAK may come bare.
    """
    text = raw.decode("ascii", errors="replace").strip()
    if not text:
        raise FrameError("empty reply")
    framed = _FRAME.fullmatch(text)
    if framed:
        body = framed["body"]
        if int(framed["crc"], 16) != crc16_arc(body.encode("ascii", errors="replace")):
            raise FrameError(f"reply CRC mismatch: {text!r}")
        if int(framed["length"], 16) != len(body):
            raise FrameError(f"reply length mismatch: {text!r}")
    else:
        body = text
    match = _REPLY.fullmatch(body)
    if not match:
        raise FrameError(f"not a DC-09 reply: {text!r}")
    kind = ReplyKind(match["kind"])
    encrypted = bool(match["star"])
    stamp = _REPLY_TIMESTAMP.search(match["rest"])
    timestamp = stamp[1] if stamp else None
    if kind is not ReplyKind.NAK and match["sequence"] != f"{sequence:04d}":
        raise FrameError(f"reply is for sequence {match['sequence']}, not {sequence:04d}")
    if kind is ReplyKind.ACK and not framed:
        raise FrameError(f"ACK without CRC and length: {text!r}")
    if kind is ReplyKind.ACK and (key is not None or encrypted):
        timestamp = _check_encrypted_ack(match["rest"], key, encrypted)
    return Reply(kind, match["sequence"], encrypted, timestamp)


def _check_encrypted_ack(rest: str, key: bytes | None, encrypted: bool) -> str:
    if key is None:
        raise FrameError("encrypted ACK on an unencrypted line")
    if not encrypted:
        raise FrameError("unencrypted ACK on an encrypted line")
    _, bracket, cipher_hex = rest.partition("[")
    if not bracket:
        raise FrameError("encrypted ACK without a data part")
    plain = _ACK_PLAINTEXT.fullmatch(decrypt(key, cipher_hex))
    if not plain:
        raise FrameError("encrypted ACK does not decrypt with our key")
    return plain[1]
