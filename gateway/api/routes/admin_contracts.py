"""Admin: contracts, their homes and contact details, as the billing system
manages them, the support desk's password reset, and a contract's end."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from gateway.api.deps import AddressDep, AdminDep, CtxDep, SessionDep, StreamsDep
from gateway.api.people_schemas import ContactsIn, PasswordSet
from gateway.api.revocation import contract_key, owner_key
from gateway.api.schemas import (
    ContractCreate,
    ContractOut,
    HomeCreate,
    HomeOut,
    NumberPath,
    PurgeOut,
    errors,
)
from gateway.db.models import PurgeReport, utcnow
from gateway.db.purge import contract_ref
from gateway.errors import NotFound
from gateway.people.access import admin_set_password
from gateway.people.contacts import set_contacts
from gateway.people.termination import terminate

router = APIRouter(prefix="/admin/contracts", tags=["admin"], responses=errors(401, 404, 409, 503))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ContractOut)
def create_contract(body: ContractCreate, ctx: CtxDep, _: AdminDep) -> ContractOut:
    """Create a contract with its first home (and, if given, its contact
    details: the reset channels); 409 if the number exists."""
    contract = ctx.provisioner.create_contract(
        body.number, body.password, body.address, body.time_zone
    )
    if body.phone is not None or body.email is not None:
        set_contacts(ctx.db, body.number, phone=body.phone, email=body.email, now=utcnow())
        contract = ctx.provisioner.get_contract(body.number)
    return ContractOut.of(contract)


@router.get("/{number}", response_model=ContractOut)
def get_contract(number: NumberPath, ctx: CtxDep, _: AdminDep) -> ContractOut:
    return ContractOut.of(ctx.provisioner.get_contract(number))


@router.put("/{number}/contacts", response_model=ContractOut, responses=errors(422))
def put_contacts(number: NumberPath, body: ContactsIn, ctx: CtxDep, _: AdminDep) -> ContractOut:
    """Set the phone and e-mail a password-reset code goes to (null clears one)."""
    set_contacts(ctx.db, number, phone=body.phone, email=body.email, now=utcnow())
    return ContractOut.of(ctx.provisioner.get_contract(number))


@router.post("/{number}/password", status_code=status.HTTP_204_NO_CONTENT, responses=errors(422))
def reset_password(
    number: NumberPath, body: PasswordSet, ctx: CtxDep, _: AdminDep, streams: StreamsDep
) -> Response:
    """The support desk sets the owner's password: every session of it ends
    (tokens refused, open streams closed)."""
    admin_set_password(ctx.db, number, body.password, now=utcnow())
    streams.end(owner_key(ctx.provisioner.get_contract(number).id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{number}/suspend", response_model=ContractOut)
def suspend_contract(
    number: NumberPath, ctx: CtxDep, _: AdminDep, streams: StreamsDep
) -> ContractOut:
    """Suspend: logins refused, tokens stop working, open streams closed,
    device connections dropped."""
    contract = ctx.provisioner.set_suspended(number, suspended=True)
    streams.end(contract_key(contract.id))
    return ContractOut.of(contract)


@router.post("/{number}/resume", response_model=ContractOut)
def resume_contract(number: NumberPath, ctx: CtxDep, _: AdminDep) -> ContractOut:
    return ContractOut.of(ctx.provisioner.set_suspended(number, suspended=False))


@router.post("/{number}/terminate", response_model=ContractOut, responses=errors(503))
def terminate_contract(
    number: NumberPath, ctx: CtxDep, _: AdminDep, streams: StreamsDep, address: AddressDep
) -> ContractOut:
    """End the contract: its devices' broker accounts are deleted (their
    connections dropped), its owner's and members' tokens refused and open
    streams closed, its guest passes revoked; after ``purge_after`` (the
    ``purge_grace_days`` setting) its data and recordings are purged. 409 if
    it has ended already; nothing undoes it."""
    grace = timedelta(days=ctx.settings.purge_grace_days)
    contract = terminate(ctx.provisioner, number, now=utcnow(), grace=grace, address=address)
    streams.end(contract_key(contract.id))
    return ContractOut.of(contract)


@router.get("/{number}/purge", response_model=PurgeOut)
def get_purge(number: NumberPath, ctx: CtxDep, _: AdminDep, session: SessionDep) -> PurgeOut:
    """The report of contract ``number``'s purge (404 until it is purged)."""
    ref = contract_ref(ctx.secrets.secret_key, number)
    report = session.scalars(select(PurgeReport).where(PurgeReport.contract_ref == ref)).first()
    if report is None:
        raise NotFound(f"contract {number} has not been purged")
    return PurgeOut.of(report)


@router.post("/{number}/homes", status_code=status.HTTP_201_CREATED, response_model=HomeOut)
def add_home(number: NumberPath, body: HomeCreate, ctx: CtxDep, _: AdminDep) -> HomeOut:
    """Add a home (its time zone defaults to Novosibirsk's)."""
    return HomeOut.of(ctx.provisioner.add_home(number, body.address, body.time_zone))
