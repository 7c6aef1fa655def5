"""The controller's side of moydom's command protocol (docs/devices.md,
"Commands"), as a gate controller or an intercom panel must implement it:
never act on a late command, never act twice on one command.

A command arrives on the device's ``/set`` topic at QoS 1 with an MQTT v5
Message Expiry Interval, as JSON::

    {"command": "open", "command_id": "k3x…", "ts": 1795617075.2, "deadline": 1795617085.2}

:class:`CommandGuard` decides, from the payload, the controller's clock and
what it already did, whether to act; the caller acts and publishes the
answer it returns. Pure: no MQTT, the clock is passed in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

CLOCK_TOLERANCE_S = 1.0
"""How far a controller's clock may be from UTC (NTP keeps it far closer).
The controller spends it as margin: it acts only while ``now + tolerance``
is before the deadline, so a clock that is this much slow still never acts late."""
MAX_TTL_S = 60.0
"""No command lives longer; a deadline further ahead than this means the
controller's clock (or the sender's) is wrong, and it refuses."""
REMEMBER = 1024
"""Ids kept at most. An id is kept until its deadline has passed (a repeat
after that is dropped by the deadline check anyway); a controller holding
this many live ids refuses new commands rather than forget one."""
_ID = re.compile(r"^[!-~]{1,64}$")

OPENED, REFUSED, FAULT, EXPIRED = "opened", "refused", "fault", "expired"


@dataclass(frozen=True)
class Decision:
    """``act``: do it now (then answer ``opened`` or ``fault``); ``answer``: the
    ``command_result`` to publish when not acting (None: nothing to answer)."""

    act: bool
    command_id: str | None
    answer: dict[str, Any] | None = None


def answer(command_id: str, result: str, now: float, detail: str | None = None) -> dict[str, Any]:
    """The ``command_result`` message for the device's state topic."""
    body: dict[str, Any] = {
        "event": "command_result",
        "command_id": command_id,
        "result": result,
        "ts": now,
    }
    if detail:
        body["detail"] = detail
    return body


class CommandGuard:
    """What one controller remembers: when it started and the ids it answered.

    ``started`` is the controller's boot time: a controller that forgets its
    ids when it restarts (this one) drops every command issued before it
    started, since it cannot know whether it acted on it before the restart.
    """

    def __init__(self, started: float, actions: frozenset[str] = frozenset({"open"})) -> None:
        self.started = started
        self.actions = actions
        self._answered: dict[str, tuple[dict[str, Any], float]] = {}
        """command id -> (the answer given, when the id may be forgotten)."""

    def decide(self, payload: Any, now: float) -> Decision:
        """Whether to act on ``payload`` (the parsed JSON of a ``/set`` message) at ``now``."""
        command_id = payload.get("command_id") if isinstance(payload, dict) else None
        if not isinstance(command_id, str) or not _ID.match(command_id):
            return Decision(False, None)  # not a command of this protocol: nothing to answer
        self._forget(now)
        known = self._answered.get(command_id)
        if known is not None:
            return Decision(False, command_id, {**known[0], "ts": now})  # repeat: same answer
        if len(self._answered) >= REMEMBER:
            return Decision(False, command_id, answer(command_id, REFUSED, now, "busy"))
        refusal = self._refusal(payload, now)
        if refusal is not None:
            return self._final(command_id, refusal[0], now, refusal[1])
        return Decision(True, command_id)

    def _refusal(self, payload: dict[str, Any], now: float) -> tuple[str, str] | None:
        """(result, detail) of a command not to act on, or None: act."""
        deadline, issued = payload.get("deadline"), payload.get("ts")
        if not _number(deadline) or not _number(issued):
            return REFUSED, "no valid deadline and ts"
        rules = (
            (payload.get("command") not in self.actions, REFUSED, "unknown command"),
            (now + CLOCK_TOLERANCE_S > deadline, EXPIRED, "past its deadline"),
            (deadline - now > MAX_TTL_S + CLOCK_TOLERANCE_S, REFUSED, "deadline too far ahead"),
            (issued < self.started - CLOCK_TOLERANCE_S, EXPIRED, "issued before a restart"),
        )
        return next(((result, detail) for bad, result, detail in rules if bad), None)

    def done(
        self, command_id: str, result: str, now: float, detail: str | None = None
    ) -> dict[str, Any]:
        """Record that the controller acted (``opened`` or ``fault``); the answer to publish."""
        return self._final(command_id, result, now, detail).answer or {}

    def _final(self, command_id: str, result: str, now: float, detail: str | None) -> Decision:
        body = answer(command_id, result, now, detail)
        self._answered[command_id] = (body, now + MAX_TTL_S + 2 * CLOCK_TOLERANCE_S)
        return Decision(False, command_id, body)

    def _forget(self, now: float) -> None:
        """Drop ids whose commands are past any deadline they could have had."""
        if len(self._answered) < REMEMBER // 2:
            return
        for command_id in [c for c, (_, until) in self._answered.items() if until < now]:
            del self._answered[command_id]


def _number(value: Any) -> TypeGuard[float]:
    """A finite JSON number (``true`` is no number)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
