"""Ademco Contact ID events, as the data part of a SIA DC-09 ``ADM-CID`` message.

A Contact ID report is ``ACCT MT QXYZ GG CCC``: Q the qualifier, XYZ the event
code, GG the partition and CCC the zone or user number. DC-09 carries the
account in its frame and the message type as ``ADM-CID``, so what is left is
the data part ``[#ACCT|QXYZ GG CCC]``. Which code each alarm type gets is the
engine's business (``alarms/contactid.py``); this module only encodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ACCOUNT = re.compile(r"[0-9A-Fa-f]{3,16}")
_QUALIFIERS = frozenset({1, 3, 6})  # new/opening, restore/closing, status


@dataclass(frozen=True)
class ContactIdEvent:
    """One Contact ID event, checked when built so it always encodes.

    ``account`` is 3 to 16 hex characters, kept upper-case because receivers
    look accounts up that way; ``zone`` is the zone, or the user number for
    open/close and code events. A bad value raises ``ValueError``: an alarm
    that cannot be encoded must fail where it is made, not in the send loop.
    """

    account: str
    code: int
    qualifier: int = 1
    partition: int = 1
    zone: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.account, str) or not _ACCOUNT.fullmatch(self.account):
            raise ValueError(f"account must be 3 to 16 hex characters, not {self.account!r}")
        object.__setattr__(self, "account", self.account.upper())
        _check_int("code", self.code, 100, 999)
        _check_int("partition", self.partition, 0, 99)
        _check_int("zone", self.zone, 0, 999)
        q = self.qualifier
        if isinstance(q, bool) or not isinstance(q, int) or q not in _QUALIFIERS:
            raise ValueError(f"qualifier must be 1, 3 or 6, not {self.qualifier!r}")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass; True as a zone number is a bug, not zone 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, not {value!r}")


def contact_id_data(event: ContactIdEvent) -> str:
    """The DC-09 data part of an ``ADM-CID`` message, e.g. ``[#1234|1130 01 015]``."""
    return (
        f"[#{event.account}|{event.qualifier:d}{event.code:03d} "
        f"{event.partition:02d} {event.zone:03d}]"
    )
