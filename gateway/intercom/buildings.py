"""Shared entrances as the ISP provisions them: a building, the intercom
panels at its entrances, and which home each flat number is. Ownership lives
here: a call is routed only through these rows, so a flat's home is the only
one a call dialled to it reaches."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from devices.kinds import DeviceKind
from gateway.db.intercom_models import Building, EntrancePanel, Flat
from gateway.db.models import Contract, Device, Home
from gateway.errors import Conflict, NotFound


@dataclass(frozen=True)
class FlatView:
    number: str
    contract: str
    home: str


@dataclass(frozen=True)
class BuildingView:
    id: str
    address: str
    panels: list[str]
    """Device ids of its entrance panels."""
    flats: list[FlatView]


def create(session: Session, address: str) -> Building:
    building = Building(uid=secrets.token_hex(5), address=address)
    session.add(building)
    session.flush()
    return building


def get(session: Session, uid: str) -> Building:
    building = session.scalars(select(Building).where(Building.uid == uid)).first()
    if building is None:
        raise NotFound(f"no building {uid}")
    return building


def view(session: Session, building: Building) -> BuildingView:
    panels = session.scalars(
        select(Device.uid)
        .join(EntrancePanel, EntrancePanel.device_id == Device.id)
        .where(EntrancePanel.building_id == building.id)
        .order_by(Device.uid)
    )
    flats = session.execute(
        select(Flat.number, Contract.number, Home.uid)
        .join(Home, Home.id == Flat.home_id)
        .join(Contract, Contract.id == Home.contract_id)
        .where(Flat.building_id == building.id)
        .order_by(Flat.number)
    )
    return BuildingView(
        id=building.uid,
        address=building.address,
        panels=list(panels),
        flats=[FlatView(n, c, h) for n, c, h in flats],
    )


def attach_panel(session: Session, building: Building, device_uid: str) -> None:
    """Put a live intercom at the building's entrance; 409 if it serves another."""
    device = session.scalars(
        select(Device).where(Device.uid == device_uid, Device.deleted_at.is_(None))
    ).first()
    if device is None:
        raise NotFound(f"device {device_uid} not found")
    if device.kind != DeviceKind.INTERCOM:
        raise Conflict(f"device {device_uid} is a {device.kind}, not an intercom")
    panel = session.get(EntrancePanel, device.id)
    if panel is not None and panel.building_id != building.id:
        raise Conflict(f"intercom {device_uid} already serves another building")
    if panel is None:
        session.add(EntrancePanel(device_id=device.id, building_id=building.id))


def detach_panel(session: Session, building: Building, device_uid: str) -> None:
    device_id = session.scalar(select(Device.id).where(Device.uid == device_uid))
    gone = session.execute(
        delete(EntrancePanel).where(
            EntrancePanel.device_id == device_id, EntrancePanel.building_id == building.id
        )
    )
    if device_id is None or gone.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"intercom {device_uid} does not serve building {building.uid}")


def set_flat(
    session: Session, building: Building, number: str, contract_number: str, home_uid: str
) -> bool:
    """Flat ``number`` is that contract's home; True if the flat is new."""
    home = session.scalars(
        select(Home)
        .join(Contract, Contract.id == Home.contract_id)
        .where(Home.uid == home_uid, Contract.number == contract_number)
    ).first()
    if home is None:
        raise NotFound(f"contract {contract_number} has no home {home_uid}")
    flat = session.scalars(
        select(Flat).where(Flat.building_id == building.id, Flat.number == number)
    ).first()
    if flat is None:
        session.add(Flat(building_id=building.id, number=number, home_id=home.id))
        return True
    flat.home_id = home.id
    return False


def remove_flat(session: Session, building: Building, number: str) -> None:
    gone = session.execute(
        delete(Flat).where(Flat.building_id == building.id, Flat.number == number)
    )
    if gone.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"building {building.uid} has no flat {number}")


def route(session: Session, device_id: int, own_home_id: int, flat: str) -> int | None:
    """The home a call from this panel to ``flat`` rings: a building's panel
    rings the flat's home (None: no such flat provisioned); a home's own
    intercom rings its own home, whatever it reports."""
    building_id = session.scalar(
        select(EntrancePanel.building_id).where(EntrancePanel.device_id == device_id)
    )
    if building_id is None:
        return own_home_id
    return session.scalar(
        select(Flat.home_id).where(Flat.building_id == building_id, Flat.number == flat)
    )
