"""The audit trail: one function, :func:`record`, called inside the
transaction that commits the action, so an entry exists exactly when the
action happened. The table is append-only in the database itself (triggers
refuse UPDATE, DELETE and, on PostgreSQL, TRUNCATE; migration 0010)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from gateway.db.people_models import AuditEntry

ACTOR_KINDS: Final = ("owner", "member", "guest", "dispatcher", "admin")


@dataclass(frozen=True)
class Actor:
    """Who acted: ``kind`` one of :data:`ACTOR_KINDS`, ``login`` their login
    (a contract number, a member's phone or e-mail, ``dispatcher:<login>``,
    ``admin``), ``address`` the client address the request came from."""

    kind: str
    login: str
    address: str | None = None


ADMIN_KIND: Final = "admin"


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    at: datetime,
    contract_id: int | None = None,
    home: str | None = None,
    device: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one entry to the trail, in ``session``'s transaction."""
    assert actor.kind in ACTOR_KINDS, actor.kind
    session.add(
        AuditEntry(
            at=at,
            actor_kind=actor.kind,
            actor=actor.login[:254],
            contract_id=contract_id,
            home=home,
            device=device,
            action=action[:48],
            detail=detail or {},
            address=None if actor.address is None else actor.address[:64],
        )
    )
