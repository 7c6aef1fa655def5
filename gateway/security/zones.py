"""A home's panel configuration: zones derived from its devices, with the
installer's per-zone overrides stored in the panel's settings.

Defaults follow what a security installer sets up first: doors and motion
sensors are entry/exit zones with the entry delay, leak sensors are 24-hour
zones that raise a leak alarm in any status, keypads and sirens are 24-hour
zones for their tamper switches only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from alarms import AlarmType, PanelConfig, Zone, ZoneType
from devices.kinds import DeviceKind

ZONE_KINDS = frozenset(
    {DeviceKind.MOTION, DeviceKind.CONTACT, DeviceKind.LEAK, DeviceKind.KEYPAD, DeviceKind.SIREN}
)
"""Device kinds that are zones of a home's panel."""

_DEFAULTS: dict[DeviceKind, dict[str, Any]] = {
    DeviceKind.CONTACT: {"type": ZoneType.DELAYED, "alarm": AlarmType.BURGLARY},
    DeviceKind.MOTION: {"type": ZoneType.DELAYED, "alarm": AlarmType.BURGLARY},
    DeviceKind.LEAK: {"type": ZoneType.ALWAYS, "alarm": AlarmType.LEAK},
    DeviceKind.KEYPAD: {"type": ZoneType.ALWAYS, "alarm": AlarmType.TAMPER},
    DeviceKind.SIREN: {"type": ZoneType.ALWAYS, "alarm": AlarmType.TAMPER},
}


@dataclass(frozen=True)
class ZoneDevice:
    """What the panel needs of a device: its uid (the zone id), name and kind."""

    id: int
    uid: str
    name: str
    kind: DeviceKind

    @property
    def number(self) -> int:
        return zone_number(self.id)


def zone_number(device_id: int) -> int:
    """The zone number a central station sees for a device (Contact ID has three digits)."""
    return device_id % 1000


def build_config(settings: dict[str, Any], devices: Iterable[ZoneDevice]) -> PanelConfig:
    """The engine's configuration: stored settings plus one zone per device."""
    overrides: dict[str, dict[str, Any]] = settings.get("zones", {})
    zones: dict[str, Zone] = {}
    for device in devices:
        if device.kind not in ZONE_KINDS:
            continue
        fields = {"id": device.uid, "name": device.name, **_DEFAULTS[device.kind]}
        fields.update(overrides.get(device.uid, {}))
        zones[device.uid] = Zone.model_validate(fields)
    rest = {k: v for k, v in settings.items() if k != "zones"}
    return PanelConfig.model_validate({**rest, "zones": zones})
