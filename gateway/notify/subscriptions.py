"""Web Push subscriptions of logins, and who of them hears about a home.

Each operation takes the login (contract, member or None for the owner):
a subscription of another login — or another contract — is "not found",
never "forbidden", so its existence is not told."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from gateway.db.people_models import MemberPermission
from gateway.db.push_models import PushSubscription
from gateway.errors import NotFound


def _hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


def _mine(
    contract_id: int, member_id: int | None
) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    member = (
        PushSubscription.member_id.is_(None)
        if member_id is None
        else PushSubscription.member_id == member_id
    )
    return (PushSubscription.contract_id == contract_id, member)


def subscribe(
    session: Session,
    contract_id: int,
    member_id: int | None,
    *,
    endpoint: str,
    p256dh: str,
    auth: str,
    now: datetime,
) -> PushSubscription:
    """Keep the browser's subscription for this login; the same endpoint
    posted again (new keys, or another login in the same browser) replaces
    the old row, so one browser is woken once, for the login now using it."""
    digest = _hash(endpoint)
    session.execute(delete(PushSubscription).where(PushSubscription.endpoint_hash == digest))
    row = PushSubscription(
        contract_id=contract_id,
        member_id=member_id,
        endpoint=endpoint,
        endpoint_hash=digest,
        p256dh=p256dh,
        auth=auth,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def listing(session: Session, contract_id: int, member_id: int | None) -> list[PushSubscription]:
    query = select(PushSubscription).where(*_mine(contract_id, member_id))
    return list(session.scalars(query.order_by(PushSubscription.id)))


def remove(session: Session, contract_id: int, member_id: int | None, sub_id: int) -> None:
    """Unsubscribe; another login's subscription is a plain 404."""
    gone = session.execute(
        delete(PushSubscription).where(
            PushSubscription.id == sub_id, *_mine(contract_id, member_id)
        )
    )
    if gone.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"no push subscription {sub_id}")


def recipients(session: Session, contract_id: int, home_id: int) -> list[PushSubscription]:
    """The owner's subscriptions and those of members allowed anything in the home."""
    allowed = select(MemberPermission.member_id).where(MemberPermission.home_id == home_id)
    query = select(PushSubscription).where(
        PushSubscription.contract_id == contract_id,
        or_(PushSubscription.member_id.is_(None), PushSubscription.member_id.in_(allowed)),
    )
    return list(session.scalars(query.order_by(PushSubscription.id)))


def forget(session: Session, sub_id: int) -> None:
    """The push service says the subscription is gone (404/410)."""
    session.execute(delete(PushSubscription).where(PushSubscription.id == sub_id))
