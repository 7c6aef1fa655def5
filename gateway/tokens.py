"""Access tokens (JWT, HS256) and the principal they name.

A principal is who is calling: a contract's owner, or one of its members
(``member_id`` set) with the permissions the owner gave them, so every
ownership check is written against ``Principal.contract_id`` and every
permission check against the member. A token carries the login's
``epoch``: a password change raises the stored epoch, and every token issued
before is refused from then on (``gateway.api.deps``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

ALGORITHM = "HS256"
AUDIENCE = "moydom"


class TokenError(Exception):
    """The token is missing, malformed, expired or not ours."""


OWNER = "owner"
MEMBER = "member"
DISPATCHER = "dispatcher"


@dataclass(frozen=True)
class Principal:
    """For ``role == "dispatcher"`` the subject is a dispatcher account:
    ``contract_id`` holds the dispatcher's id and ``contract_number`` is
    ``dispatcher:<login>`` (a string no contract number can equal). Every
    dependency checks the role before it trusts the id."""

    contract_id: int
    contract_number: str
    role: str = OWNER
    member_id: int | None = None
    """The member's row for ``role == "member"``; None for the owner."""
    epoch: int = 0
    login: str = ""
    """What was logged in with: the contract number, or the member's login."""

    @property
    def who(self) -> str:
        """The login, for audit entries and throttling."""
        return self.login or self.contract_number


def issue(principal: Principal, key: str, ttl_s: int, now: datetime) -> str:
    claims: dict[str, Any] = {
        "sub": str(principal.contract_id),
        "cn": principal.contract_number,
        "role": principal.role,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "jti": secrets.token_hex(8),
        "gen": principal.epoch,
    }
    if principal.member_id is not None:
        claims["mid"] = principal.member_id
        claims["login"] = principal.login
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode(token: str, key: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["sub", "exp", "aud", "cn", "role"]},
        )
        member = claims.get("mid")
        return Principal(
            int(claims["sub"]),
            str(claims["cn"]),
            str(claims["role"]),
            member_id=None if member is None else int(member),
            epoch=int(claims.get("gen", 0)),
            login=str(claims.get("login", "")),
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise TokenError(str(exc)) from exc
