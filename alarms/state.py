"""What the panel remembers between steps.

The gateway stores this in one database column after every step and loads it
before the next, possibly in another process after a crash. So every timer is
here as an absolute UTC time — never "seconds left" — and the engine keeps no
state anywhere else: a deadline that passed while the gateway was down fires at
its original time on the next step (invariant 2).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, computed_field, field_serializer

from alarms.contactid import Condition
from alarms.model import AlarmType, ArmMode, PanelStatus, Source, UtcDatetime

_ZONE_SETS = ("open_zones", "bypassed", "forced_open", "offline", "silent", "tampered")


class PanelState(BaseModel):
    """The panel's state; :func:`alarms.step` returns a new one and never changes its input."""

    status: PanelStatus = PanelStatus.DISARMED
    armed_mode: ArmMode | None = None
    """The mode being armed (``arming``) or armed in (armed, pending, triggered)."""
    deadline: UtcDatetime | None = None
    """End of the exit delay, the entry delay or the trigger time."""
    alarm_zone: str | None = None
    """The zone that started the entry delay or triggered the alarm."""
    alarm: AlarmType | None = None
    """The alarm the entry delay will raise, or the one raised when triggered."""
    armed_by: str | None = None
    """The user who armed, reported in the closing at the end of the exit delay."""
    armed_source: Source | None = None

    open_zones: frozenset[str] = frozenset()
    """Zones whose sensor is active now: door open, motion seen, leak wet."""
    bypassed: frozenset[str] = frozenset()
    """Zones taken out of service until the next disarm; they raise nothing."""
    forced_open: frozenset[str] = frozenset()
    """Zones open when force-armed: ignored until they close, then watched again."""
    offline: frozenset[str] = frozenset()
    """Zones whose device the broker reports offline."""
    silent: frozenset[str] = frozenset()
    """Zones silent past their check-in interval."""
    tampered: frozenset[str] = frozenset()

    failed_codes: int = Field(default=0, ge=0)
    """Wrong codes in a row."""
    locked_until: UtcDatetime | None = None
    last_seen: dict[str, UtcDatetime] = Field(default_factory=dict)
    """When each supervised zone's device last spoke."""
    recent_trips: dict[str, UtcDatetime] = Field(default_factory=dict)
    """The last trip of each watched zone, kept while a double knock could use it."""
    siren_until: UtcDatetime | None = None
    """When the sirens were told to stop by themselves, if they are sounding."""
    reported: dict[str, dict[Condition, AlarmType | None]] = Field(default_factory=dict)
    """What the central station was told about each zone and not yet told is
    over: per condition, the alarm that reported it, or ``None`` for a trouble
    reported on its own. Each entry becomes one restore (alarms/reports.py)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def troubled(self) -> frozenset[str]:
        """Zones with any trouble: offline, silent or tampered."""
        return self.offline | self.silent | self.tampered

    @field_serializer(*_ZONE_SETS, "troubled", when_used="json")
    def _sorted(self, zones: frozenset[str]) -> list[str]:
        # Sets in a fixed order, so the stored JSON of equal states is equal.
        return sorted(zones)
