"""A contract's end, as the billing system orders it: at once, its devices'
broker accounts are deleted (Mosquitto drops their connections), its logins
stop working (tokens are checked against the contract's status on every
request; the caller closes the open streams), its guest passes are
revoked and its alarm panels leave the security service (no longer
monitored, no pending timer: an entry delay running at the end sends no
team to a flat whose contract has ended); its data stays, unreachable, until ``purge_after``, when
:mod:`gateway.people.purge` deletes it.

The broker goes first, as in ``gateway.provisioning``: a crash or a broker
that stops answering half-way leaves the contract as it was (but with fewer
accounts, which fails closed) and a retry completes it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from gateway import audit
from gateway.db.models import Contract, ContractStatus
from gateway.db.people_models import GuestPass
from gateway.db.security_models import AlarmPanel
from gateway.errors import NotFound
from gateway.provisioning import Provisioner


def terminate(
    provisioner: Provisioner, number: str, *, now: datetime, grace: timedelta, address: str | None
) -> Contract:
    """End contract ``number``: NotFound, or Conflict if it has ended already."""
    with provisioner.db.transaction() as session:
        contract = session.scalars(
            select(Contract).where(Contract.number == number).with_for_update()
        ).first()
        if contract is None:
            raise NotFound(f"contract {number} not found")
        provisioner.refuse_ended(contract)
        devices = provisioner.live_devices(session, contract.id)
        for device in devices:
            provisioner.forget_account(device.mqtt_username, strict=True)
        for device in devices:
            device.deleted_at = now
        session.execute(
            update(GuestPass)
            .where(GuestPass.contract_id == contract.id, GuestPass.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        session.execute(
            update(AlarmPanel)
            .where(AlarmPanel.contract_id == contract.id)
            .values(monitored=False, next_deadline=None, updated_at=now)
        )
        contract.status = ContractStatus.TERMINATED
        contract.status_changed_at = now
        contract.terminated_at = now
        contract.purge_after = now + grace
        audit.record(
            session,
            audit.Actor(audit.ADMIN_KIND, "admin", address),
            "contract_terminated",
            at=now,
            contract_id=contract.id,
            detail={"devices": len(devices), "purge_after": contract.purge_after.isoformat()},
        )
    return provisioner.get_contract(number)
