"""Logins with throttling that an attacker cannot turn against the owner.

Every failure is a row in ``login_failures``; throttling counts those rows in
a sliding window, so it holds across restarts and across several API
processes sharing one database. Three counts, each answering one attack:

- per contract *and* address: guessing one contract's password from one
  place. After ``max_per_pair`` failures that pair waits the window out;
- per address: one place spraying many contracts. After ``max_per_address``
  failures that address waits the window out;
- per contract from anywhere: guessing from many addresses. After
  ``max_per_contract`` failures the contract only *slows down*: each attempt
  waits 1, 2, 4 … up to ``max_delay_s`` seconds after the latest failure.
  An owner at an address of their own is never locked out for the window
  by what others typed (a reset by code is the way out of a sustained attack).

IPv6 clients are counted per /64, the block one subscriber line gets.

A login is a contract number (the owner) or a member's own login, a phone
(``+7…``) or an e-mail: the two never look alike, so one field takes both.
Wrong reset codes and wrong current passwords count like wrong passwords;
requests for a reset code are capped separately (:func:`guard_requests`),
counted by the login typed whether or not it exists.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.models import Contract, LoginFailure
from gateway.db.people_models import Member
from gateway.errors import Forbidden, InvalidCredentials, Throttled
from gateway.passwords import burn_verify, verify_password
from gateway.tokens import MEMBER, OWNER, Principal

COUNTED_REASONS = ("unknown_contract", "bad_password", "bad_code")
"""Failures that count towards throttling. Throttled attempts are recorded but
not counted, so a throttled pair is free again when the window passes."""


@dataclass(frozen=True)
class ThrottlePolicy:
    window_s: int
    max_per_contract: int
    max_per_address: int
    max_per_pair: int
    max_delay_s: int


def address_key(address: str) -> str:
    """What an address is counted as: itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _counted(*where: ColumnElement[bool], since: datetime) -> Select[datetime]:
    return (
        select(LoginFailure.at)
        .where(*where, LoginFailure.at > since)
        .where(LoginFailure.reason.in_(COUNTED_REASONS))
    )


def _window_wait(
    session: Session, query: Select[datetime], limit: int, window: timedelta, now: datetime
) -> int:
    """Seconds until fewer than ``limit`` counted failures remain in the window (0: none)."""
    recent = session.scalars(query.order_by(LoginFailure.at.desc()).limit(limit)).all()
    if len(recent) < limit:
        return 0
    return max(1, math.ceil((recent[-1] + window - now).total_seconds()))


def _slowdown_wait(session: Session, key: str, policy: ThrottlePolicy, now: datetime) -> int:
    """Seconds until a contract failing from many addresses takes its next attempt."""
    since = now - timedelta(seconds=policy.window_s)
    counted = _counted(LoginFailure.contract_number == key, since=since).subquery()
    failures, latest = session.execute(
        select(func.count(), func.max(counted.c.at)).select_from(counted)
    ).one()
    if failures < policy.max_per_contract or latest is None:
        return 0
    delay = min(policy.max_delay_s, 2 ** min(failures - policy.max_per_contract, 16))
    left = (latest + timedelta(seconds=delay) - now).total_seconds()
    return math.ceil(left) if left > 0 else 0


def record_failure(db: Database, key: str, address: str, reason: str, now: datetime) -> None:
    """``key`` is what was logged in as: a contract number, or ``dispatcher:<login>``."""
    with db.transaction() as session:
        session.add(
            LoginFailure(
                contract_number=key[:64], client_address=address_key(address), reason=reason, at=now
            )
        )


def guard(db: Database, policy: ThrottlePolicy, *, key: str, address: str, now: datetime) -> None:
    """Raise ``Throttled`` (and record it) when this pair or this address failed
    too often, or the contract is slowed down and its next attempt is not due."""
    window = timedelta(seconds=policy.window_s)
    since, where = now - window, address_key(address)
    by_key, by_address = LoginFailure.contract_number == key, LoginFailure.client_address == where
    with db.session() as session:
        wait = max(
            _window_wait(
                session, _counted(by_key, by_address, since=since), policy.max_per_pair, window, now
            ),
            _window_wait(
                session, _counted(by_address, since=since), policy.max_per_address, window, now
            ),
            _slowdown_wait(session, key, policy, now),
        )
    if wait:
        record_failure(db, key, address, "throttled", now)
        raise Throttled("too many failed logins; try again later", wait)


RESET_REQUESTED = "reset_requested"


def guard_requests(
    db: Database,
    *,
    key: str,
    address: str,
    now: datetime,
    window_s: int,
    per_key: int,
    per_address: int,
) -> None:
    """Cap reset-code requests: ``per_key`` per login and ``per_address`` per
    client address in the window (hard caps: each request may send an SMS).
    Records this request when it is let through."""
    window = timedelta(seconds=window_s)
    since, where = now - window, address_key(address)

    def requested(*conditions: ColumnElement[bool]) -> Select[datetime]:
        return select(LoginFailure.at).where(
            *conditions, LoginFailure.at > since, LoginFailure.reason == RESET_REQUESTED
        )

    with db.session() as session:
        wait = max(
            _window_wait(
                session, requested(LoginFailure.contract_number == key[:64]), per_key, window, now
            ),
            _window_wait(
                session, requested(LoginFailure.client_address == where), per_address, window, now
            ),
        )
    if wait:
        raise Throttled("too many reset requests; try again later", wait)
    record_failure(db, key, address, RESET_REQUESTED, now)


def is_member_login(login: str) -> bool:
    """Members log in with a phone (``+…``) or an e-mail; contract numbers have neither."""
    return login.startswith("+") or "@" in login


def find_login(session: Session, login: str) -> tuple[Contract, Member | None] | None:
    """The contract (and member) a login names, or None."""
    if is_member_login(login):
        member = session.scalars(select(Member).where(Member.login == login)).first()
        if member is None:
            return None
        return session.get_one(Contract, member.contract_id), member
    contract = session.scalars(select(Contract).where(Contract.number == login)).first()
    return None if contract is None else (contract, None)


def principal_of(contract: Contract, member: Member | None) -> Principal:
    """Who a login is, with the epoch its tokens must carry."""
    if member is None:
        return Principal(
            contract.id, contract.number, OWNER, epoch=contract.token_epoch, login=contract.number
        )
    return Principal(
        contract.id,
        contract.number,
        MEMBER,
        member_id=member.id,
        epoch=member.token_epoch,
        login=member.login,
    )


def authenticate(
    db: Database,
    policy: ThrottlePolicy,
    *,
    number: str,
    password: str,
    address: str,
    now: datetime,
) -> Principal:
    """Check the password of a contract's owner (``number`` is the contract
    number) or of a member (their phone or e-mail), or raise; record every failure."""
    guard(db, policy, key=number, address=address, now=now)
    with db.session() as session:
        found = find_login(session, number)
        if found is not None:
            contract, member = found
            password_hash = (member or contract).password_hash
            principal = principal_of(contract, member)
            active, ended = contract.active, contract.terminated_at is not None
    if found is None:
        burn_verify(password)
        record_failure(db, number, address, "unknown_contract", now)
        raise InvalidCredentials("wrong contract number or password")
    if not verify_password(password_hash, password):
        record_failure(db, number, address, "bad_password", now)
        raise InvalidCredentials("wrong contract number or password")
    if ended:
        record_failure(db, number, address, "terminated", now)
        raise Forbidden("contract has ended")
    if not active:
        record_failure(db, number, address, "suspended", now)
        raise Forbidden("contract is suspended")
    return principal
