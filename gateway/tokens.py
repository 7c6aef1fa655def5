"""Access tokens (JWT, HS256) and the principal they name.

A principal is who is calling: today always a contract's owner; family members
and guests will be principals of the same contract with a narrower role, so
every ownership check is written against ``Principal.contract_id``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

ALGORITHM = "HS256"
AUDIENCE = "moydom"


class TokenError(Exception):
    """The token is missing, malformed, expired or not ours."""


OWNER = "owner"
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


def issue(principal: Principal, key: str, ttl_s: int, now: datetime) -> str:
    claims = {
        "sub": str(principal.contract_id),
        "cn": principal.contract_number,
        "role": principal.role,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "jti": secrets.token_hex(8),
    }
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
        return Principal(int(claims["sub"]), str(claims["cn"]), str(claims["role"]))
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise TokenError(str(exc)) from exc
