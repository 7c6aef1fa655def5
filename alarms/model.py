"""The vocabulary of the alarm panel: statuses, arm modes, zones, timing and the
panel's configuration, plus who asked for something and whether their code held.

Everything here is a frozen pydantic model or a string enum, so a configuration
can be built from the database (or a test table) and shared between steps
without anyone changing it underneath the engine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An aware datetime, kept in UTC: a time read back from JSON equals, and
prints like, the one stored."""


class PanelStatus(StrEnum):
    """What the panel is doing, as Home Assistant's alarm panels name it."""

    DISARMED = "disarmed"
    ARMING = "arming"
    """Exit delay: armed in a moment, people are still leaving."""
    ARMED_AWAY = "armed_away"
    ARMED_HOME = "armed_home"
    ARMED_NIGHT = "armed_night"
    ARMED_VACATION = "armed_vacation"
    PENDING = "pending"
    """Entry delay: someone came in through an entry zone and has time to type a code."""
    TRIGGERED = "triggered"
    """The alarm sounds, for the mode's trigger time."""


class ArmMode(StrEnum):
    """The ways to arm; each selects its own zones and timing."""

    AWAY = "armed_away"
    HOME = "armed_home"
    NIGHT = "armed_night"
    VACATION = "armed_vacation"

    @property
    def status(self) -> PanelStatus:
        """The status the panel shows once armed in this mode (same string)."""
        return PanelStatus(self.value)


ARMED_STATUSES = frozenset(mode.status for mode in ArmMode)
"""The four armed statuses (not arming, pending or triggered)."""

ALARM_STATUSES = frozenset({PanelStatus.PENDING, PanelStatus.TRIGGERED})
"""Statuses in which an intrusion is being handled."""

PROTECTING_STATUSES = ARMED_STATUSES | ALARM_STATUSES
"""Statuses in which the armed zones are watched (arming is not one: people
are still leaving)."""


class ZoneType(StrEnum):
    """How a zone reacts when it trips."""

    DELAYED = "delayed"
    """An entry/exit zone (the front door, the hall): tripped while armed, it
    starts the entry delay; during the exit or entry delay it does nothing."""
    INSTANT = "instant"
    """Trips the alarm at once while armed (windows, rooms off the entry path)."""
    ALWAYS = "24h"
    """Raises its alarm in every status, even disarmed (leak, panic button,
    tamper loop), without changing the arm status."""


class AlarmType(StrEnum):
    """What kind of alarm is raised; each has a Contact ID code (contactid.py)."""

    BURGLARY = "burglary"
    ENTRY_EXIT = "entry_exit"
    LEAK = "leak"
    TAMPER = "tamper"
    PANIC = "panic"
    DURESS = "duress"
    SUPERVISION = "supervision"
    WRONG_CODE = "wrong_code"


SILENT_ALARMS = frozenset({AlarmType.DURESS, AlarmType.WRONG_CODE})
"""Alarms nobody at the home may notice: no siren, no keypad display, and the
gateway must not announce them in the home's app either."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Zone(BaseModel):
    """One sensor as the alarm system sees it."""

    model_config = _FROZEN

    id: str = Field(min_length=1)
    """The device's uid; also the key in :attr:`PanelConfig.zones`."""
    name: str
    type: ZoneType = ZoneType.DELAYED
    alarm: AlarmType = AlarmType.BURGLARY
    """What a trip raises. An entry delay that runs out always raises
    ``ENTRY_EXIT`` (134: the entry/exit zone alarmed), whatever this says."""
    modes: frozenset[ArmMode] = frozenset(ArmMode)
    """The armed modes in which the zone is watched (ignored for 24h zones)."""
    confirm_within_s: float | None = Field(default=None, gt=0)
    """Double knock, against pets: a trip counts only when another trip of this
    or any other watched zone came within this many seconds before it."""
    check_in_s: float | None = Field(default=None, gt=0)
    """Supervision: no message from the device for longer than this is a trouble."""
    allow_open: bool = False
    """May be open when arming without blocking it: a motion sensor that sees
    the person at the keypad. Its trips count once the exit delay is over."""

    def watched_in(self, mode: ArmMode | None) -> bool:
        """Whether a trip of this zone is an intrusion when armed in ``mode``."""
        if self.type is ZoneType.ALWAYS:
            return True
        return mode is not None and mode in self.modes


class ModeTiming(BaseModel):
    """The delays of one arm mode, in seconds."""

    model_config = _FROZEN

    exit_delay_s: float = Field(default=60, ge=0)
    entry_delay_s: float = Field(default=30, ge=0)
    trigger_time_s: float = Field(default=180, gt=0)
    """How long the panel stays triggered (sirens sound) before it returns to
    the armed status it was in."""


def _default_timing() -> dict[ArmMode, ModeTiming]:
    # At home and at night people leave through an inner door, not the street:
    # a shorter exit delay is enough.
    return {
        ArmMode.AWAY: ModeTiming(),
        ArmMode.HOME: ModeTiming(exit_delay_s=30),
        ArmMode.NIGHT: ModeTiming(exit_delay_s=30),
        ArmMode.VACATION: ModeTiming(),
    }


class PanelConfig(BaseModel):
    """One home's alarm system: its zones and rules. Changes between steps are fine."""

    model_config = _FROZEN

    zones: dict[str, Zone] = Field(default_factory=dict)
    timing: dict[ArmMode, ModeTiming] = Field(default_factory=_default_timing)
    """Per mode; a mode missing here uses :class:`ModeTiming`'s defaults."""
    lockout_after: int = Field(default=5, ge=1)
    """Wrong codes in a row before the keypads and the app stop taking codes."""
    lockout_s: float = Field(default=300, gt=0)
    supervision_alarm_when_armed: bool = True
    allow_force_arm: bool = True
    arm_requires_code: bool = False
    panic_silent: bool = False
    """A panic raises its alarm without the siren (for homes where a siren
    would put the caller in danger)."""
    panic_siren_s: float = Field(default=180, gt=0)

    @model_validator(mode="after")
    def _zone_keys_are_ids(self) -> Self:
        for key, zone in self.zones.items():
            if key != zone.id:
                raise ValueError(f"zone key {key!r} differs from its id {zone.id!r}")
        return self

    def timing_for(self, mode: ArmMode) -> ModeTiming:
        return self.timing.get(mode, ModeTiming())


class CodeCheck(BaseModel):
    """The result of checking a typed code; the caller holds the hashes.

    ``absent``: nothing typed (``action_code`` empty or missing, or an app
    request that carries no PIN). ``user`` names the code's owner when known.
    """

    model_config = _FROZEN

    result: Literal["valid", "duress", "wrong", "absent"]
    user: str | None = None


class Source(BaseModel):
    """Where a request came from, so the reply goes back to the keypad that asked."""

    model_config = _FROZEN

    kind: Literal["keypad", "app", "api", "panel", "system"]
    device: str | None = None
    """The keypad's device uid."""
    transaction: int | None = None
    """Zigbee2MQTT's ``action_transaction``, echoed in the keypad's reply."""

    @property
    def remote(self) -> bool:
        """From the app or the API, not from something in the home."""
        return self.kind in ("app", "api")
