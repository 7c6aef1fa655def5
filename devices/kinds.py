"""The kinds of device a contract can have, and what protocol each speaks."""

from __future__ import annotations

from enum import StrEnum


class DeviceKind(StrEnum):
    MOTION = "motion"
    LEAK = "leak"
    CONTACT = "contact"
    KEYPAD = "keypad"
    SIREN = "siren"
    ALARM_PANEL = "alarm_panel"
    INTERCOM = "intercom"
    GATE = "gate"
    CAMERA = "camera"
    ZIGBEE_BRIDGE = "zigbee_bridge"
    """A home's Zigbee2MQTT: one account that speaks for the home's Zigbee devices."""


ZIGBEE2MQTT_KINDS = frozenset(
    {DeviceKind.MOTION, DeviceKind.LEAK, DeviceKind.CONTACT, DeviceKind.KEYPAD, DeviceKind.SIREN}
)
"""Kinds whose payloads are Zigbee2MQTT's JSON, as a stock bridge publishes it;
a home's bridge account may speak for them."""

NATIVE_KINDS = frozenset({DeviceKind.ALARM_PANEL, DeviceKind.INTERCOM, DeviceKind.GATE})
"""Kinds that speak moydom's own JSON schema (docs/devices.md)."""

COMMANDABLE_KINDS = frozenset(
    {
        DeviceKind.KEYPAD,
        DeviceKind.SIREN,
        DeviceKind.ALARM_PANEL,
        DeviceKind.INTERCOM,
        DeviceKind.GATE,
    }
)
"""Kinds the gateway sends commands to on their ``/set`` topic."""


def payload_format(kind: DeviceKind) -> str:
    """``zigbee2mqtt`` or ``native`` (cameras report over MQTT in the native schema)."""
    return "zigbee2mqtt" if kind in ZIGBEE2MQTT_KINDS | {DeviceKind.ZIGBEE_BRIDGE} else "native"


CHECK_IN_S: dict[DeviceKind, int] = {kind: 2 * 3600 for kind in ZIGBEE2MQTT_KINDS}
"""How long a device of each kind may say nothing before it is *silent*.
Zigbee sensors report (a heartbeat, battery, link quality) about hourly, so
two hours allows one lost report. Kinds not listed hold an MQTT connection
with a last will (or, for cameras, the recorder's RTSP session): their
``offline`` availability tells more than silence, so they are never silent."""
