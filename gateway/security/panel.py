"""Running a home's panel against the database.

Every use locks the panel's row for the rest of the caller's transaction
(``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite a no-op ``UPDATE`` takes
the database's write lock first), steps the engine, and stores the new state
and its next deadline in the same commit as whatever caused the step — so an
entry delay that began is never forgotten, and never begun twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alarms import (
    CodeCheck,
    Effect,
    Event,
    PanelState,
    Tick,
    ZoneOnline,
    ZoneSeen,
    ZoneTripped,
    next_deadline,
    step,
)
from alarms.keypad import display_for
from devices.kinds import DeviceKind
from devices.payloads import DeviceMessage
from gateway.db.security_models import AlarmPanel, Case, CaseEntry, CaseStatus
from gateway.notices import Notice
from gateway.security.codes import check_code
from gateway.security.effects import EffectWriter
from gateway.security.home import load_home
from gateway.security.translate import LATCHING_KINDS, engine_events
from gateway.security.zones import ZONE_KINDS, ZoneDevice, build_config
from gateway.settings import Settings

log = logging.getLogger(__name__)
ENGINE_FAILURES = Counter(
    "moydom_alarm_engine_failures_total", "Panel steps that failed (each opens a fault case)"
)
SYSTEM_TROUBLE = 300
"""Contact ID "system trouble": what a fault case reports."""


@dataclass(frozen=True)
class ZoneMessage:
    """An accepted device message from a zone-kind device, for its home's panel."""

    home_id: int
    device: ZoneDevice
    message: DeviceMessage
    received_at: datetime


def lock_panels(session: Session, home_ids: Iterable[int]) -> dict[int, AlarmPanel]:
    """The panels of these homes (those that have one), locked, in id order."""
    ids = sorted(set(home_ids))
    if not ids:
        return {}
    pg = session.get_bind().dialect.name == "postgresql"
    if not pg:
        session.execute(
            update(AlarmPanel).where(AlarmPanel.home_id.in_(ids)).values(status=AlarmPanel.status)
        )
    query = select(AlarmPanel).where(AlarmPanel.home_id.in_(ids)).order_by(AlarmPanel.home_id)
    if pg:
        query = query.with_for_update()
    return {panel.home_id: panel for panel in session.scalars(query)}


class SecurityService:
    """Steps panels; shared by ingest, the API and the alarms role."""

    def __init__(
        self,
        root: str,
        ack_timeout_s: float,
        central_station: bool,
        transports: frozenset[str] = frozenset(),
        clip_window: tuple[timedelta, timedelta] = (timedelta(seconds=10), timedelta(seconds=60)),
    ) -> None:
        """``central_station``: whether a receiver is configured;
        ``transports``: which of ``email``, ``sms`` are. Nothing is queued
        for what is not configured (it would be sent, stale, once it is)."""
        self.root = root
        self.ack_timeout = timedelta(seconds=ack_timeout_s)
        self.central_station = central_station
        self.transports = transports
        self.clip_window = clip_window
        """An alarm marks the home's cameras' footage this long before and after."""

    def run(
        self,
        session: Session,
        panel: AlarmPanel,
        inputs: Callable[[Callable[[str | None], CodeCheck]], list[tuple[Event, datetime]]],
        now: datetime,
        changes: Notice,
    ) -> list[Effect]:
        """Step ``panel`` (locked by the caller) through what ``inputs`` yields.

        ``inputs`` gets the code checker for this home, so PINs are verified
        only under the panel's lock. Times never run backwards: an input
        stamped before the panel's last step is applied at that step's time.
        """
        home = load_home(session, panel)
        config = build_config(panel.settings, home.devices)
        state = PanelState.model_validate(panel.state)
        writer = EffectWriter(
            session,
            home,
            root=self.root,
            ack_timeout=self.ack_timeout,
            changes=changes,
            now=now,
            central_station=self.central_station,
            transports=self.transports,
            clip_window=self.clip_window,
        )
        done: list[Effect] = []
        last = panel.updated_at
        latching = {d.uid for d in home.devices if d.kind in LATCHING_KINDS}
        keypads = {d.uid for d in home.of_kind(DeviceKind.KEYPAD)}
        for event, at in inputs(lambda code: check_code(session, panel.home_id, code)):
            if isinstance(event, ZoneSeen) and _unsupervised(config.zones.get(event.zone)):
                continue
            if (
                isinstance(event, ZoneTripped)
                and event.zone in latching
                and event.zone in state.open_zones
            ):
                continue  # the same open door reported again
            last = max(last, at)
            state, effects = step(config, state, event, last)
            if isinstance(event, ZoneOnline) and event.zone in keypads:
                # Keypads forget the panel's status when they restart.
                effects.append(display_for(state, last))
            writer.write_all(effects)
            done += effects
        panel.state = state.model_dump(mode="json")
        panel.status = state.status.value
        panel.next_deadline = next_deadline(config, state)
        panel.updated_at = last
        return done

    @staticmethod
    def homes_with_panels(session: Session, home_ids: Iterable[int]) -> set[int]:
        """Which of these homes have a panel: one primary-key lookup, no lock.

        Ingest asks this once per batch and hands :meth:`apply_messages` only
        the messages of those homes, so a batch from homes without a panel
        costs this one query and nothing per message.
        """
        ids = list(home_ids)
        if not ids:
            return set()
        return set(session.scalars(select(AlarmPanel.home_id).where(AlarmPanel.home_id.in_(ids))))

    def apply_messages(
        self, session: Session, messages: list[ZoneMessage], now: datetime
    ) -> Notice:
        """Ingest's hook: the batch's zone messages, per home, in arrival order.

        Each home runs in a savepoint: should the engine fail on one home's
        input, that is logged and the batch's events are still stored.
        """
        changes = Notice()
        by_home: dict[int, list[ZoneMessage]] = {}
        for m in messages:
            if m.device.kind in ZONE_KINDS:
                by_home.setdefault(m.home_id, []).append(m)
        for home_id, panel in lock_panels(session, by_home).items():
            mine = by_home[home_id]

            def inputs(
                check: Callable[[str | None], CodeCheck], mine: list[ZoneMessage] = mine
            ) -> list[tuple[Event, datetime]]:
                return [
                    (event, m.received_at)
                    for m in mine
                    for event in engine_events(m.device, m.message, check)
                ]

            home_changes = Notice()
            try:
                with session.begin_nested():
                    self.run(session, panel, inputs, now, home_changes)
            except Exception as exc:
                log.exception("alarm panel of home %d failed on ingest input", home_id)
                home_changes = self._fault(session, panel, exc, now)
            changes.merge(home_changes)
        return changes

    def _fault(self, session: Session, panel: AlarmPanel, exc: Exception, now: datetime) -> Notice:
        """The engine failed on this home's input: the events are stored, and
        dispatch gets a fault case saying so — an alarm it may have carried
        must not vanish into a log line."""
        ENGINE_FAILURES.inc()
        case = Case(
            contract_id=panel.contract_id,
            home_id=panel.home_id,
            alarm="fault",
            contact_id=SYSTEM_TROUBLE,
            status=CaseStatus.OPEN,
            opened_at=now,
            next_resend_at=now + self.ack_timeout,
            resends=0,
        )
        session.add(case)
        session.flush()
        text = f"the alarm panel could not process sensor input: {type(exc).__name__}: {exc}"
        session.add(CaseEntry(case_id=case.id, at=now, kind="opened", text=text[:1000]))
        return Notice(cases=[case.id])

    def apply(
        self,
        session: Session,
        home_id: int,
        make_event: Callable[[Callable[[str | None], CodeCheck]], Event],
        now: datetime,
    ) -> tuple[list[Effect], Notice] | None:
        """One request (arm, disarm, bypass) from the API; None: no panel."""
        panel = lock_panels(session, [home_id]).get(home_id)
        if panel is None:
            return None
        changes = Notice()
        effects = self.run(session, panel, lambda check: [(make_event(check), now)], now, changes)
        return effects, changes

    def tick_due(self, session: Session, now: datetime, limit: int = 100) -> Notice:
        """Fire the deadlines that are due (the alarms role calls this)."""
        query = (
            select(AlarmPanel.home_id)
            .where(AlarmPanel.next_deadline <= now)
            .order_by(AlarmPanel.next_deadline)
            .limit(limit)
        )
        changes = Notice()
        due = list(session.scalars(query))
        for home_id, panel in lock_panels(session, due).items():
            if panel.next_deadline is None or panel.next_deadline > now:
                continue  # another process got there first
            self.run(session, panel, lambda _check: [(Tick(), now)], now, changes)
            log.info("home %d: deadline fired, status %s", home_id, panel.status)
        return changes


def _unsupervised(zone: Any) -> bool:
    """Check-ins matter only to zones with a check-in interval; skipping the
    rest keeps every sensor report from rewriting its panel's row."""
    return zone is None or zone.check_in_s is None


def initial_state() -> dict[str, Any]:
    return PanelState().model_dump(mode="json")


def security_service(settings: Settings) -> SecurityService:
    return SecurityService(
        settings.mqtt_topic_root,
        settings.dispatch_ack_timeout_s,
        central_station=settings.central_station_host is not None,
        transports=frozenset(
            name
            for name, configured in (("email", settings.smtp_host), ("sms", settings.sms_url))
            if configured
        ),
        clip_window=(
            timedelta(seconds=settings.clip_before_s),
            timedelta(seconds=settings.clip_after_s),
        ),
    )
