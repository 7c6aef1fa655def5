"""Checking a typed PIN against the home's alarm users, whose codes are stored
only as argon2 hashes. The engine gets the verdict, never the PIN."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from alarms import CodeCheck
from gateway.db.security_models import AlarmUser
from gateway.passwords import verify_password


def check_code(session: Session, home_id: int, code: str | None) -> CodeCheck:
    """``valid``/``duress`` with the user's name, ``wrong``, or ``absent``.

    Every user's hashes are tried even after a match would be found early, so
    the time taken does not tell which user's code (or duress code) it was.
    """
    if not code:
        return CodeCheck(result="absent")
    users = session.scalars(select(AlarmUser).where(AlarmUser.home_id == home_id)).all()
    verdict = CodeCheck(result="wrong")
    for user in users:
        if verify_password(user.code_hash, code) and verdict.result == "wrong":
            verdict = CodeCheck(result="valid", user=user.name)
        if (
            user.duress_hash is not None
            and verify_password(user.duress_hash, code)
            and verdict.result == "wrong"
        ):
            verdict = CodeCheck(result="duress", user=user.name)
    return verdict
