"""Device health across all contracts, as operators filter it.

A device is *offline* when its last availability said so, *silent* when it
has said nothing for longer than its check-in interval — its own
(``settings.check_in_s``, set by an operator) or its kind's
(``devices.kinds.CHECK_IN_S``), counted from its last message, or from its
provisioning if it never spoke — and *low on battery* below
``LOW_BATTERY_PERCENT`` or when it reports ``battery_low``. Silence is
computed at read time from ``device_health.last_seen_at``, so it needs no
timer and holds outside any security zone (the alarm panel's own
supervision only covers zones).

Every filter is one SQL condition, so cursor paging (newest device first)
stays an index seek whatever the filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import BigInteger, ColumnElement, and_, false, func, literal, or_, select
from sqlalchemy.orm import Session

from devices.kinds import CHECK_IN_S, DeviceKind
from gateway.db.models import Contract, Device, DeviceHealth, Home

LOW_BATTERY_PERCENT = 20
CHECK_IN_KEY = "check_in_s"
"""The key of a device's own check-in interval in its ``settings``."""


class HealthState(StrEnum):
    OFFLINE = "offline"
    SILENT = "silent"
    LOW_BATTERY = "low_battery"


@dataclass(frozen=True)
class DeviceHealthRow:
    """One live device with its contract, home and health at ``now``."""

    device: str
    contract: str
    home: str
    address: str
    kind: str
    name: str
    online: bool | None
    last_seen_at: datetime | None
    battery: int | None
    battery_low: bool | None
    linkquality: int | None
    check_in_s: int | None
    states: tuple[HealthState, ...]
    id: int


def _seen() -> ColumnElement[datetime]:
    """The last sign of life: the last message, else the provisioning."""
    return func.coalesce(DeviceHealth.last_seen_at, Device.created_at)


def _override() -> ColumnElement[int]:
    """SQL: the device's own check-in (``settings.check_in_s``), else NULL."""
    own: ColumnElement[int] = Device.settings[CHECK_IN_KEY].as_integer()
    return own


def check_in_of(device: Device) -> int | None:
    """The device's check-in: its own setting, else its kind's (None: never silent)."""
    own = (device.settings or {}).get(CHECK_IN_KEY)
    return int(own) if own is not None else CHECK_IN_S.get(DeviceKind(device.kind))


def silent_condition(session: Session, now: datetime) -> ColumnElement[bool]:
    """SQL: the device said nothing for longer than its check-in. One clause
    per distinct interval (the kinds' defaults and the few set per device),
    so the comparison stays with the column, on both backends."""
    by_interval: dict[int, list[str]] = {}
    for kind, seconds in CHECK_IN_S.items():
        by_interval.setdefault(seconds, []).append(kind.value)
    clauses = [
        and_(
            Device.kind.in_(kinds),
            _override().is_(None),
            _seen() < now - timedelta(seconds=seconds),
        )
        for seconds, kinds in sorted(by_interval.items())
    ]
    own = session.scalars(
        select(_override()).where(Device.deleted_at.is_(None), _override().is_not(None)).distinct()
    )
    clauses += [
        and_(_override() == seconds, _seen() < now - timedelta(seconds=seconds))
        for seconds in sorted(own)
    ]
    return or_(*clauses) if clauses else false()


def low_battery_condition() -> ColumnElement[bool]:
    return or_(DeviceHealth.battery < LOW_BATTERY_PERCENT, DeviceHealth.battery_low.is_(True))


def offline_condition() -> ColumnElement[bool]:
    return DeviceHealth.online.is_(False)


def _states(device: Device, health: DeviceHealth | None, now: datetime) -> tuple[HealthState, ...]:
    """The same rules as the SQL conditions, for the rows shown."""
    states: list[HealthState] = []
    if health is not None and health.online is False:
        states.append(HealthState.OFFLINE)
    check_in = check_in_of(device)
    seen = health.last_seen_at if health is not None and health.last_seen_at else device.created_at
    if check_in is not None and seen < now - timedelta(seconds=check_in):
        states.append(HealthState.SILENT)
    if health is not None and (
        (health.battery is not None and health.battery < LOW_BATTERY_PERCENT)
        or health.battery_low is True
    ):
        states.append(HealthState.LOW_BATTERY)
    return tuple(states)


def device_health(
    session: Session,
    now: datetime,
    *,
    state: HealthState | None = None,
    contract: str | None = None,
    below_id: int | None = None,
    limit: int = 50,
) -> list[DeviceHealthRow]:
    """Live devices newest first (ids below ``below_id``), at most ``limit``,
    optionally only those in ``state`` or of one contract."""
    query = (
        select(Device, DeviceHealth, Contract.number, Home.uid, Home.address)
        .join(Home, Home.id == Device.home_id)
        .join(Contract, Contract.id == Device.contract_id)
        .outerjoin(DeviceHealth, DeviceHealth.device_id == Device.id)
        .where(Device.deleted_at.is_(None))
        .order_by(Device.id.desc())
        .limit(limit)
    )
    if below_id is not None:
        # BIGINT: a cursor past devices.id's INTEGER range finds nothing, no error
        query = query.where(Device.id < literal(below_id, BigInteger()))
    if contract is not None:
        query = query.where(Contract.number == contract)
    if state is HealthState.OFFLINE:
        query = query.where(offline_condition())
    elif state is HealthState.SILENT:
        query = query.where(silent_condition(session, now))
    elif state is HealthState.LOW_BATTERY:
        query = query.where(low_battery_condition())
    rows = []
    for device, health, number, home_uid, address in session.execute(query):
        rows.append(
            DeviceHealthRow(
                device=device.uid,
                contract=number,
                home=home_uid,
                address=address,
                kind=device.kind,
                name=device.name,
                online=health.online if health else None,
                last_seen_at=health.last_seen_at if health else None,
                battery=health.battery if health else None,
                battery_low=health.battery_low if health else None,
                linkquality=health.linkquality if health else None,
                check_in_s=check_in_of(device),
                states=_states(device, health, now),
                id=device.id,
            )
        )
    return rows


def counts(session: Session, now: datetime) -> dict[str, int]:
    """How many live devices there are, and how many are in each state."""
    base = (
        select(func.count())
        .select_from(Device)
        .outerjoin(DeviceHealth, DeviceHealth.device_id == Device.id)
        .where(Device.deleted_at.is_(None))
    )
    return {
        "total": session.scalar(base) or 0,
        HealthState.OFFLINE.value: session.scalar(base.where(offline_condition())) or 0,
        HealthState.SILENT.value: session.scalar(base.where(silent_condition(session, now))) or 0,
        HealthState.LOW_BATTERY.value: session.scalar(base.where(low_battery_condition())) or 0,
    }
