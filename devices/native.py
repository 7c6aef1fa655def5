"""moydom's native JSON schema, for devices made to talk to moydom: gate and
barrier controllers, intercom panels, alarm panels and cameras' MQTT side.

Every message on a device's state topic is one JSON object with an ``event``
naming its type, plus these optional fields:

- ``ts``: the device's clock when the event happened, Unix time in seconds as
  a JSON number (``1795617075.25``), between 0 and 4102444800 (year 2100).
  A number rather than ISO-8601: no time zones to get wrong, nothing to parse
  on a small controller. The gateway keeps its own receive time as well, so a
  device without a set clock may leave ``ts`` out.
- ``msg_id``: a string unique per device (1-64 printable ASCII characters,
  no spaces), e.g. a counter. MQTT QoS 1 is at-least-once: a device that
  resends a message it got no PUBACK for should resend the same ``msg_id``,
  so the gateway can tell a repeat from a second event.

Nothing else is allowed: an unknown ``event`` or an unknown field is
rejected, so a typo in firmware shows up in the gateway's rejected-message
count instead of being stored half-understood. Types are strict (``true`` is
not a number, ``"3"`` is not an integer). Messages, per kind:

gate:        state, command_result, heartbeat
intercom:    call, call_ended, door_opened, command_result, heartbeat
alarm_panel: arm_state, zone, trouble, command_result, heartbeat
camera:      motion, heartbeat

``command_result`` answers a command from the ``/set`` topic by echoing its
``command_id``. A controller answers ``expired`` and does nothing when the
command's deadline has passed, and answers a ``command_id`` it has already
acted on with the original result without acting again (devices.commands;
docs/devices.md, "Commands").
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter

from devices.kinds import DeviceKind

MAX_TS = 4_102_444_800.0
"""2100-01-01T00:00:00Z: a later ``ts`` is a broken clock, not a time."""


def _round_number(value: Any) -> Any:
    """Round a finite float to the nearest int; anything else goes on to the strict int check."""
    if isinstance(value, float) and math.isfinite(value):
        return round(value)
    return value


# Field types shared with the Zigbee2MQTT models in devices.payloads.
Percent = Annotated[int, BeforeValidator(_round_number), Field(ge=0, le=100)]
"""A percentage; a float such as 91.5 is rounded (Zigbee2MQTT sends both)."""
MilliVolts = Annotated[int, BeforeValidator(_round_number), Field(ge=0, le=100_000)]
Timestamp = Annotated[float, Field(ge=0, le=MAX_TS, allow_inf_nan=False)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[!-~]+$")]
"""An identifier: 1-64 printable ASCII characters, no spaces."""
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Zone = Annotated[int, Field(ge=0, le=999)]
"""A zone or user number as Contact ID carries it: three digits."""


class NativeMessage(BaseModel):
    """Fields every native message may carry; ``category`` is the event class it is stored as."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    category: ClassVar[str]
    ts: Timestamp | None = None
    msg_id: Id | None = None


class Heartbeat(NativeMessage):
    """``{"event": "heartbeat", "uptime": 86400, "battery": 100}``: alive, between events.
    ``battery``/``battery_low`` are the backup battery, if the device has one."""

    category: ClassVar[str] = "heartbeat"
    event: Literal["heartbeat"]
    uptime: Annotated[int, Field(ge=0)] | None = None
    battery: Percent | None = None
    battery_low: bool | None = None


class CommandResult(NativeMessage):
    """``{"event": "command_result", "command_id": "…", "result": "opened"}``: the answer
    to a command; ``detail`` says why it was refused or failed. Gates and doors answer
    ``opened``, ``refused``, ``fault`` or ``expired``; ``ok`` and ``rejected`` are the
    generic yes and no of other commands."""

    category: ClassVar[str] = "command_result"
    event: Literal["command_result"]
    command_id: Id
    result: Literal["opened", "refused", "fault", "expired", "ok", "rejected"]
    detail: Text | None = None


class GateState(NativeMessage):
    """``{"event": "state", "state": "opening"}``: the gate or barrier moved; ``detail``
    describes a fault (``"obstruction"``, ``"motor overload"``)."""

    category: ClassVar[str] = "gate_state"
    event: Literal["state"]
    state: Literal["open", "opening", "closed", "closing", "stopped", "fault"]
    detail: Text | None = None


class IntercomCall(NativeMessage):
    """``{"event": "call", "call_id": "c5", "apartment": "12"}``: a visitor dialled a flat."""

    category: ClassVar[str] = "intercom_call"
    event: Literal["call"]
    call_id: Id
    apartment: Annotated[str, StringConstraints(min_length=1, max_length=16)]


class IntercomCallEnded(NativeMessage):
    """``{"event": "call_ended", "call_id": "c5", "outcome": "answered"}``."""

    category: ClassVar[str] = "intercom_call"
    event: Literal["call_ended"]
    call_id: Id
    outcome: Literal["answered", "missed", "declined"]


class IntercomDoorOpened(NativeMessage):
    """``{"event": "door_opened", "by": "app", "command_id": "…"}``: the door lock released,
    by a key fob, a door code, the app (a command) or the exit button; ``call_id`` when
    it was opened during a call."""

    category: ClassVar[str] = "intercom_door"
    event: Literal["door_opened"]
    by: Literal["key", "code", "app", "button"]
    call_id: Id | None = None
    command_id: Id | None = None


class PanelArmState(NativeMessage):
    """``{"event": "arm_state", "state": "armed_away", "user": 2}``: the panel's state
    changed (Home Assistant's alarm states); ``user`` is the user number, never a code."""

    category: ClassVar[str] = "panel_arm"
    event: Literal["arm_state"]
    state: Literal[
        "disarmed", "arming", "armed_home", "armed_night", "armed_away", "pending", "triggered"
    ]
    user: Zone | None = None


class PanelZone(NativeMessage):
    """``{"event": "zone", "zone": 3, "type": "burglary"}``: a zone alarm, or its restore
    (``"restore": true``), as Contact ID's new-event/restore qualifier."""

    category: ClassVar[str] = "panel_zone"
    event: Literal["zone"]
    zone: Zone
    type: Literal["burglary", "entry", "leak", "fire", "panic", "tamper"]
    restore: bool = False


class PanelTrouble(NativeMessage):
    """``{"event": "trouble", "type": "ac_loss"}``: a fault of the panel or of a zone's
    device (``zone``), or its restore."""

    category: ClassVar[str] = "panel_trouble"
    event: Literal["trouble"]
    type: Literal[
        "ac_loss", "battery_low", "tamper", "communication", "supervision", "jamming", "other"
    ]
    zone: Zone | None = None
    restore: bool = False
    detail: Text | None = None


class CameraMotion(NativeMessage):
    """``{"event": "motion", "state": "start"}``: the camera's own motion detector."""

    category: ClassVar[str] = "motion"
    event: Literal["motion"]
    state: Literal["start", "stop"]


_event = Field(discriminator="event")
GateMessage = Annotated[GateState | CommandResult | Heartbeat, _event]
IntercomMessage = Annotated[
    IntercomCall | IntercomCallEnded | IntercomDoorOpened | CommandResult | Heartbeat, _event
]
PanelMessage = Annotated[
    PanelArmState | PanelZone | PanelTrouble | CommandResult | Heartbeat, _event
]
CameraMessage = Annotated[CameraMotion | Heartbeat, _event]

SCHEMAS: dict[DeviceKind, TypeAdapter[Any]] = {
    DeviceKind.GATE: TypeAdapter(GateMessage),
    DeviceKind.INTERCOM: TypeAdapter(IntercomMessage),
    DeviceKind.ALARM_PANEL: TypeAdapter(PanelMessage),
    DeviceKind.CAMERA: TypeAdapter(CameraMessage),
}
"""The validator of each native kind's state messages (``.json_schema()`` documents it)."""

NATIVE_EVENTS = frozenset(
    model.category
    for model in (
        Heartbeat,
        CommandResult,
        GateState,
        IntercomCall,
        IntercomCallEnded,
        IntercomDoorOpened,
        PanelArmState,
        PanelZone,
        PanelTrouble,
        CameraMotion,
    )
)
"""The event classes native messages are stored as."""
