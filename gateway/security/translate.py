"""Device messages as the engine's inputs.

Zigbee2MQTT conventions (``../shared/FACTS.md``): ``contact: true`` is a
*closed* door, so ``false`` trips the zone; ``occupancy`` and ``water_leak``
trip on ``true``; ``tamper: true`` is a tamper from any device. A keypad's
``action`` arms, disarms or raises a panic; its ``action_code`` (the PIN) is
checked by the caller's ``check`` and reaches the engine only as a verdict.
"""

from __future__ import annotations

from collections.abc import Callable

from alarms import (
    ArmRequest,
    CodeCheck,
    DisarmRequest,
    Event,
    Panic,
    Source,
    Tampered,
    TamperRestored,
    ZoneOffline,
    ZoneOnline,
    ZoneRestored,
    ZoneSeen,
    ZoneTripped,
)
from alarms.keypad import PANIC_ACTIONS, mode_from_keypad
from devices.kinds import DeviceKind
from devices.payloads import DeviceMessage
from gateway.security.zones import ZoneDevice

_TRIP_FIELD: dict[DeviceKind, tuple[str, bool]] = {
    DeviceKind.MOTION: ("occupancy", True),
    DeviceKind.CONTACT: ("contact", False),
    DeviceKind.LEAK: ("water_leak", True),
}
"""Per kind: the field that trips the zone, and the value that means tripped."""

LATCHING_KINDS = frozenset({DeviceKind.CONTACT, DeviceKind.LEAK})
"""Kinds that report their *state* again and again (an open door, a wet
floor): only the change from closed to open is a trip. A motion sensor's
every ``occupancy: true`` is a new trip."""


def engine_events(
    device: ZoneDevice, msg: DeviceMessage, check: Callable[[str | None], CodeCheck]
) -> list[Event]:
    """What one accepted message means to the panel (often nothing)."""
    zone = device.uid
    if msg.online is not None:
        return [ZoneOnline(zone=zone) if msg.online else ZoneOffline(zone=zone)]
    events: list[Event] = [ZoneSeen(zone=zone)]
    body = msg.body
    trip = _TRIP_FIELD.get(device.kind)
    if trip is not None and isinstance(body.get(trip[0]), bool):
        tripped = body[trip[0]] is trip[1]
        events.append(ZoneTripped(zone=zone) if tripped else ZoneRestored(zone=zone))
    if body.get("tamper") is True:
        events.append(Tampered(zone=zone))
    elif body.get("tamper") is False:
        events.append(TamperRestored(zone=zone))
    action = body.get("action")
    if device.kind is DeviceKind.KEYPAD and isinstance(action, str) and action:
        transaction = body.get("action_transaction")
        source = Source(
            kind="keypad",
            device=zone,
            transaction=transaction if isinstance(transaction, int) else None,
        )
        if action in PANIC_ACTIONS:
            events.append(Panic(source=source))
        elif action == "disarm":
            events.append(DisarmRequest(code=check(msg.code), source=source))
        elif (mode := mode_from_keypad(action)) is not None:
            events.append(ArmRequest(mode=mode, code=check(msg.code), source=source))
    return events
