"""Live view over WebRTC, WHEP-style (draft-ietf-wish-whep): ``POST`` an SDP offer to a camera's
endpoint, get ``201`` with the SDP answer and the session's URL in ``Location``; ``DELETE`` that
URL to leave. ``OPTIONS`` on the endpoint tells the client which STUN/TURN servers to use.

Every step is owned: the camera must be the caller's (another contract's is a plain 404), only
the viewer who opened a session can end it, and the session closes by itself when the token
expires, the contract is suspended or the camera is removed (re-checked every
``stream_recheck_s``) — and at once when the viewer's access ends (gateway.api.revocation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from aiortc import RTCIceServer
from fastapi import APIRouter, Depends, Path, Request, Response, status

from gateway.api.deps import (
    BearerDep,
    CtxDep,
    CurrentPrincipal,
    StreamsDep,
    camera_of,
    check_member,
    subscriber_from_token,
)
from gateway.api.revocation import follow_access
from gateway.api.schemas import DeviceIdPath, errors
from gateway.context import AppContext
from gateway.errors import (
    Conflict,
    InvalidCredentials,
    MoydomError,
    NotFound,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)
from gateway.people.permissions import Permission
from gateway.settings import Settings
from gateway.tokens import Principal
from recorder.backchannel import Talk
from recorder.live import CameraUnavailable, CodecNotRelayable
from recorder.live_rtc import Answer, LiveSessions, OfferError

router = APIRouter(prefix="/cameras", tags=["live"], responses=errors(401, 404))

SDP = "application/sdp"
MAX_OFFER_BYTES = 64 * 1024
SessionIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{16,64}$")]


@dataclass(frozen=True)
class LiveCaller:
    """Who asks, with which token, for which of their own cameras."""

    principal: Principal
    token: str
    camera: str
    rtsp_url: str


def check_caller(ctx: AppContext, token: str, device_id: str) -> LiveCaller:
    """The token's subscriber and their own camera, or 401/403/404 (another contract's camera,
    or any device that is not a camera, is a plain 404; a member without the camera's home's
    ``cameras`` permission, 403). A short session of its own: no database connection is held
    while an offer waits for its camera, and the re-check reuses it."""
    with ctx.db.session() as session:
        principal = subscriber_from_token(ctx, session, token)
        check_member(session, principal, Permission.CAMERAS, {"device_id": device_id})
        device = camera_of(ctx, session, principal.contract_id, device_id)
        if not device.rtsp_url:
            raise NotFound(f"no camera {device_id}")
        return LiveCaller(principal, token, device.uid, device.rtsp_url)


def live_caller(device_id: DeviceIdPath, ctx: CtxDep, creds: BearerDep) -> LiveCaller:
    if creds is None:
        raise InvalidCredentials("bearer token required")
    return check_caller(ctx, creds.credentials, device_id)


LiveCallerDep = Annotated[LiveCaller, Depends(live_caller)]


def live_of(ctx: AppContext) -> LiveSessions:
    if ctx.live is None:
        raise Unavailable("live view does not run in this process")
    return ctx.live


def viewer_of(principal: Principal, token: str) -> tuple[int, bytes]:
    """Who owns a session: the contract and the login (token) that opened it."""
    return principal.contract_id, hashlib.sha256(token.encode()).digest()


def ice_servers_for(settings: Settings, who: str) -> list[RTCIceServer]:
    """The configured STUN/TURN servers; TURN without a username gets coturn REST-API
    credentials (``expiry:who``, HMAC-SHA1 of it under the shared secret), ``who`` being the
    contract number (or ``dispatcher:<login>``)."""
    servers = []
    secret = settings.webrtc_turn_secret
    for server in settings.webrtc_ice_servers:
        username = server.username
        credential = server.credential.get_secret_value() if server.credential else None
        is_turn = any(url.startswith("turn") for url in server.urls)
        if username is None and secret is not None and is_turn:
            username = f"{int(time.time()) + settings.webrtc_turn_ttl_s}:{who}"
            mac = hmac.new(secret.get_secret_value().encode(), username.encode(), hashlib.sha1)
            credential = base64.b64encode(mac.digest()).decode()
        servers.append(RTCIceServer(urls=server.urls, username=username, credential=credential))
    return servers


def link_header(servers: list[RTCIceServer]) -> str:
    """WHEP's ``Link: <url>; rel="ice-server"`` form of the servers."""
    links = []
    for server in servers:
        urls = [server.urls] if isinstance(server.urls, str) else server.urls
        for url in urls:
            link = f'<{url}>; rel="ice-server"'
            if server.username is not None:
                link += (
                    f'; username="{server.username}"; credential="{server.credential}"'
                    '; credential-type="password"'
                )
            links.append(link)
    return ", ".join(links)


async def read_offer(request: Request) -> str:
    """The SDP offer of a WHEP ``POST``: 415 unless sent as SDP, 413 past the limit."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != SDP:
        raise UnsupportedMediaType(f"the offer must be sent as {SDP}")
    offer = b""
    async for chunk in request.stream():  # stop reading at the limit, not after the whole body
        offer += chunk
        if len(offer) > MAX_OFFER_BYTES:
            raise TooLarge(f"an offer is at most {MAX_OFFER_BYTES} bytes")
    return offer.decode("utf-8", errors="replace")


def with_links(headers: dict[str, str], servers: list[RTCIceServer]) -> dict[str, str]:
    return {**headers, "Link": link_header(servers)} if servers else headers


async def open_live(
    ctx: AppContext,
    camera: str,
    rtsp_url: str,
    offer: str,
    *,
    owner: object,
    ice_servers: list[RTCIceServer],
    still_allowed: Callable[[], bool],
    scope: str | None = None,
    talk: Talk | None = None,
) -> Answer:
    """Open a live session (camera, call or case), the relay's refusals as API errors:
    400 for an offer without H.264 video, 409 for a codec that cannot pass without
    transcoding, 503 when the camera does not stream. Every WHEP route goes through here."""
    try:
        return await live_of(ctx).open(
            camera,
            rtsp_url,
            offer,
            owner=owner,
            ice_servers=ice_servers,
            still_allowed=still_allowed,
            scope=scope,
            talk=talk,
        )
    except OfferError as exc:
        raise MoydomError(str(exc)) from exc
    except CodecNotRelayable as exc:
        raise Conflict(str(exc)) from exc
    except CameraUnavailable as exc:
        raise Unavailable(str(exc)) from exc


def answered(request: Request, answer: Answer, servers: list[RTCIceServer]) -> Response:
    """WHEP's ``201``: the SDP answer, the session's URL in ``Location``, the ICE servers."""
    location = f"{request.url.path.rstrip('/')}/{answer.session_id}"
    return Response(
        answer.sdp,
        status_code=status.HTTP_201_CREATED,
        media_type=SDP,
        headers=with_links({"Location": location}, servers),
    )


OFFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {SDP: {"schema": {"type": "string"}}},
        "description": "The viewer's SDP offer (recvonly video, optionally audio), "
        "with its ICE candidates (no trickle).",
    }
}
ANSWER: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "The SDP answer; ``Location`` is the session, ``Link`` the ICE servers.",
        "content": {SDP: {"schema": {"type": "string"}}},
    },
    **errors(400, 409, 413, 415, 503),
}


@router.options("/{device_id}/whep", status_code=status.HTTP_204_NO_CONTENT)
def whep_options(caller: LiveCallerDep, ctx: CtxDep) -> Response:
    """The ICE servers (``Link`` headers) a viewer should gather candidates with."""
    headers = with_links(
        {"Accept-Post": SDP}, ice_servers_for(ctx.settings, caller.principal.contract_number)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


@router.post(
    "/{device_id}/whep",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    openapi_extra=OFFER_BODY,
    responses=ANSWER,
)
async def whep_offer(
    request: Request, caller: LiveCallerDep, ctx: CtxDep, streams: StreamsDep
) -> Response:
    """Start watching the camera: 400 for an offer without H.264 video, 409 for a camera whose
    codec cannot pass without transcoding, 503 when the camera does not stream."""
    offer = await read_offer(request)

    def still_allowed() -> bool:
        try:
            check_caller(ctx, caller.token, caller.camera)
        except MoydomError:
            return False
        return True

    servers = ice_servers_for(ctx.settings, caller.principal.contract_number)
    answer = await open_live(
        ctx,
        caller.camera,
        caller.rtsp_url,
        offer,
        owner=viewer_of(caller.principal, caller.token),
        ice_servers=servers,
        still_allowed=still_allowed,
    )
    live_of(ctx).follow(
        answer.session_id,
        follow_access(streams, caller.principal, live_of(ctx), answer.session_id),
    )
    return answered(request, answer, servers)


@router.delete(
    "/{device_id}/whep/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def whep_end(
    device_id: DeviceIdPath,
    session_id: SessionIdPath,
    principal: CurrentPrincipal,
    ctx: CtxDep,
    creds: BearerDep,
) -> Response:
    """Leave: only the viewer who opened the session (the same login) can end it; anyone
    else, even of the same contract, gets a 404."""
    assert creds is not None  # checked by CurrentPrincipal
    owner = viewer_of(principal, creds.credentials)
    if not await live_of(ctx).end(session_id, scope=device_id, owner=owner):
        raise NotFound("no such live session")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
