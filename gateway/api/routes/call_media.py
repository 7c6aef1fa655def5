"""An intercom call's media over WebRTC, WHEP-style like the cameras' live view: ``POST`` an SDP
offer to ``/calls/{call}/whep`` while the call rings or after you answered it; the answer carries
the panel's video and the visitor's audio, and the offer's audio, when the member sends it, is
their microphone — passed to the panel once they answered. ``DELETE`` the session URL to leave;
the session also ends with the call (see :mod:`gateway.call_media` for who gets what).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from gateway.api.deps import (
    BearerDep,
    CtxDep,
    CurrentPrincipal,
    RowId,
    StreamsDep,
    check_member,
    subscriber_from_token,
)
from gateway.api.revocation import follow_access
from gateway.api.routes.live import (
    ANSWER,
    OFFER_BODY,
    SDP,
    SessionIdPath,
    answered,
    ice_servers_for,
    live_of,
    open_live,
    read_offer,
    viewer_of,
    with_links,
)
from gateway.api.schemas import errors
from gateway.call_media import CallPanel, follow, media_of_call
from gateway.context import AppContext
from gateway.errors import (
    InvalidCredentials,
    MoydomError,
    NotFound,
)
from gateway.people.permissions import Permission
from gateway.tokens import Principal
from recorder.backchannel import Talk

router = APIRouter(prefix="/calls", tags=["live"], responses=errors(401, 404))

MemberQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[^\x00-\x1f\x7f]{1,64}$",
        description="the member watching, named as they answer the call "
        "(``member`` of the answer; the login if omitted, as for the answer)",
    ),
]


@dataclass(frozen=True)
class CallMediaCaller:
    """Who asks, with which token, as which member, for which call of theirs."""

    principal: Principal
    token: str
    member: str
    call: CallPanel


def check_call_caller(
    ctx: AppContext, token: str, call_id: int, member: str | None
) -> CallMediaCaller:
    """401 for a bad token; 403 for a member without the intercom permission in the call's
    home; 404 for another contract's call; 409 for a call that is over or that another member
    answered. A short session of its own, reused by the re-check (so a permission taken away
    ends the session too)."""
    with ctx.db.session() as session:
        principal = subscriber_from_token(ctx, session, token)
        check_member(session, principal, Permission.INTERCOM.value, {"call_id": str(call_id)})
        name = member or principal.who
        call = media_of_call(session, principal.contract_id, call_id, name)
    return CallMediaCaller(principal, token, name, call)


def call_media_caller(
    call_id: RowId, ctx: CtxDep, creds: BearerDep, member: MemberQuery = None
) -> CallMediaCaller:
    if creds is None:
        raise InvalidCredentials("bearer token required")
    return check_call_caller(ctx, creds.credentials, call_id, member)


CallMediaCallerDep = Annotated[CallMediaCaller, Depends(call_media_caller)]


def scope_of(call_id: int) -> str:
    return f"call:{call_id}"


@router.options("/{call_id}/whep", status_code=status.HTTP_204_NO_CONTENT, responses=errors(409))
def call_whep_options(caller: CallMediaCallerDep, ctx: CtxDep) -> Response:
    """The ICE servers (``Link`` headers) to gather candidates with."""
    headers = with_links(
        {"Accept-Post": SDP}, ice_servers_for(ctx.settings, caller.principal.contract_number)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


@router.post(
    "/{call_id}/whep",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    openapi_extra=OFFER_BODY,
    responses=ANSWER,
)
async def call_whep_offer(
    request: Request, caller: CallMediaCallerDep, ctx: CtxDep, streams: StreamsDep
) -> Response:
    """See and hear the visitor (and, once you answered, speak): 409 when the call is over or
    another member answered it, 503 when the panel does not stream."""
    offer = await read_offer(request)
    call = caller.call

    def still_allowed() -> bool:
        try:
            check_call_caller(ctx, caller.token, call.call_id, caller.member)
        except MoydomError:
            return False
        return True

    sessions = live_of(ctx)
    servers = ice_servers_for(ctx.settings, caller.principal.contract_number)
    talk = Talk(call.rtsp_url, timeout_s=ctx.settings.live_open_timeout_s)
    answer = await open_live(
        ctx,
        call.panel,
        call.rtsp_url,
        offer,
        owner=viewer_of(caller.principal, caller.token),
        ice_servers=servers,
        still_allowed=still_allowed,
        scope=scope_of(call.call_id),
        talk=talk,
    )
    sessions.follow(
        answer.session_id,
        follow(
            sessions,
            answer.session_id,
            call,
            caller.member,
            talk,
            db=ctx.db,
            hub=ctx.hub,
            recheck_s=ctx.settings.stream_recheck_s,
        ),
    )
    sessions.follow(
        answer.session_id,
        follow_access(streams, caller.principal, sessions, answer.session_id),
    )
    return answered(request, answer, servers)


@router.delete(
    "/{call_id}/whep/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def call_whep_end(
    call_id: RowId,
    session_id: SessionIdPath,
    principal: CurrentPrincipal,
    ctx: CtxDep,
    creds: BearerDep,
) -> Response:
    """Leave: only the login that opened the session can end it; anyone else gets a 404."""
    assert creds is not None  # checked by CurrentPrincipal
    owner = viewer_of(principal, creds.credentials)
    if not await live_of(ctx).end(session_id, scope=scope_of(call_id), owner=owner):
        raise NotFound("no such call media session")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
