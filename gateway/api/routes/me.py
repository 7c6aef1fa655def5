"""The subscriber's own view: who am I, which devices are mine. A member
sees only the homes and devices their permissions reach."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from gateway.api.deps import CurrentPrincipal, OwnedDevice, SessionDep
from gateway.api.schemas import HomeOut, MeOut, SubscriberDevice, errors
from gateway.db.models import Contract, Device, Home
from gateway.people.permissions import for_kind, held

router = APIRouter(tags=["subscriber"], responses=errors(401, 404))


def subscriber_device(device: Device, home: Home) -> SubscriberDevice:
    return SubscriberDevice(
        id=device.uid,
        kind=device.kind,
        name=device.name,
        home=home.uid,
        created_at=device.created_at,
    )


@router.get("/me", response_model=MeOut)
def me(principal: CurrentPrincipal, session: SessionDep) -> MeOut:
    contract = session.get(Contract, principal.contract_id)
    assert contract is not None  # checked by CurrentPrincipal
    homes = contract.homes
    permissions = None
    if principal.member_id is not None:
        grants = held(session, principal.member_id)
        homes = [h for h in homes if grants.get(h.id)]
        permissions = {h.uid: sorted(grants[h.id]) for h in homes}
    return MeOut(
        contract=contract.number,
        role=principal.role,
        login=principal.who,
        homes=[HomeOut.of(h) for h in homes],
        permissions=permissions,
    )


@router.get("/devices", response_model=list[SubscriberDevice])
def my_devices(principal: CurrentPrincipal, session: SessionDep) -> list[SubscriberDevice]:
    rows = list(
        session.scalars(
            select(Device)
            .where(Device.contract_id == principal.contract_id, Device.deleted_at.is_(None))
            .order_by(Device.id)
        )
    )
    if principal.member_id is not None:
        grants = held(session, principal.member_id)
        rows = [d for d in rows if for_kind(d.kind) in grants.get(d.home_id, set())]
    return [subscriber_device(d, d.home) for d in rows]


@router.get("/devices/{device_id}", response_model=SubscriberDevice)
def my_device(device: OwnedDevice) -> SubscriberDevice:
    return subscriber_device(device, device.home)
