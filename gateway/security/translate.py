"""Device messages as the engine's inputs.

Zigbee2MQTT conventions (``../shared/FACTS.md``): ``contact: true`` is a
*closed* door, so ``false`` trips the zone; ``occupancy`` and ``water_leak``
trip on ``true``; ``tamper: true`` is a tamper from any device. A keypad's
``action`` arms, disarms or raises a panic; its ``action_code`` (the PIN) is
checked by the caller's ``check`` and reaches the engine only as a verdict.

Only news moves the panel: a field the device merely repeated (named in
``DeviceMessage.repeats`` by ``devices.edges``) trips, restores and tampers
nothing, though the message still proves the sensor alive.
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
"""Kinds whose trip lasts until its restore (an open door, a wet floor): a
trip of a zone the panel holds open is not a new one, whoever sends it."""


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
    if trip is not None and trip[0] not in msg.repeats and isinstance(body.get(trip[0]), bool):
        tripped = body[trip[0]] is trip[1]
        events.append(ZoneTripped(zone=zone) if tripped else ZoneRestored(zone=zone))
    tamper = None if "tamper" in msg.repeats else body.get("tamper")
    if tamper is True:
        events.append(Tampered(zone=zone))
    elif tamper is False:
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
