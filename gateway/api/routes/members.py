"""The owner's family: members with their own login and per-home permissions.
Only the owner may list, invite, change or remove them."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from gateway import audit
from gateway.api.deps import AddressDep, CtxDep, CurrentPrincipal, RowId, StreamsDep
from gateway.api.people_schemas import MemberChange, MemberCreate, MemberOut
from gateway.api.revocation import member_key
from gateway.api.schemas import errors
from gateway.db.models import utcnow
from gateway.db.people_models import Member
from gateway.people import members
from gateway.tokens import Principal

router = APIRouter(prefix="/members", tags=["members"], responses=errors(401, 403, 404))


def member_out(session: Session, member: Member) -> MemberOut:
    return MemberOut(
        id=member.id,
        login=member.login,
        name=member.name,
        role=member.role,
        permissions=members.grants_of(session, member),
        created_at=member.created_at,
    )


def _actor(principal: Principal, address: str) -> audit.Actor:
    return audit.Actor(principal.role, principal.who, address)


@router.get("", response_model=list[MemberOut])
def list_members(principal: CurrentPrincipal, ctx: CtxDep) -> list[MemberOut]:
    with ctx.db.session() as session:
        return [member_out(session, m) for m in members.listing(session, principal.contract_id)]


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=MemberOut, responses=errors(409, 422)
)
def invite_member(
    body: MemberCreate, principal: CurrentPrincipal, ctx: CtxDep, address: AddressDep
) -> MemberOut:
    """Invite a member with their own login (phone or e-mail) and password;
    ``permissions`` maps each home id to what they may do there (cameras,
    arm, intercom, gates). 409 if the login is taken."""
    with ctx.db.transaction() as session:
        member = members.invite(
            session,
            principal.contract_id,
            login=body.login,
            password=body.password,
            name=body.name,
            grants=body.permissions,
            actor=_actor(principal, address),
            now=utcnow(),
        )
        return member_out(session, member)


@router.get("/{member_id}", response_model=MemberOut)
def get_member(member_id: RowId, principal: CurrentPrincipal, ctx: CtxDep) -> MemberOut:
    with ctx.db.session() as session:
        return member_out(session, members.get(session, principal.contract_id, member_id))


@router.patch("/{member_id}", response_model=MemberOut, responses=errors(422))
def change_member(
    member_id: RowId,
    body: MemberChange,
    *,
    principal: CurrentPrincipal,
    ctx: CtxDep,
    address: AddressDep,
    streams: StreamsDep,
) -> MemberOut:
    """Rename, replace the permissions (effective on the member's next request)
    or set a new password (their tokens refused at once). Either way the
    member's open streams close (4401): they reconnect under the new rules."""
    with ctx.db.transaction() as session:
        member = members.change(
            session,
            members.get(session, principal.contract_id, member_id),
            name=body.name,
            grants=body.permissions,
            password=body.password,
            actor=_actor(principal, address),
            now=utcnow(),
        )
        out = member_out(session, member)
    streams.end(member_key(member_id))
    return out


@router.delete("/{member_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(
    member_id: RowId,
    principal: CurrentPrincipal,
    ctx: CtxDep,
    address: AddressDep,
    streams: StreamsDep,
) -> Response:
    """Remove the member: their tokens are refused and their open streams
    closed (4401) at once."""
    with ctx.db.transaction() as session:
        member = members.get(session, principal.contract_id, member_id)
        members.remove(session, member, actor=_actor(principal, address), now=utcnow())
    streams.end(member_key(member_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
