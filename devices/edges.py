"""A Zigbee2MQTT report's news: which of its state fields changed.

Zigbee2MQTT publishes a device's whole cached state with every report, so a
value repeats long after it happened: an Aqara motion sensor's illuminance
report carries the ``occupancy: true`` of the motion it already reported,
leak and door sensors repeat ``water_leak``/``contact`` in hourly heartbeats,
keypads repeat ``tamper: true`` when they poll, and a restarted bridge
re-publishes every device. Only a *change* of a state field is an event; a
repeat is a report (health, telemetry).

:func:`observe` compares a message with what the device last reported (its
:data:`Memory`, kept by the caller across restarts) and returns the message
with its repeated fields named in :attr:`DeviceMessage.repeats` and its event
class recomputed from what is new. Pure: no clock, no I/O.

Motion is the one state that repeats *on purpose*: a sensor that keeps seeing
movement re-sends ``occupancy: true`` without a ``false`` between, and
Zigbee2MQTT sends ``false`` only after the sensor's occupancy timeout. So a
``true`` is a new trip after a ``false`` (or on first hearing), or when the
last ``true`` is older than :data:`OCCUPANCY_TIMEOUT_S` (the ``false`` was
lost, or the device never sends one); within that time it is the same trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from devices.kinds import DeviceKind
from devices.payloads import DeviceMessage, event_class

Memory = Mapping[str, Any]
"""What a device last reported: ``{field: bool, "occupancy_at": ISO time}``
(JSON, so it is stored as it is)."""

STATE_FIELDS: Final[dict[DeviceKind, tuple[str, ...]]] = {
    DeviceKind.MOTION: ("occupancy", "tamper"),
    DeviceKind.LEAK: ("water_leak", "tamper"),
    DeviceKind.CONTACT: ("contact", "tamper"),
    DeviceKind.KEYPAD: ("tamper",),
    DeviceKind.SIREN: ("alarm", "tamper"),
}
"""Per Zigbee2MQTT kind: the boolean fields that describe a state, whose
repetition is not news. (A keypad's ``action`` is not one: Zigbee2MQTT already
drops a repeated ``action_transaction``, and every action is a request.)"""

OCCUPANCY_TIMEOUT_S: Final = 90.0
"""Zigbee2MQTT's default ``occupancy_timeout`` for the sensors that need one
(Aqara's): how long one motion lasts when no ``occupancy: false`` comes."""

_OCCUPANCY_AT = "occupancy_at"


def observe(
    kind: DeviceKind, memory: Memory, msg: DeviceMessage, at: datetime
) -> tuple[DeviceMessage, dict[str, Any]]:
    """The message as news (repeats named, event class from the rest) and the
    device's memory after it. A kind without state fields, an availability
    message or a message without them comes back as it is."""
    fields = STATE_FIELDS.get(kind)
    if not fields or msg.online is not None:
        return msg, dict(memory)
    after = dict(memory)
    repeats: list[str] = []
    for name in fields:
        value = msg.body.get(name)
        if not isinstance(value, bool):
            continue
        if _repeats(name, value, memory, at):
            repeats.append(name)
        after[name] = value
        if name == "occupancy" and value:
            after[_OCCUPANCY_AT] = at.isoformat()
    if not repeats:
        return msg, after
    repeated = frozenset(repeats)
    event = event_class(kind, msg.body, ignore=repeated)
    return msg.model_copy(update={"repeats": repeated, "event": event}), after


def _repeats(name: str, value: bool, memory: Memory, at: datetime) -> bool:
    if memory.get(name) is not value:
        return False
    if name != "occupancy" or not value:
        return True
    last = memory.get(_OCCUPANCY_AT)
    if not isinstance(last, str):
        return False
    try:
        since = at - datetime.fromisoformat(last)
    except ValueError:
        return False
    return since <= timedelta(seconds=OCCUPANCY_TIMEOUT_S)
