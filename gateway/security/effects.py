"""The engine's effects written down, in the transaction that decided them:
dispatch cases and their timelines, subscriber alerts, and outbox rows for
sirens, keypads, the central station, e-mail and SMS.

Nothing here talks to the network; the outbox sender does, after commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alarms import (
    AlarmCancelled,
    AlarmRaised,
    AlarmRestored,
    AlarmType,
    ArmRefused,
    BypassChanged,
    CodeLockout,
    Effect,
    ForceArmed,
    KeypadDisplay,
    KeypadReply,
    OpenClose,
    SirenCommand,
    StatusChanged,
    Trouble,
    TroubleRestored,
    contact_id_event,
)
from devices.kinds import ZIGBEE2MQTT_KINDS, DeviceKind
from devices.topics import DeviceTopics
from gateway.db.security_models import AlarmUser, Case, CaseEntry, CaseStatus
from gateway.dispatch.watch import case_key
from gateway.notices import Notice
from gateway.outbox.enqueue import command, contact_id
from gateway.recording.clips import mark_clips
from gateway.security.alerts import AlertWriter
from gateway.security.home import HomeView
from gateway.security.zones import ZoneDevice

_CATEGORY = {
    AlarmType.LEAK: "leak",
    AlarmType.SUPERVISION: "trouble",
}


class EffectWriter:
    """Writes one home's effects; keeps the home's open cases at hand so every
    later effect lands on their timelines."""

    def __init__(
        self,
        session: Session,
        home: HomeView,
        *,
        root: str,
        ack_timeout: timedelta,
        changes: Notice,
        now: datetime,
        central_station: bool,
        transports: frozenset[str],
        clip_window: tuple[timedelta, timedelta],
    ) -> None:
        """``now`` is the wall clock: commands expire counted from it, even
        for an effect whose ``at`` is a deadline that passed while down."""
        self.session = session
        self.now = now
        self.central_station = central_station
        self.clip_window = clip_window
        self.home = home
        self.root = root
        self.ack_timeout = ack_timeout
        self.changes = changes
        self.alerts = AlertWriter(session, home, changes, now, transports)
        self._open_cases: list[Case] | None = None

    def write_all(self, effects: list[Effect]) -> None:
        for effect in effects:
            self.write(effect)

    def write(self, effect: Effect) -> None:  # noqa: PLR0912 - one branch per effect type
        """Record ``effect``; what the central station gets of it is decided
        once, by the engine (``contact_id_event``), in :meth:`_report`."""
        if isinstance(effect, AlarmRaised):
            self._alarm(effect)
            return  # reported with its case's key
        if isinstance(effect, AlarmRestored):
            name = self._zone_name(effect.zone)
            self._timeline(effect.at, "restored", f"{name}: back to normal ({effect.alarm.value})")
        elif isinstance(effect, AlarmCancelled):
            self._timeline(effect.at, "cancelled", f"cancelled with a valid code by {effect.user}")
            self.alerts.add(
                "alarm",
                "alarm_cancelled",
                f"Alarm cancelled by {effect.user}",
                {"user": effect.user},
                at=effect.at,
            )
        elif isinstance(effect, StatusChanged):
            self._timeline(effect.at, "status", f"{effect.old} → {effect.new}", effect.user)
            self.alerts.add(
                "security",
                "status",
                f"Security: {effect.new}",
                {"old": effect.old.value, "new": effect.new.value, "user": effect.user},
                at=effect.at,
            )
        elif isinstance(effect, ArmRefused):
            zones = ", ".join(self._zone_name(z) for z in effect.open_zones)
            self._timeline(effect.at, "refused", f"{effect.reason} {zones}".strip())
        elif isinstance(effect, ForceArmed):
            names = ", ".join(self._zone_name(z) for z in effect.zones)
            self._timeline(effect.at, "force_armed", f"armed with open zones: {names}", effect.user)
        elif isinstance(effect, BypassChanged):
            state = "bypassed" if effect.bypassed else "back in service"
            self._timeline(
                effect.at, "bypass", f"{self._zone_name(effect.zone)} {state}", effect.user
            )
        elif isinstance(effect, CodeLockout):
            self._timeline(effect.at, "lockout", f"wrong codes: keypad locked until {effect.until}")
            self.alerts.add(
                "security",
                "lockout",
                "Too many wrong codes: keypad locked",
                {"until": effect.until.isoformat()},
                at=effect.at,
            )
        elif isinstance(effect, Trouble | TroubleRestored):
            self._trouble(effect)
        elif isinstance(effect, KeypadReply):
            self._keypad(effect.device, {"transaction": effect.transaction, "mode": effect.mode})
        elif isinstance(effect, KeypadDisplay):
            display: dict[str, Any] = {"mode": effect.mode}
            if effect.delay_s is not None:
                display["delay"] = min(255, effect.delay_s)
            for keypad in self.home.of_kind(DeviceKind.KEYPAD):
                self._keypad(keypad.uid, display)
        elif isinstance(effect, SirenCommand):
            self._sirens(effect)
        self._report(effect)

    # -- alarms and cases -------------------------------------------------

    def _alarm(self, effect: AlarmRaised) -> None:
        zone = self.home.device(effect.zone)
        where = f" in {zone.name}" if zone else ""
        who = f" by {effect.user}" if effect.by_user and effect.user else ""
        text = f"{effect.alarm.value} alarm{where}{who} (Contact ID {effect.contact_id})"
        if not effect.silent:
            # A duress alarm must not show on the phone of someone forced to disarm.
            category = _CATEGORY.get(effect.alarm, "alarm")
            body = {
                "alarm": effect.alarm.value,
                "contact_id": effect.contact_id,
                "zone": effect.zone,
            }
            self.alerts.add(
                category, "alarm", text, body, at=effect.at, device_id=zone.id if zone else None
            )
        if not self.home.monitored:
            return
        case = Case(
            contract_id=self.home.contract_id,
            home_id=self.home.home_id,
            alarm=effect.alarm.value,
            contact_id=effect.contact_id,
            zone=effect.zone,
            silent=effect.silent,
            status=CaseStatus.OPEN,
            opened_at=effect.at,
            # From when dispatch can first see it: an alarm back-dated to a
            # deadline that passed while the gateway was down is not "late".
            next_resend_at=self.now + self.ack_timeout,
            resends=0,
        )
        self.session.add(case)
        self.session.flush()
        self._open().append(case)
        self.session.add(CaseEntry(case_id=case.id, at=effect.at, kind="opened", text=text))
        before, after = self.clip_window
        cameras = mark_clips(
            self.session,
            self.home.home_id,
            "alarm",
            effect.at,
            before=before,
            after=after,
            case_id=case.id,
        )
        if cameras:
            self.session.add(
                CaseEntry(
                    case_id=case.id,
                    at=effect.at,
                    kind="clips",
                    text=f"footage of {cameras} camera(s) held from {effect.at - before:%H:%M:%S}",
                )
            )
        self.changes.cases.append(case.id)
        self._report(effect, key=case_key(case.id))

    def _open(self) -> list[Case]:
        if self._open_cases is None:
            self._open_cases = list(
                self.session.scalars(
                    select(Case).where(
                        Case.home_id == self.home.home_id, Case.status != CaseStatus.CLOSED
                    )
                )
            )
        return self._open_cases

    def _timeline(self, at: datetime, kind: str, text: str, author: str | None = None) -> None:
        if not self.home.monitored:
            return
        for case in self._open():
            self.session.add(CaseEntry(case_id=case.id, at=at, kind=kind, text=text, author=author))
            if case.id not in self.changes.cases:
                self.changes.cases.append(case.id)

    def _trouble(self, effect: Trouble | TroubleRestored) -> None:
        restored = isinstance(effect, TroubleRestored)
        name = self._zone_name(effect.zone)
        text = f"{name}: {effect.kind}" + (" restored" if restored else "")
        zone = self.home.device(effect.zone)
        self.alerts.add(
            "trouble",
            "trouble_restored" if restored else "trouble",
            text,
            {"zone": effect.zone, "kind": effect.kind},
            at=effect.at,
            device_id=zone.id if zone else None,
        )

    def _report(self, effect: Effect, key: str | None = None) -> None:
        """The effect's Contact ID event, if the engine says the station gets one."""
        event = contact_id_event(effect)
        if event is None or not (self.home.monitored and self.central_station):
            return
        qualifier, code = event
        self._central_station(code, qualifier, self._number(effect), effect.at, key)

    def _number(self, effect: Effect) -> int:
        """``CCC``: the user for code events, opening/closing and cancels (and
        an alarm with no zone), else the zone."""
        if isinstance(effect, AlarmCancelled | OpenClose):
            return self._user_number(effect.user)
        if isinstance(effect, AlarmRaised) and (effect.by_user or effect.zone is None):
            return self._user_number(effect.user)
        zone = self.home.device(getattr(effect, "zone", None))
        return zone.number if zone else 0

    def _central_station(
        self, code: int, qualifier: int, zone: int, at: datetime, key: str | None
    ) -> None:
        contact_id(
            self.session,
            key or f"cs-{uuid.uuid4().hex}",
            account=self.home.account,
            code=code,
            qualifier=qualifier,
            zone=zone,
            home=self.home.uid,
            at=at,
        )
        self.changes.outbox = True

    # -- commands to devices ---------------------------------------------

    def _send(self, device: ZoneDevice, payload: dict[str, Any]) -> None:
        """On the device's ``/set``; a Zigbee2MQTT bridge listens under the
        friendly name, which installers set to the device's name or id."""
        names = [device.uid]
        if device.kind in ZIGBEE2MQTT_KINDS and device.name != device.uid:
            names.append(device.name)
        for name in names:
            topic = DeviceTopics(self.root, self.home.uid, name).set
            command(self.session, f"cmd-{uuid.uuid4().hex}", topic, payload, self.now)
        self.changes.outbox = True

    def _keypad(self, uid: str, arm_mode: dict[str, Any]) -> None:
        keypad = self.home.device(uid)
        if keypad is not None:
            self._send(keypad, {"arm_mode": arm_mode})

    def _sirens(self, effect: SirenCommand) -> None:
        warning: dict[str, Any] = (
            {
                "mode": "burglar",
                "level": "very_high",
                "strobe": True,
                "duration": effect.duration_s or 180,
            }
            if effect.on
            else {"mode": "stop", "level": "low", "strobe": False, "duration": 0}
        )
        for siren in self.home.of_kind(DeviceKind.SIREN):
            self._send(siren, {"warning": warning})

    # -- names ------------------------------------------------------------

    def _zone_name(self, uid: str) -> str:
        zone = self.home.device(uid)
        return zone.name if zone else uid

    def _user_number(self, name: str | None) -> int:
        if name is None:
            return 0
        user_id = self.session.scalar(
            select(AlarmUser.id).where(
                AlarmUser.home_id == self.home.home_id, AlarmUser.name == name
            )
        )
        return (user_id or 0) % 1000
