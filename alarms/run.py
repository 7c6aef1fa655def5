"""One step in progress: the configuration, a private copy of the state that the
step may change freely, and the effects emitted so far — with the small
helpers every rule needs (status changes, keypad replies, refusals, the siren).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alarms.effects import (
    ArmRefused,
    Effect,
    KeypadDisplay,
    KeypadReply,
    RefusalReason,
    SirenCommand,
    StatusChanged,
)
from alarms.keypad import display_mode, seconds_left
from alarms.model import ArmMode, ModeTiming, PanelConfig, PanelStatus, Source, Zone
from alarms.state import PanelState


@dataclass
class Run:
    config: PanelConfig
    state: PanelState
    """A deep copy of the caller's state: the caller's object is never touched."""
    effects: list[Effect] = field(default_factory=list)

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    @property
    def mode(self) -> ArmMode:
        """The mode being armed or armed in; only asked when there is one."""
        mode = self.state.armed_mode
        if mode is None:  # pragma: no cover - would be a bug in a transition
            raise RuntimeError(f"no arm mode in status {self.state.status}")
        return mode

    @property
    def timing(self) -> ModeTiming:
        return self.config.timing_for(self.mode)

    def watched(self, zone: Zone) -> bool:
        """A trip of ``zone`` matters in the current mode (bypass aside)."""
        return zone.id not in self.state.bypassed and zone.watched_in(self.state.armed_mode)

    def set_status(
        self,
        new: PanelStatus,
        at: datetime,
        user: str | None = None,
        source: Source | None = None,
    ) -> None:
        """Move to ``new`` and tell every keypad. Set the deadline first: the
        display shows the seconds left."""
        old = self.state.status
        self.state.status = new
        self.emit(StatusChanged(old=old, new=new, at=at, user=user, source=source))
        delay = None
        if new in (PanelStatus.ARMING, PanelStatus.PENDING) and self.state.deadline:
            delay = seconds_left(self.state.deadline, at)
        self.emit(
            KeypadDisplay(mode=display_mode(new, self.state.armed_mode), delay_s=delay, at=at)
        )

    def reply(self, source: Source, mode: str, at: datetime) -> None:
        """Answer the keypad that asked (nothing for the app or the API)."""
        if source.kind == "keypad" and source.device:
            self.emit(
                KeypadReply(device=source.device, transaction=source.transaction, mode=mode, at=at)
            )

    def refuse(
        self,
        reason: RefusalReason,
        source: Source | None,
        at: datetime,
        *,
        reply: str | None,
        zones: Sequence[str] = (),
    ) -> None:
        """Record a refused request and, for a keypad, answer it with ``reply``."""
        names = [self.config.zones[z].name if z in self.config.zones else z for z in zones]
        self.emit(
            ArmRefused(
                reason=reason, open_zones=list(zones), zone_names=names, at=at, source=source
            )
        )
        if reply is not None and source is not None:
            self.reply(source, reply, at)

    def sound_siren(self, at: datetime, seconds: float) -> None:
        """Sirens on for ``seconds``, unless they already sound at least that long."""
        until = at + timedelta(seconds=seconds)
        if self.state.siren_until is not None and self.state.siren_until >= until:
            return
        self.state.siren_until = until
        self.emit(SirenCommand(on=True, duration_s=math.ceil(seconds), at=at))

    def silence_siren(self, at: datetime) -> None:
        """Sirens off, if they may still be sounding."""
        if self.state.siren_until is not None and self.state.siren_until > at:
            self.emit(SirenCommand(on=False, at=at))
        self.state.siren_until = None
