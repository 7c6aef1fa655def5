"""What happens to the panel: the inputs of :func:`alarms.step`.

The gateway turns device messages and requests into these. Each carries a
``type`` tag so that a stored or queued event reads back as the right class
(``TypeAdapter(Event)``). Zones are named by the device's uid; an event about
a device that is not a zone of the panel changes nothing.

What the caller sends for Zigbee2MQTT sensors:

- :class:`ZoneTripped` when a door opens (``contact`` becomes ``false``), a leak
  starts (``water_leak`` becomes ``true``) and on *every* ``occupancy: true``
  (each is a new detection, which a double knock counts);
- :class:`ZoneRestored` on the way back (closed, dry, no occupancy);
- :class:`Tampered` / :class:`TamperRestored` when ``tamper`` changes;
- :class:`ZoneSeen` for any other message from the device (supervision);
- :class:`ZoneOffline` / :class:`ZoneOnline` from its availability topic.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from alarms.model import ArmMode, CodeCheck, Source


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ZoneTripped(_Event):
    """Motion seen, door opened, water leak detected."""

    type: Literal["zone_tripped"] = "zone_tripped"
    zone: str


class ZoneRestored(_Event):
    """Door closed, leak dry, occupancy cleared."""

    type: Literal["zone_restored"] = "zone_restored"
    zone: str


class Tampered(_Event):
    """The device's case was opened or it was moved."""

    type: Literal["tampered"] = "tampered"
    zone: str


class TamperRestored(_Event):
    """The device reports ``tamper: false`` again."""

    type: Literal["tamper_restored"] = "tamper_restored"
    zone: str


class ZoneSeen(_Event):
    """Any message from the device: it is alive (supervision check-in)."""

    type: Literal["zone_seen"] = "zone_seen"
    zone: str


class ZoneOffline(_Event):
    type: Literal["zone_offline"] = "zone_offline"
    zone: str


class ZoneOnline(_Event):
    type: Literal["zone_online"] = "zone_online"
    zone: str


class Panic(_Event):
    """A panic or emergency button: a keypad's ``emergency``/``panic`` action or the app."""

    type: Literal["panic"] = "panic"
    source: Source


class ArmRequest(_Event):
    """Arm in ``mode``. ``force`` arms even with open zones (they are recorded);
    ``bypass`` names zones to leave out until the next disarm."""

    type: Literal["arm_request"] = "arm_request"
    mode: ArmMode
    code: CodeCheck
    source: Source
    force: bool = False
    bypass: frozenset[str] = frozenset()


class DisarmRequest(_Event):
    type: Literal["disarm_request"] = "disarm_request"
    code: CodeCheck
    source: Source


class SetBypass(_Event):
    """Take a zone out of service until the next disarm, or put it back. Needs a valid code."""

    type: Literal["set_bypass"] = "set_bypass"
    zone: str
    bypassed: bool
    code: CodeCheck
    source: Source


class Tick(_Event):
    """Only time passed: lets due deadlines fire."""

    type: Literal["tick"] = "tick"


Event = Annotated[
    ZoneTripped
    | ZoneRestored
    | Tampered
    | TamperRestored
    | ZoneSeen
    | ZoneOffline
    | ZoneOnline
    | Panic
    | ArmRequest
    | DisarmRequest
    | SetBypass
    | Tick,
    Field(discriminator="type"),
]
"""Any input of :func:`alarms.step`."""
