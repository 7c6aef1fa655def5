"""A dispatcher's view of an open case's home: its held clips and its cameras live (WHEP), for
as long as the case is open (``gateway.case_media``). Closing the case revokes it:
the clips' signed URLs answer 403 from then on (they name the case, checked on every request),
and its live sessions end within a second (:func:`~gateway.case_media.follow_case`).
Each look is written to the audit trail."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Annotated

from aiortc import RTCIceServer
from fastapi import APIRouter, Depends, Request, Response, status

from gateway import audit
from gateway.api.deps import (
    AddressDep,
    BearerDep,
    CtxDep,
    CurrentDispatcher,
    RowId,
    dispatcher_from_token,
)
from gateway.api.dispatch_schemas import CaseCameraOut, CaseClipOut
from gateway.api.routes.archive import signed_playback
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
    with_links,
)
from gateway.api.schemas import DeviceIdPath, errors
from gateway.case_media import (
    CaseHome,
    case_camera,
    case_cameras,
    case_clips,
    follow_case,
    open_case,
)
from gateway.context import AppContext
from gateway.db.models import utcnow
from gateway.errors import InvalidCredentials, MoydomError, NotFound

router = APIRouter(prefix="/cases/{case_id}", responses=errors(401, 403, 404, 422))


def scope_of(case_id: int) -> str:
    return f"case:{case_id}"


def _actor(login: str, address: str) -> audit.Actor:
    return audit.Actor("dispatcher", f"dispatcher:{login}", address)


@router.get("/clips", response_model=list[CaseClipOut])
def list_case_clips(
    case_id: RowId, dispatcher: CurrentDispatcher, ctx: CtxDep, address: AddressDep
) -> list[CaseClipOut]:
    """The footage the case holds, each clip with signed URLs for ``<video>``/``<img>`` that
    stop working when the case closes (or after ``expires_in`` seconds, whichever is first)."""
    with ctx.db.transaction() as session:
        case = open_case(session, case_id)
        clips = case_clips(session, case)
        audit.record(
            session,
            _actor(dispatcher.login, address),
            "case_clips_viewed",
            at=utcnow(),
            contract_id=case.contract_id,
            home=case.home,
            detail={"case": case_id, "clips": len(clips)},
        )
    out = []
    for clip, camera in clips:
        urls = signed_playback(
            ctx, camera.uid, clip.start, clip.end, contract_id=case.contract_id, case_id=case_id
        )
        out.append(
            CaseClipOut(
                camera=camera.uid,
                camera_name=camera.name,
                kind=clip.kind,
                start=clip.start,
                end=clip.end,
                **urls.model_dump(),
            )
        )
    return out


@router.get("/cameras", response_model=list[CaseCameraOut])
def list_case_cameras(
    case_id: RowId, _dispatcher: CurrentDispatcher, ctx: CtxDep
) -> list[CaseCameraOut]:
    """The cameras of the case's home, to watch live while the case is open."""
    with ctx.db.session() as session:
        cameras = case_cameras(session, open_case(session, case_id))
        return [CaseCameraOut(id=c.uid, name=c.name) for c in cameras if c.rtsp_url]


@dataclass(frozen=True)
class CaseViewer:
    """A dispatcher, with the token they asked with, watching a camera of an open case."""

    login: str
    token: str
    case: CaseHome
    camera: str
    rtsp_url: str


def owner_of(token: str) -> tuple[str, bytes]:
    """Who owns a dispatcher's live session: the login (token) that opened it."""
    return "dispatcher", hashlib.sha256(token.encode()).digest()


def check_case_viewer(ctx: AppContext, token: str, case_id: int, device_id: str) -> CaseViewer:
    """401 for a token that is no active dispatcher's, 403 for a closed case, 404 for no such
    case or a camera of another home. Re-run by the live session's periodic re-check."""
    with ctx.db.session() as session:
        dispatcher = dispatcher_from_token(ctx, session, token)
        case = open_case(session, case_id)
        camera = case_camera(session, case, device_id)
        assert camera.rtsp_url is not None  # case_camera returns streaming cameras only
        return CaseViewer(dispatcher.login, token, case, camera.uid, camera.rtsp_url)


def dispatcher_token(ctx: CtxDep, creds: BearerDep) -> str:
    """An active dispatcher's token, checked before the path (a subscriber gets 401, not 422),
    in a short session of its own: none is held while an offer waits for its camera."""
    if creds is None:
        raise InvalidCredentials("bearer token required")
    with ctx.db.session() as session:
        dispatcher_from_token(ctx, session, creds.credentials)
    return creds.credentials


def case_viewer(
    token: Annotated[str, Depends(dispatcher_token)],
    case_id: RowId,
    device_id: DeviceIdPath,
    ctx: CtxDep,
) -> CaseViewer:
    return check_case_viewer(ctx, token, case_id, device_id)


CaseViewerDep = Annotated[CaseViewer, Depends(case_viewer)]


def _ice(ctx: AppContext, viewer: CaseViewer) -> list[RTCIceServer]:
    return ice_servers_for(ctx.settings, f"dispatcher:{viewer.login}")


@router.options("/cameras/{device_id}/whep", status_code=status.HTTP_204_NO_CONTENT)
def case_whep_options(viewer: CaseViewerDep, ctx: CtxDep) -> Response:
    """The ICE servers (``Link`` headers) to gather candidates with."""
    headers = with_links({"Accept-Post": SDP}, _ice(ctx, viewer))
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


def _record_live(ctx: AppContext, viewer: CaseViewer, address: str, session_id: str) -> None:
    with ctx.db.transaction() as session:
        audit.record(
            session,
            _actor(viewer.login, address),
            "case_live_opened",
            at=utcnow(),
            contract_id=viewer.case.contract_id,
            home=viewer.case.home,
            device=viewer.camera,
            detail={"case": viewer.case.case_id, "session": session_id[:8]},
        )


@router.post(
    "/cameras/{device_id}/whep",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    openapi_extra=OFFER_BODY,
    responses=ANSWER,
)
async def case_whep_offer(
    request: Request, viewer: CaseViewerDep, ctx: CtxDep, address: AddressDep
) -> Response:
    """Watch a camera of the case's home live; the session ends when the case closes."""
    offer = await read_offer(request)
    case_id = viewer.case.case_id

    def still_allowed() -> bool:
        try:
            check_case_viewer(ctx, viewer.token, case_id, viewer.camera)
        except MoydomError:
            return False
        return True

    servers = _ice(ctx, viewer)
    answer = await open_live(
        ctx,
        viewer.camera,
        viewer.rtsp_url,
        offer,
        owner=owner_of(viewer.token),
        ice_servers=servers,
        still_allowed=still_allowed,
        scope=scope_of(case_id),
    )
    sessions = live_of(ctx)
    sessions.follow(
        answer.session_id,
        follow_case(
            sessions,
            answer.session_id,
            case_id,
            db=ctx.db,
            hub=ctx.hub,
            recheck_s=ctx.settings.stream_recheck_s,
        ),
    )
    await asyncio.to_thread(_record_live, ctx, viewer, address, answer.session_id)
    return answered(request, answer, servers)


@router.delete(
    "/cameras/{device_id}/whep/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def case_whep_end(
    case_id: RowId,
    device_id: DeviceIdPath,
    session_id: SessionIdPath,
    _dispatcher: CurrentDispatcher,
    ctx: CtxDep,
    creds: BearerDep,
) -> Response:
    """Leave: only the login that opened the session can end it; anyone else gets a 404."""
    assert creds is not None  # checked by CurrentDispatcher
    ending = live_of(ctx).end(
        session_id, scope=scope_of(case_id), owner=owner_of(creds.credentials)
    )
    if not await ending:
        raise NotFound("no such live session")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
