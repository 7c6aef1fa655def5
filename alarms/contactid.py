"""Ademco Contact ID event codes (SIA DC-05) for what the panel reports.

A central station's software knows an alarm by these three digits, so every
effect that a station should see carries one. The message the gateway sends is
``ACCT 18 QXYZ GG CCC``: ``XYZ`` is the code below, ``Q`` the qualifier —
:data:`NEW_EVENT` (1, also "opening") or :data:`RESTORE` (3, also "closing").
``GG`` (partition) and ``CCC`` (zone or user number) are the gateway's to
number; the engine names zones and users by id.
"""

from __future__ import annotations

from typing import Final, Literal

from alarms.model import AlarmType

NEW_EVENT: Final = 1
"""Qualifier 1: a new event, or an opening (disarm)."""
RESTORE: Final = 3
"""Qualifier 3: a restore, or a closing (arm)."""

CONTACT_ID: Final[dict[AlarmType, int]] = {
    AlarmType.BURGLARY: 130,
    AlarmType.ENTRY_EXIT: 134,
    AlarmType.LEAK: 154,
    AlarmType.TAMPER: 137,
    AlarmType.PANIC: 120,
    AlarmType.DURESS: 121,
    AlarmType.SUPERVISION: 381,
    AlarmType.WRONG_CODE: 461,
}
"""The code of the alarm each :class:`AlarmType` raises."""

USER_ALARMS: Final = frozenset({AlarmType.DURESS, AlarmType.WRONG_CODE})
"""Alarms whose ``CCC`` is a user number, not a zone: who typed the duress code
(000 for a lockout, whose codes belong to nobody). The keypad they were typed
on is only the case's detail."""

OPEN_CLOSE_BY_USER: Final = 401
"""Disarmed (opening, Q=1) or armed (closing, Q=3) at the home, by a user code."""
REMOTE_ARM_DISARM: Final = 407
"""The same, from the app or the API."""
CANCEL: Final = 406
"""An alarm or entry delay cancelled by a user with a valid code."""
BYPASS: Final = 570
"""A zone bypassed (Q=1) or back in service (Q=3)."""
WRONG_CODE_ENTRY: Final = 461
"""Too many wrong codes: the keypads are locked out for a while."""

TROUBLE_RF_SUPERVISION: Final = 381
"""Loss of supervision (RF): a wireless sensor offline or silent past its check-in."""
TROUBLE_SENSOR_TAMPER: Final = 383
"""Sensor tamper: a sensor's case opened or the device moved."""

TroubleKind = Literal["offline", "silent", "tamper"]

Condition = Literal["open", "tamper", "supervision"]
"""What about a zone a report to the central station is, so that its restore
(Q=3) goes out once that is over: the zone tripped (door open, water, motion),
its case opened, or its device lost (offline or silent)."""

TROUBLE_CODES: Final[dict[TroubleKind, int]] = {
    "offline": TROUBLE_RF_SUPERVISION,
    "silent": TROUBLE_RF_SUPERVISION,
    "tamper": TROUBLE_SENSOR_TAMPER,
}
"""The code of each trouble kind; its restore uses the same code with Q=3."""
