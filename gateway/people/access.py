"""Passwords of owners and members: change (old and new), reset by a 6-digit
code sent through the outbox, and reset by the ISP's support desk.

Every way of setting a password raises the login's token epoch, so every
token issued before is refused (``gateway.api.deps``); the caller gets a
fresh token for the new epoch. A reset code is stored hashed, lives
``CODE_TTL``, takes ``CODE_TRIES`` wrong tries, and a new request supersedes
the old code. Asking for a code answers the same whether the login exists
or not, and costs the same time (a hash is made either way)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway import audit
from gateway.db.engine import Database
from gateway.db.models import Contract
from gateway.db.people_models import Member, ResetCode
from gateway.errors import Forbidden, InvalidCredentials, NotFound
from gateway.login import (
    ThrottlePolicy,
    find_login,
    guard,
    guard_requests,
    principal_of,
    record_failure,
)
from gateway.outbox.enqueue import Channel, enqueue
from gateway.passwords import burn_verify, hash_password, verify_password
from gateway.tokens import Principal

log = logging.getLogger(__name__)

CODE_TTL: Final = timedelta(minutes=10)
CODE_TRIES: Final = 5
WRONG_CODE: Final = "wrong login or code"


@dataclass(frozen=True)
class ResetPolicy:
    """Which transports are configured, and the caps on code requests."""

    sms: bool
    email: bool
    window_s: int
    per_login: int
    per_address: int


def _subject(session: Session, principal: Principal) -> tuple[Contract, Member | None]:
    contract = session.get_one(Contract, principal.contract_id)
    member = None if principal.member_id is None else session.get_one(Member, principal.member_id)
    return contract, member


def _actor(principal: Principal, address: str) -> audit.Actor:
    return audit.Actor(principal.role, principal.who, address)


def change_password(
    db: Database,
    policy: ThrottlePolicy,
    principal: Principal,
    *,
    old: str,
    new: str,
    address: str,
    now: datetime,
) -> Principal:
    """Check the current password (wrong ones count like wrong logins), set the
    new one, end every other session; the principal of the new epoch."""
    guard(db, policy, key=principal.who, address=address, now=now)
    with db.session() as session:
        contract, member = _subject(session, principal)
        current = (member or contract).password_hash
    if not verify_password(current, old):
        record_failure(db, principal.who, address, "bad_password", now)
        raise Forbidden("wrong current password")
    new_hash = hash_password(new)
    with db.transaction() as session:
        contract, member = _subject(session, principal)
        subject = member or contract
        subject.password_hash = new_hash
        subject.token_epoch += 1
        audit.record(
            session,
            _actor(principal, address),
            "password_changed",
            at=now,
            contract_id=contract.id,
            detail={"login": principal.who},
        )
        return principal_of(contract, member)


def admin_set_password(db: Database, number: str, password: str, *, now: datetime) -> None:
    """The support desk sets the owner's password: every session of it ends."""
    new_hash = hash_password(password)
    with db.transaction() as session:
        contract = session.scalars(select(Contract).where(Contract.number == number)).first()
        if contract is None:
            raise NotFound(f"contract {number} not found")
        contract.password_hash = new_hash
        contract.token_epoch += 1
        audit.record(
            session,
            audit.Actor(audit.ADMIN_KIND, "admin"),
            "password_reset_by_support",
            at=now,
            contract_id=contract.id,
            detail={"login": number},
        )


def _destination(
    contract: Contract, member: Member | None, policy: ResetPolicy, prefer: str | None
) -> tuple[Channel, str] | None:
    """Where the code goes: a member's own login; the owner's phone (SMS) or
    e-mail from billing, ``prefer`` first; None if nothing is configured."""
    if member is not None:
        if "@" in member.login:
            return (Channel.EMAIL, member.login) if policy.email else None
        return (Channel.SMS, member.login) if policy.sms else None
    options = []
    if contract.phone and policy.sms:
        options.append((Channel.SMS, contract.phone))
    if contract.email and policy.email:
        options.append((Channel.EMAIL, contract.email))
    options.sort(key=lambda option: option[0].value != prefer)
    return options[0] if options else None


def _message(channel: Channel, to: str, code: str) -> dict[str, str]:
    text = f"Код для смены пароля «Мой дом»: {code}. Действует 10 минут. Никому его не сообщайте."
    if channel == Channel.SMS:
        return {"to": to, "text": text}
    return {"to": to, "subject": "Смена пароля «Мой дом»", "body": text + "\n"}


def request_reset(
    db: Database,
    policy: ResetPolicy,
    *,
    login: str,
    prefer: str | None,
    address: str,
    now: datetime,
) -> None:
    """Send a code to the login's channel, if the login exists and has one.
    Raises only ``Throttled`` — the same for every login, known or not."""
    guard_requests(
        db,
        key=login,
        address=address,
        now=now,
        window_s=policy.window_s,
        per_key=policy.per_login,
        per_address=policy.per_address,
    )
    code = f"{secrets.randbelow(10**6):06d}"
    code_hash = hash_password(code)  # made either way: the same time for unknown logins
    with db.transaction() as session:
        found = find_login(session, login)
        if found is None or not found[0].active:
            return
        contract, member = found
        destination = _destination(contract, member, policy, prefer)
        if destination is None:
            log.warning("password reset for %s: no configured channel to send a code", login)
            return
        channel, to = destination
        session.execute(
            update(ResetCode)
            .where(
                ResetCode.contract_id == contract.id,
                ResetCode.member_id.is_(None)
                if member is None
                else ResetCode.member_id == member.id,
                ResetCode.used_at.is_(None),
            )
            .values(used_at=now)
        )
        row = ResetCode(
            contract_id=contract.id,
            member_id=None if member is None else member.id,
            code_hash=code_hash,
            channel=channel.value,
            created_at=now,
            expires_at=now + CODE_TTL,
            attempts=0,
        )
        session.add(row)
        session.flush()
        enqueue(session, f"reset-{row.id}", channel, _message(channel, to, code), now)
        audit.record(
            session,
            audit.Actor(principal_of(contract, member).role, login, address),
            "password_reset_requested",
            at=now,
            contract_id=contract.id,
            detail={"login": login, "channel": channel.value},
        )


def confirm_reset(
    db: Database,
    throttle: ThrottlePolicy,
    *,
    login: str,
    code: str,
    new_password: str,
    address: str,
    now: datetime,
) -> Principal:
    """Set the new password if ``code`` is the login's live code; wrong codes
    count like wrong passwords, and a code's fifth wrong try ends it."""
    guard(db, throttle, key=login, address=address, now=now)
    new_hash = hash_password(new_password)
    failure: str | None = None
    with db.transaction() as session:
        found = find_login(session, login)
        row = None
        if found is not None and found[0].active:
            contract, member = found
            row = session.scalars(
                select(ResetCode)
                .where(
                    ResetCode.contract_id == contract.id,
                    ResetCode.member_id.is_(None)
                    if member is None
                    else ResetCode.member_id == member.id,
                    ResetCode.used_at.is_(None),
                    ResetCode.expires_at > now,
                )
                .order_by(ResetCode.id.desc())
            ).first()
        if found is None or row is None:
            burn_verify(code)
            failure = "unknown_contract" if found is None else "bad_code"
        elif not verify_password(row.code_hash, code):
            row.attempts += 1
            if row.attempts >= CODE_TRIES:
                row.used_at = now
            failure = "bad_code"
        else:
            row.used_at = now
            subject = member or contract
            subject.password_hash = new_hash
            subject.token_epoch += 1
            audit.record(
                session,
                audit.Actor(principal_of(contract, member).role, login, address),
                "password_reset",
                at=now,
                contract_id=contract.id,
                detail={"login": login, "channel": row.channel},
            )
            principal = principal_of(contract, member)
    if failure is not None:
        record_failure(db, login, address, failure, now)
        raise InvalidCredentials(WRONG_CODE)
    return principal
