"""The audit trail: owners read their homes' entries, the ISP reads all,
newest first, paged with the one keyset helper."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import Select, select

from gateway.api.deps import AdminDep, CurrentPrincipal, SessionDep
from gateway.api.pagination import Cursor, keyset, page
from gateway.api.people_schemas import AuditOut, AuditPage
from gateway.api.schemas import CONTRACT_NUMBER, DEVICE_ID, errors
from gateway.db.models import Contract
from gateway.db.people_models import AuditEntry

router = APIRouter(tags=["audit"], responses=errors(401, 422))

Limit = Annotated[int, Query(ge=1, le=500)]
HomeFilter = Annotated[str | None, Query(pattern=DEVICE_ID, description="one home's entries")]


def _page(
    session: SessionDep,
    query: Select[AuditEntry, str],
    cursor: str | None,
    limit: int,
) -> AuditPage:
    rows, next_cursor = page(
        session.execute(keyset(query, AuditEntry.id, cursor, limit)).all(),
        limit,
        lambda row: row[0].id,
    )
    return AuditPage(
        items=[
            AuditOut(
                id=entry.id,
                at=entry.at,
                actor_kind=entry.actor_kind,
                actor=entry.actor,
                contract=number,
                home=entry.home,
                device=entry.device,
                action=entry.action,
                detail=entry.detail,
                address=entry.address,
            )
            for entry, number in rows
        ],
        next_cursor=next_cursor,
    )


def _entries() -> Select[AuditEntry, str]:
    return select(AuditEntry, Contract.number).outerjoin(
        Contract, Contract.id == AuditEntry.contract_id
    )


@router.get("/audit", response_model=AuditPage, responses=errors(403))
def my_audit(
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Limit = 50,
    home: HomeFilter = None,
) -> AuditPage:
    """Who did what in the caller's homes (the owner only), newest first."""
    query = _entries().where(AuditEntry.contract_id == principal.contract_id)
    if home is not None:
        query = query.where(AuditEntry.home == home)
    return _page(session, query, cursor, limit)


@router.get("/admin/audit", response_model=AuditPage, tags=["admin"])
def admin_audit(
    _: AdminDep,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Limit = 50,
    contract: Annotated[str | None, Query(pattern=CONTRACT_NUMBER)] = None,
) -> AuditPage:
    """The whole trail, or one contract's, newest first."""
    query = _entries()
    if contract is not None:
        query = query.where(Contract.number == contract)
    return _page(session, query, cursor, limit)
