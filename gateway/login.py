"""Subscriber login with throttling.

Every failure is a row in ``login_failures``. Throttling counts those rows in
a sliding window, per contract number and per client address, so it holds
across restarts and across several API processes sharing one database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.models import Contract, LoginFailure
from gateway.errors import Forbidden, InvalidCredentials, Throttled
from gateway.passwords import burn_verify, verify_password
from gateway.tokens import Principal

COUNTED_REASONS = ("unknown_contract", "bad_password")
"""Failures that count towards throttling. Throttled attempts are recorded but
not counted, so a locked-out owner is free again when the window passes."""


@dataclass(frozen=True)
class ThrottlePolicy:
    window_s: int
    max_per_contract: int
    max_per_address: int


def _retry_after(
    session: Session, *, column: str, value: str, limit: int, window: timedelta, now: datetime
) -> int | None:
    """Seconds until fewer than ``limit`` counted failures remain in the window."""
    col = getattr(LoginFailure, column)
    recent = session.scalars(
        select(LoginFailure.at)
        .where(col == value, LoginFailure.at > now - window)
        .where(LoginFailure.reason.in_(COUNTED_REASONS))
        .order_by(LoginFailure.at.desc())
        .limit(limit)
    ).all()
    if len(recent) < limit:
        return None
    oldest_that_blocks = recent[-1]
    return max(1, math.ceil((oldest_that_blocks + window - now).total_seconds()))


def record_failure(db: Database, key: str, address: str, reason: str, now: datetime) -> None:
    """``key`` is what was logged in as: a contract number, or ``dispatcher:<login>``."""
    with db.transaction() as session:
        session.add(
            LoginFailure(
                contract_number=key[:64], client_address=address[:64], reason=reason, at=now
            )
        )


def guard(db: Database, policy: ThrottlePolicy, *, key: str, address: str, now: datetime) -> None:
    """Raise ``Throttled`` (and record it) when ``key`` or ``address`` failed too often."""
    window = timedelta(seconds=policy.window_s)
    with db.session() as session:
        waits = [
            _retry_after(
                session,
                column="contract_number",
                value=key,
                limit=policy.max_per_contract,
                window=window,
                now=now,
            ),
            _retry_after(
                session,
                column="client_address",
                value=address,
                limit=policy.max_per_address,
                window=window,
                now=now,
            ),
        ]
    blocked = [w for w in waits if w is not None]
    if blocked:
        record_failure(db, key, address, "throttled", now)
        raise Throttled("too many failed logins; try again later", max(blocked))


def authenticate(
    db: Database,
    policy: ThrottlePolicy,
    *,
    number: str,
    password: str,
    address: str,
    now: datetime,
) -> Principal:
    """Check a contract's password, or raise; record every failure."""
    guard(db, policy, key=number, address=address, now=now)
    with db.session() as session:
        contract = session.scalars(select(Contract).where(Contract.number == number)).first()
    if contract is None:
        burn_verify(password)
        record_failure(db, number, address, "unknown_contract", now)
        raise InvalidCredentials("wrong contract number or password")
    if not verify_password(contract.password_hash, password):
        record_failure(db, number, address, "bad_password", now)
        raise InvalidCredentials("wrong contract number or password")
    if not contract.active:
        record_failure(db, number, address, "suspended", now)
        raise Forbidden("contract is suspended")
    return Principal(contract_id=contract.id, contract_number=contract.number)
