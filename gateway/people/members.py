"""A contract's members: invited by the owner with their own login (a phone
or an e-mail) and password, given permissions per home, changed and removed.
Every change is written to the audit trail in the same transaction, and a
removed member's tokens stop working at once (their row is gone)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway import audit
from gateway.db.models import Home
from gateway.db.people_models import Member, MemberPermission
from gateway.errors import Conflict, Invalid, NotFound
from gateway.passwords import hash_password
from gateway.people.permissions import Permission
from gateway.tokens import MEMBER

Grants = dict[str, list[Permission]]
"""Home uid -> what the member may do there."""


def _rows(session: Session, contract_id: int, grants: Grants) -> list[MemberPermission]:
    homes = dict(
        session.execute(select(Home.uid, Home.id).where(Home.contract_id == contract_id)).all()
    )
    rows = []
    for uid, permissions in grants.items():
        if uid not in homes:
            raise Invalid(f"no home {uid} on this contract")
        rows += [MemberPermission(home_id=homes[uid], permission=p.value) for p in set(permissions)]
    return rows


def grants_of(session: Session, member: Member) -> dict[str, list[str]]:
    """The member's permissions by home uid, sorted."""
    uids = dict(
        session.execute(
            select(Home.id, Home.uid).where(Home.contract_id == member.contract_id)
        ).all()
    )
    out: dict[str, list[str]] = {}
    for row in member.permissions:
        out.setdefault(uids[row.home_id], []).append(row.permission)
    return {uid: sorted(perms) for uid, perms in sorted(out.items())}


def listing(session: Session, contract_id: int) -> list[Member]:
    return list(
        session.scalars(select(Member).where(Member.contract_id == contract_id).order_by(Member.id))
    )


def get(session: Session, contract_id: int, member_id: int) -> Member:
    """The contract's member; another contract's is a plain 404."""
    member = session.get(Member, member_id)
    if member is None or member.contract_id != contract_id:
        raise NotFound(f"no member {member_id}")
    return member


def invite(
    session: Session,
    contract_id: int,
    *,
    login: str,
    password: str,
    name: str | None,
    grants: Grants,
    actor: audit.Actor,
    now: datetime,
) -> Member:
    """Add a member; 409 if the login is taken (by anyone: logins are global)."""
    if session.scalars(select(Member.id).where(Member.login == login)).first() is not None:
        raise Conflict(f"login {login} is taken")
    member = Member(
        contract_id=contract_id,
        login=login,
        password_hash=hash_password(password),
        name=name,
        role=MEMBER,
        token_epoch=0,
        created_at=now,
    )
    member.permissions = _rows(session, contract_id, grants)
    session.add(member)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent invite took it
        raise Conflict(f"login {login} is taken") from exc
    audit.record(
        session,
        actor,
        "member_invited",
        at=now,
        contract_id=contract_id,
        detail={"member": login, "permissions": grants_of(session, member)},
    )
    return member


def change(
    session: Session,
    member: Member,
    *,
    name: str | None = None,
    grants: Grants | None = None,
    password: str | None = None,
    actor: audit.Actor,
    now: datetime,
) -> Member:
    """Rename, replace the permissions, or set a new password (which ends the
    member's sessions); only what is given changes."""
    detail: dict[str, object] = {"member": member.login}
    if name is not None:
        member.name = name
        detail["name"] = name
    if grants is not None:
        member.permissions = _rows(session, member.contract_id, grants)
        session.flush()
        detail["permissions"] = grants_of(session, member)
    if password is not None:
        member.password_hash = hash_password(password)
        member.token_epoch += 1
        detail["password_changed"] = True
    audit.record(
        session, actor, "member_changed", at=now, contract_id=member.contract_id, detail=detail
    )
    return member


def remove(session: Session, member: Member, *, actor: audit.Actor, now: datetime) -> None:
    """Delete the member: their tokens are refused from the next request on."""
    audit.record(
        session,
        actor,
        "member_removed",
        at=now,
        contract_id=member.contract_id,
        detail={"member": member.login},
    )
    session.delete(member)
