"""Zigbee2MQTT keypads: their ``action`` words in, their ``arm_mode`` words out.

A keypad publishes ``action`` (``arm_all_zones``, ``arm_day_zones``,
``arm_night_zones``, ``disarm``, ``emergency``/``panic``) with ``action_code``
and ``action_transaction``; the panel answers on the keypad's ``/set`` topic
with ``{"arm_mode": {"transaction": N, "mode": M}}`` and keeps every keypad's
display in step with ``{"arm_mode": {"mode": M}}``. Keypads have no vacation
or custom mode, so vacation shows as "all zones".
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Final

from alarms.effects import KeypadDisplay
from alarms.model import ArmMode, PanelStatus
from alarms.state import PanelState

_REPLY_MODES: Final[dict[ArmMode, str]] = {
    ArmMode.AWAY: "arm_all_zones",
    ArmMode.HOME: "arm_day_zones",
    ArmMode.NIGHT: "arm_night_zones",
    ArmMode.VACATION: "arm_all_zones",
}
_ACTION_MODES: Final[dict[str, ArmMode]] = {
    "arm_all_zones": ArmMode.AWAY,
    "arm_day_zones": ArmMode.HOME,
    "arm_night_zones": ArmMode.NIGHT,
}

DISARM_ACTION: Final = "disarm"
PANIC_ACTIONS: Final = frozenset({"emergency", "panic"})
"""Keypads differ: some send ``emergency``, some ``panic``."""

INVALID_CODE: Final = "invalid_code"
NOT_READY: Final = "not_ready"
ALREADY_DISARMED: Final = "already_disarmed"
EXIT_DELAY: Final = "exit_delay"
ENTRY_DELAY: Final = "entry_delay"
IN_ALARM: Final = "in_alarm"


def keypad_mode(mode: ArmMode) -> str:
    """The ``arm_mode`` word a keypad shows for an armed mode."""
    return _REPLY_MODES[mode]


def mode_from_keypad(action: str) -> ArmMode | None:
    """The arm mode a keypad ``action`` asks for; ``None`` for anything else
    (``disarm``, panic, ``exit_delay`` and actions a keypad invents)."""
    return _ACTION_MODES.get(action)


def display_mode(status: PanelStatus, mode: ArmMode | None) -> str:
    """The display word for a status: what every keypad of the home should show."""
    if status is PanelStatus.ARMING:
        return EXIT_DELAY
    if status is PanelStatus.PENDING:
        return ENTRY_DELAY
    if status is PanelStatus.TRIGGERED:
        return IN_ALARM
    if status is PanelStatus.DISARMED or mode is None:
        return DISARM_ACTION
    return keypad_mode(mode)


def seconds_left(deadline: datetime, now: datetime) -> int:
    """Whole seconds until ``deadline``, rounded up, never negative."""
    return max(0, math.ceil((deadline - now).total_seconds()))


def display_for(state: PanelState, now: datetime) -> KeypadDisplay:
    """What a keypad should show now: keypads forget on restart, so the gateway
    re-sends this when one comes back online."""
    mode = display_mode(state.status, state.armed_mode)
    delay = None
    if state.status in (PanelStatus.ARMING, PanelStatus.PENDING) and state.deadline:
        delay = seconds_left(state.deadline, now)
    return KeypadDisplay(mode=mode, delay_s=delay, at=now)
