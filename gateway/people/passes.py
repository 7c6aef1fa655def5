"""Guest passes: the owner's link that opens chosen gates and doors only.

A pass names devices of its contract that can be opened (gates, intercom
doors), a window ``[valid_from, valid_to)`` and at most ``max_uses`` uses. Its
token (32 random bytes, URL-safe) is shown once, at creation; only its SHA-256
is stored — the token is random, so a fast hash is enough to make a stolen
table useless. A use is counted by one conditional UPDATE that matches only a
pass still valid, unrevoked and not used up, so two concurrent uses cannot
exceed ``max_uses``; the command it opens is recorded in the same transaction.
An unknown, expired, used-up or revoked token, or one of a suspended
contract, is the same :class:`NotFound`."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from gateway import audit
from gateway.commands import records
from gateway.commands.records import Outgoing
from gateway.db.models import Contract, ContractStatus, Device, Home
from gateway.db.people_models import GuestPass, GuestPassDevice
from gateway.errors import Invalid, NotFound
from gateway.notices import Notice

NO_PASS = "no such pass, or it is no longer valid"  # noqa: S105 - a pattern/message, no secret
"""The one answer for an unknown, expired, used-up or revoked token."""
MAX_DEVICES = 20
MAX_USES = 1000
MAX_SPAN = timedelta(days=366)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def caller_of(pass_id: int) -> str:
    """How a pass is named as a command's caller and in the audit trail."""
    return f"pass:{pass_id}"


@dataclass(frozen=True)
class PassDevice:
    uid: str
    home: str
    kind: str
    name: str


def create(
    session: Session,
    contract_id: int,
    created_by: str,
    *,
    name: str,
    device_uids: Sequence[str],
    valid_from: datetime,
    valid_to: datetime,
    max_uses: int,
    now: datetime,
    actor: audit.Actor,
) -> tuple[GuestPass, str]:
    """A new pass and its token (the only time the token exists in clear)."""
    uids = list(dict.fromkeys(device_uids))
    if not 1 <= len(uids) <= MAX_DEVICES:
        raise Invalid(f"a pass names 1 to {MAX_DEVICES} gates or doors")
    if valid_to <= valid_from or valid_to <= now:
        raise Invalid("valid_to must be after valid_from and in the future")
    if valid_to - valid_from > MAX_SPAN:
        raise Invalid("a pass is valid for at most 366 days")
    if not 1 <= max_uses <= MAX_USES:
        raise Invalid(f"max_uses must be 1 to {MAX_USES}")
    devices = session.scalars(
        select(Device).where(
            Device.uid.in_(uids), Device.contract_id == contract_id, Device.deleted_at.is_(None)
        )
    ).all()
    found = {d.uid: d for d in devices if d.kind in records.OPENABLE}
    missing = [uid for uid in uids if uid not in found]
    if missing:
        raise NotFound(f"no gate or door {missing[0]}")
    token = secrets.token_urlsafe(32)
    row = GuestPass(
        contract_id=contract_id,
        token_hash=token_hash(token),
        name=name,
        valid_from=valid_from,
        valid_to=valid_to,
        max_uses=max_uses,
        uses=0,
        created_by=created_by[:254],
        created_at=now,
    )
    session.add(row)
    session.flush()
    session.add_all(GuestPassDevice(pass_id=row.id, device_id=found[uid].id) for uid in uids)
    audit.record(
        session,
        actor,
        "pass_created",
        at=now,
        contract_id=contract_id,
        detail={"pass": row.id, "devices": uids, "max_uses": max_uses},
    )
    return row, token


def devices_of(session: Session, pass_id: int) -> list[PassDevice]:
    """The live gates and doors a pass opens."""
    rows = session.execute(
        select(Device.uid, Home.uid, Device.kind, Device.name)
        .join(GuestPassDevice, GuestPassDevice.device_id == Device.id)
        .join(Home, Home.id == Device.home_id)
        .where(GuestPassDevice.pass_id == pass_id, Device.deleted_at.is_(None))
        .order_by(Device.uid)
    ).all()
    return [PassDevice(*row) for row in rows]


def owned(session: Session, contract_id: int, pass_id: int) -> GuestPass:
    """The contract's pass; another contract's is a plain 404."""
    row = session.get(GuestPass, pass_id)
    if row is None or row.contract_id != contract_id:
        raise NotFound(f"no pass {pass_id}")
    return row


def revoke(
    session: Session, contract_id: int, pass_id: int, now: datetime, actor: audit.Actor
) -> None:
    """Revoke at once: the next use is refused (revoking twice is no error)."""
    row = owned(session, contract_id, pass_id)
    if row.revoked_at is None:
        session.execute(
            update(GuestPass)
            .where(GuestPass.id == pass_id, GuestPass.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        audit.record(
            session,
            actor,
            "pass_revoked",
            at=now,
            contract_id=contract_id,
            detail={"pass": pass_id},
        )


def _valid(now: datetime) -> tuple[ColumnElement[bool], ...]:
    active = select(Contract.id).where(
        Contract.id == GuestPass.contract_id, Contract.status == ContractStatus.ACTIVE
    )
    return (
        active.exists(),
        GuestPass.revoked_at.is_(None),
        GuestPass.valid_from <= now,
        GuestPass.valid_to > now,
        GuestPass.uses < GuestPass.max_uses,
    )


def valid(session: Session, token: str, now: datetime) -> GuestPass:
    """The pass of ``token`` if it may be used now; else :data:`NO_PASS`."""
    row = session.scalars(
        select(GuestPass).where(GuestPass.token_hash == token_hash(token), *_valid(now))
    ).first()
    if row is None:
        raise NotFound(NO_PASS)
    return row


def use(
    session: Session,
    token: str,
    device_uid: str,
    *,
    ttl: timedelta,
    root: str,
    now: datetime,
    address: str | None,
) -> tuple[Outgoing, Notice, GuestPass]:
    """Open one of the pass's gates: count the use (one conditional UPDATE),
    record the command whose caller names the pass, and the audit entry —
    all in ``session``'s transaction. A device not on the pass is a 404 and
    no use is counted."""
    row = valid(session, token, now)
    on_pass = {d.uid: d for d in devices_of(session, row.id)}
    if device_uid not in on_pass:
        raise NotFound(f"no gate or door {device_uid} on this pass")
    counted = session.execute(
        update(GuestPass)
        .where(GuestPass.id == row.id, *_valid(now))
        .values(uses=GuestPass.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(NO_PASS)
    device = records.openable(session, row.contract_id, on_pass[device_uid].home, device_uid)
    out, notice = records.create(session, device, caller_of(row.id), ttl, root=root, now=now)
    audit.record(
        session,
        audit.Actor("guest", caller_of(row.id), address),
        "gate_opened_by_pass",
        at=now,
        contract_id=row.contract_id,
        home=on_pass[device_uid].home,
        device=device_uid,
        detail={"pass": row.id, "command": out.uid},
    )
    session.refresh(row)
    return out, notice, row
