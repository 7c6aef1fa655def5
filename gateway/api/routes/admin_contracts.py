"""Admin: contracts and their homes, as the billing system manages them."""

from __future__ import annotations

from fastapi import APIRouter, status

from gateway.api.deps import AdminDep, CtxDep
from gateway.api.schemas import (
    ContractCreate,
    ContractOut,
    HomeCreate,
    HomeOut,
    NumberPath,
    errors,
)
from gateway.db.models import Contract

router = APIRouter(prefix="/admin/contracts", tags=["admin"], responses=errors(401, 404, 409, 503))


def contract_out(contract: Contract) -> ContractOut:
    return ContractOut(
        number=contract.number,
        status=contract.status,
        created_at=contract.created_at,
        homes=[HomeOut(id=h.uid, address=h.address) for h in contract.homes],
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ContractOut)
def create_contract(body: ContractCreate, ctx: CtxDep, _: AdminDep) -> ContractOut:
    """Create a contract with its first home; 409 if the number exists."""
    return contract_out(ctx.provisioner.create_contract(body.number, body.password, body.address))


@router.get("/{number}", response_model=ContractOut)
def get_contract(number: NumberPath, ctx: CtxDep, _: AdminDep) -> ContractOut:
    return contract_out(ctx.provisioner.get_contract(number))


@router.post("/{number}/suspend", response_model=ContractOut)
def suspend_contract(number: NumberPath, ctx: CtxDep, _: AdminDep) -> ContractOut:
    """Suspend: logins refused, tokens stop working, device connections dropped."""
    return contract_out(ctx.provisioner.set_suspended(number, suspended=True))


@router.post("/{number}/resume", response_model=ContractOut)
def resume_contract(number: NumberPath, ctx: CtxDep, _: AdminDep) -> ContractOut:
    return contract_out(ctx.provisioner.set_suspended(number, suspended=False))


@router.post("/{number}/homes", status_code=status.HTTP_201_CREATED, response_model=HomeOut)
def add_home(number: NumberPath, body: HomeCreate, ctx: CtxDep, _: AdminDep) -> HomeOut:
    home = ctx.provisioner.add_home(number, body.address)
    return HomeOut(id=home.uid, address=home.address)
