"""Password and code hashing with argon2id (argon2-cffi's recommended defaults)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the login names no known contract, so an unknown
# contract number costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("moydom-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def burn_verify(password: str) -> None:
    """Spend one verification's worth of time and discard the result."""
    verify_password(_DUMMY_HASH, password)
