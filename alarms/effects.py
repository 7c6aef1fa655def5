"""What the panel asks the world to do or know: the outputs of :func:`alarms.step`.

Each effect has ``at``, the time it logically happened. A deadline that fired
late (the gateway was down) gives its original time, not the time of the step:
the timeline and the central station must see when the entry delay really ran
out. The gateway decides what is still worth doing — a siren whose period has
passed needs no command. Effects come in the order they happened.

Each effect carries a ``type`` tag so that an outbox row reads back as the
right class (``TypeAdapter(Effect)``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from alarms import contactid
from alarms.contactid import TroubleKind
from alarms.model import AlarmType, ArmMode, PanelStatus, Source, UtcDatetime


class _Effect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: UtcDatetime


class StatusChanged(_Effect):
    type: Literal["status_changed"] = "status_changed"
    old: PanelStatus
    new: PanelStatus
    user: str | None = None
    source: Source | None = None
    """``None`` when a deadline moved the panel."""


class AlarmRaised(_Effect):
    """An alarm: the gateway opens a dispatch case for each."""

    type: Literal["alarm_raised"] = "alarm_raised"
    alarm: AlarmType
    contact_id: int
    zone: str | None = None
    """The zone, or for panic, duress and wrong codes the keypad's uid if known
    (for duress and wrong codes only a detail of the case: the station's
    ``CCC`` is the user, see :attr:`by_user`)."""
    silent: bool = False
    """Nobody at the home may notice: no siren, no display, no app notice."""
    user: str | None = None

    @property
    def by_user(self) -> bool:
        """The central station's ``CCC`` names the user (duress, wrong codes), not the zone."""
        return self.alarm in contactid.USER_ALARMS


class AlarmRestored(_Effect):
    """The zone of an alarm the central station got is back to normal (door
    closed, floor dry, tamper closed, device back): its restore, Q=3 with the
    alarm's code. At most one per alarm; none for panic, duress or wrong codes."""

    type: Literal["alarm_restored"] = "alarm_restored"
    alarm: AlarmType
    contact_id: int
    zone: str


class AlarmCancelled(_Effect):
    """A valid code during the entry delay or the alarm: the case of ``alarm``
    (if one was opened) is "cancelled by the subscriber with the correct code".
    Never emitted for a duress code."""

    type: Literal["alarm_cancelled"] = "alarm_cancelled"
    user: str | None = None
    zone: str | None = None
    alarm: AlarmType | None = None
    contact_id: int = contactid.CANCEL


class OpenClose(_Effect):
    """Disarm (opening, Q=1) or armed at the end of the exit delay (closing, Q=3)."""

    type: Literal["open_close"] = "open_close"
    opened: bool
    user: str | None = None
    mode: ArmMode | None = None
    contact_id: int = contactid.OPEN_CLOSE_BY_USER
    """401 from the home, 407 from the app or the API."""


RefusalReason = Literal[
    "open_zones",
    "locked_out",
    "wrong_code",
    "code_required",
    "already_disarmed",
    "not_ready",
    "in_alarm",
    "unknown_zone",
]


class ArmRefused(_Effect):
    """A request (arm, disarm, bypass) that changed nothing, and why."""

    type: Literal["arm_refused"] = "arm_refused"
    reason: RefusalReason
    open_zones: list[str] = Field(default_factory=list)
    """Ids of the zones that kept the panel from arming."""
    zone_names: list[str] = Field(default_factory=list)
    """Their names, in the same order, for messages to people."""
    source: Source | None = None


class ForceArmed(_Effect):
    """Armed with these zones open: they are ignored until they close."""

    type: Literal["force_armed"] = "force_armed"
    zones: list[str]
    zone_names: list[str] = Field(default_factory=list)
    user: str | None = None


class BypassChanged(_Effect):
    """A zone taken out of service or put back."""

    type: Literal["bypass_changed"] = "bypass_changed"
    zone: str
    bypassed: bool
    user: str | None = None
    contact_id: int = contactid.BYPASS


class CodeLockout(_Effect):
    """Too many wrong codes: every code is refused until ``until``."""

    type: Literal["code_lockout"] = "code_lockout"
    until: UtcDatetime
    contact_id: int = contactid.WRONG_CODE_ENTRY


class Trouble(_Effect):
    type: Literal["trouble"] = "trouble"
    zone: str
    kind: TroubleKind
    contact_id: int
    reported: bool = True
    """Whether the central station gets this trouble as its own event. Not when
    an alarm raised with it reports the same thing (a tamper alarm's 137, a
    supervision alarm's 381), nor when the device's supervision was already
    lost the other way (silent, then offline): one occurrence, one report."""


class TroubleRestored(_Effect):
    type: Literal["trouble_restored"] = "trouble_restored"
    zone: str
    kind: TroubleKind
    contact_id: int
    reported: bool = True
    """Whether this is the station's restore (see :attr:`Trouble.reported`)."""


class KeypadReply(_Effect):
    """Zigbee2MQTT's ``arm_mode`` answer to the keypad that asked, with its transaction."""

    type: Literal["keypad_reply"] = "keypad_reply"
    device: str
    transaction: int | None = None
    mode: str


class KeypadDisplay(_Effect):
    """The panel's status for every keypad of the home (``arm_mode`` without a transaction)."""

    type: Literal["keypad_display"] = "keypad_display"
    mode: str
    delay_s: int | None = None
    """Seconds left, for ``exit_delay`` and ``entry_delay`` (Zigbee2MQTT takes 0–255)."""


class SirenCommand(_Effect):
    type: Literal["siren_command"] = "siren_command"
    on: bool
    duration_s: int | None = None


Effect = Annotated[
    StatusChanged
    | AlarmRaised
    | AlarmRestored
    | AlarmCancelled
    | OpenClose
    | ArmRefused
    | ForceArmed
    | BypassChanged
    | CodeLockout
    | Trouble
    | TroubleRestored
    | KeypadReply
    | KeypadDisplay
    | SirenCommand,
    Field(discriminator="type"),
]
"""Any output of :func:`alarms.step`."""


def contact_id_event(effect: Effect) -> tuple[int, int] | None:
    """``(qualifier, code)`` of the Contact ID event a central station should get
    for ``effect``, or ``None``.

    :class:`CodeLockout` maps to ``None``: the lockout's 461 goes out once, as the
    :class:`AlarmRaised` (``WRONG_CODE``) emitted with it. A trouble that an
    alarm reports, and its restore, map to ``None`` too (``reported``).
    """
    new, restore = contactid.NEW_EVENT, contactid.RESTORE
    event: tuple[int, int] | None = None
    match effect:
        case AlarmRaised() | AlarmCancelled():
            event = (new, effect.contact_id)
        case Trouble() if effect.reported:
            event = (new, effect.contact_id)
        case AlarmRestored():
            event = (restore, effect.contact_id)
        case TroubleRestored() if effect.reported:
            event = (restore, effect.contact_id)
        case OpenClose():
            event = (new if effect.opened else restore, effect.contact_id)
        case BypassChanged():
            event = (new if effect.bypassed else restore, effect.contact_id)
    return event
