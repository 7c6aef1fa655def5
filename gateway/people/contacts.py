"""A contract's contact details from billing: the phone and e-mail a
password-reset code is sent to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from gateway import audit
from gateway.db.engine import Database
from gateway.db.models import Contract
from gateway.errors import NotFound


def set_contacts(
    db: Database, number: str, *, phone: str | None, email: str | None, now: datetime
) -> None:
    """Replace both (None clears one); written to the audit trail as billing's."""
    with db.transaction() as session:
        contract = session.scalars(select(Contract).where(Contract.number == number)).first()
        if contract is None:
            raise NotFound(f"contract {number} not found")
        contract.phone, contract.email = phone, email
        audit.record(
            session,
            audit.Actor(audit.ADMIN_KIND, "admin"),
            "contacts_changed",
            at=now,
            contract_id=contract.id,
            detail={"phone": phone, "email": email},
        )
