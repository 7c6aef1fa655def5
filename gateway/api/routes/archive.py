"""Playback for the caller's own cameras: the timeline of a range, the range
as one seekable MP4 (served with byte ranges, so a stock browser plays and
seeks it), exports with progress, and JPEG snapshots. Every URL checks the
owner: another contract's camera or export is a plain 404."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy import select

from gateway.api.deps import (
    BearerDep,
    CtxDep,
    CurrentPrincipal,
    OwnedCamera,
    SessionDep,
    camera_of,
    principal_from_token,
)
from gateway.api.schemas import DeviceIdPath, errors
from gateway.api.signed import SIGNED_TTL_S, sign, verify
from gateway.context import AppContext
from gateway.db.media_models import Clip, Export, MotionSpan, Recording
from gateway.db.models import Contract, Device, Event
from gateway.db.security_models import Case, CaseStatus
from gateway.errors import Forbidden, Invalid, InvalidCredentials, NotFound
from gateway.recording.exports import Exporter, pieces
from recorder.export import ExportError, export
from recorder.snapshot import SnapshotError, snapshot

router = APIRouter(tags=["archive"], responses=errors(401, 404))
MAX_TIMELINE = timedelta(days=2)
MAX_PLAYBACK = timedelta(hours=1)
MAX_EXPORT = timedelta(hours=12)
MP4 = "video/mp4"


def media_contract(request: Request, ctx: CtxDep, session: SessionDep, creds: BearerDep) -> int:
    """A bearer token, or a signed URL (``gateway.api.signed``) for this very resource.
    A URL signed for a dispatcher names its case (``case``, under the signature) and works
    only while that case is open: closing it revokes the URL at once (403), whatever its
    expiry says."""
    if creds is not None:
        return principal_from_token(ctx, session, creds.credentials).contract_id
    contract_id = verify(ctx.secrets.secret_key, request)
    contract = session.get(Contract, contract_id) if contract_id is not None else None
    if contract is None or not contract.active:
        raise InvalidCredentials("bearer token or a valid signed URL required")
    case_id = request.query_params.get("case")
    if case_id is not None:  # signed together with cid: a number of that contract's case
        case = session.get(Case, int(case_id))
        if case is None or case.contract_id != contract.id:
            raise InvalidCredentials("bearer token or a valid signed URL required")
        if case.status == CaseStatus.CLOSED:
            raise Forbidden(f"case {case.id} is closed: its footage is no longer shared")
    return contract.id


MediaContract = Annotated[int, Depends(media_contract)]


def media_camera(
    device_id: DeviceIdPath, contract_id: MediaContract, session: SessionDep, ctx: CtxDep
) -> Device:
    """:data:`~gateway.api.deps.OwnedCamera`'s check, for a bearer token or a signed URL."""
    return camera_of(ctx, session, contract_id, device_id)


MediaCamera = Annotated[Device, Depends(media_camera)]


def _range(start: datetime, end: datetime, longest: timedelta) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("start and end need a time zone (e.g. 2026-11-25T10:00:00Z)")
    if end <= start:
        raise Invalid("end must be after start")
    if end - start > longest:
        raise Invalid(f"a range of at most {longest} here")


class Span(BaseModel):
    start: datetime
    end: datetime


class ClipOut(Span):
    kind: str
    held: bool


class StatusChange(BaseModel):
    at: datetime
    state: str


class TimelineOut(BaseModel):
    recorded: list[Span]
    motion: list[Span]
    clips: list[ClipOut]
    availability: list[StatusChange]


def _merge(spans: list[Span], gap: float = 1.5) -> list[Span]:
    """Back-to-back segments are one recorded span; a gap shows where the camera was away."""
    merged: list[Span] = []
    for span in spans:
        if merged and (span.start - merged[-1].end).total_seconds() <= gap:
            merged[-1] = Span(start=merged[-1].start, end=max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return merged


@router.get("/cameras/{device_id}/timeline", response_model=TimelineOut, responses=errors(422))
def timeline(
    camera: OwnedCamera, session: SessionDep, start: datetime, end: datetime
) -> TimelineOut:
    """Recorded spans (gaps where the camera was away), motion, event clips and
    the camera's online/offline changes in ``[start, end)``."""
    _range(start, end, MAX_TIMELINE)
    recorded = session.execute(
        select(Recording.start, Recording.end)
        .where(Recording.device_id == camera.id, Recording.end > start, Recording.start < end)
        .order_by(Recording.start)
    )
    motion = session.execute(
        select(MotionSpan.start, MotionSpan.end)
        .where(MotionSpan.device_id == camera.id, MotionSpan.end > start, MotionSpan.start < end)
        .order_by(MotionSpan.start)
    )
    clips = session.execute(
        select(Clip.kind, Clip.start, Clip.end, Case.status)
        .outerjoin(Case, Case.id == Clip.case_id)
        .where(Clip.device_id == camera.id, Clip.end > start, Clip.start < end)
        .order_by(Clip.start)
    )
    changes = session.execute(
        select(Event.received_at, Event.body)
        .where(
            Event.device_id == camera.id,
            Event.event == "availability",
            Event.received_at >= start,
            Event.received_at < end,
        )
        .order_by(Event.id)
    )
    return TimelineOut(
        recorded=_merge([Span(start=s, end=e) for s, e in recorded]),
        motion=[Span(start=s, end=e) for s, e in motion],
        clips=[
            ClipOut(kind=k, start=s, end=e, held=st is not None and st != CaseStatus.CLOSED)
            for k, s, e, st in clips
        ],
        availability=[StatusChange(at=at, state=str(body.get("state"))) for at, body in changes],
    )


def _archive(ctx: AppContext) -> Path:
    return ctx.settings.archive_path().resolve()


@router.get(
    "/cameras/{device_id}/recording.mp4",
    response_class=FileResponse,
    responses={**errors(422), 200: {"content": {MP4: {}}}, 206: {"content": {MP4: {}}}},
)
def recording(
    camera: MediaCamera, session: SessionDep, ctx: CtxDep, start: datetime, end: datetime
) -> FileResponse:
    """Up to an hour of the archive as one MP4 (moov first, no re-encode),
    with ``Range`` support so a ``<video>`` element seeks in it. A bearer
    token, or the signed URL ``GET …/playback`` gives (for ``<video src>``)."""
    _range(start, end, MAX_PLAYBACK)
    cache = ctx.settings.var_dir.resolve() / "playback"
    cache.mkdir(parents=True, exist_ok=True)
    found = pieces(session, _archive(ctx), camera.id, start, end)
    if not found:
        raise NotFound("no recording in that range")
    key = f"{camera.id}-{int(start.timestamp() * 1000)}-{int(end.timestamp() * 1000)}"
    out = cache / f"{key}-{len(found)}.mp4"
    if not out.exists():
        try:
            export(found, start, end, out)
        except ExportError as exc:
            raise NotFound(f"cannot play that range: {exc}") from exc
    return FileResponse(out, media_type=MP4)


class PlaybackOut(BaseModel):
    recording: str
    snapshot: str
    expires_in: int


def signed_playback(
    ctx: AppContext,
    camera: str,
    start: datetime,
    end: datetime,
    *,
    contract_id: int,
    case_id: int | None = None,
) -> PlaybackOut:
    """Signed URLs of a range's MP4 and of a snapshot at its start; with ``case_id``,
    valid only while that case is open (a dispatcher's, see :func:`media_contract`)."""
    key = ctx.secrets.secret_key
    base = f"/api/v1/cameras/{camera}"
    extra = {} if case_id is None else {"case": str(case_id)}
    times = {"start": start.isoformat(), "end": end.isoformat(), **extra}
    return PlaybackOut(
        recording=sign(key, f"{base}/recording.mp4", times, contract_id),
        snapshot=sign(key, f"{base}/snapshot.jpg", {"at": start.isoformat(), **extra}, contract_id),
        expires_in=SIGNED_TTL_S,
    )


@router.get("/cameras/{device_id}/playback", response_model=PlaybackOut, responses=errors(422))
def playback(
    camera: OwnedCamera, principal: CurrentPrincipal, ctx: CtxDep, start: datetime, end: datetime
) -> PlaybackOut:
    """Signed URLs for ``<video src>`` and ``<img src>`` (which cannot send a
    bearer token): the range's MP4 and a snapshot at its start."""
    _range(start, end, MAX_PLAYBACK)
    return signed_playback(ctx, camera.uid, start, end, contract_id=principal.contract_id)


class ExportRequest(BaseModel):
    start: datetime
    end: datetime


class ExportOut(BaseModel):
    id: str
    status: str
    progress: float
    error: str | None
    file: str | None


def _export_out(row: Export) -> ExportOut:
    done = row.status == "done"
    return ExportOut(
        id=row.id,
        status=row.status,
        progress=row.progress,
        error=row.error,
        file=f"/api/v1/exports/{row.id}/file" if done else None,
    )


@router.post(
    "/cameras/{device_id}/exports",
    response_model=ExportOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(422),
)
def start_export(body: ExportRequest, camera: OwnedCamera, ctx: CtxDep) -> ExportOut:
    """Export up to 12 hours into one seekable MP4; poll ``GET /exports/{id}``."""
    _range(body.start, body.end, MAX_EXPORT)
    exporter = Exporter(ctx.db, _archive(ctx), ctx.settings.var_dir.resolve() / "exports")
    job = exporter.start(camera, body.start, body.end)
    return ExportOut(id=job, status="running", progress=0.0, error=None, file=None)


def _owned_export(job: str, contract_id: MediaContract, session: SessionDep) -> Export:
    row = session.get(Export, job)
    if row is None or row.contract_id != contract_id:
        raise NotFound(f"no export {job}")
    return row


@router.get("/exports/{job}", response_model=ExportOut)
def get_export(
    row: Annotated[Export, Depends(_owned_export)], principal: CurrentPrincipal, ctx: CtxDep
) -> ExportOut:
    """Progress; once done, ``file`` is a signed URL of the MP4 (10 minutes)."""
    out = _export_out(row)
    if out.file is not None:
        out.file = sign(ctx.secrets.secret_key, out.file, {}, principal.contract_id)
    return out


@router.get(
    "/exports/{job}/file",
    response_class=FileResponse,
    responses={200: {"content": {MP4: {}}}, 206: {"content": {MP4: {}}}},
)
def export_file(row: Annotated[Export, Depends(_owned_export)]) -> FileResponse:
    if row.status != "done" or row.path is None or not Path(row.path).exists():
        raise NotFound(f"export {row.id} is not ready")
    return FileResponse(row.path, media_type=MP4, filename=f"moydom-{row.id[:8]}.mp4")


@router.get(
    "/cameras/{device_id}/snapshot.jpg",
    response_class=Response,
    responses={**errors(422), 200: {"content": {"image/jpeg": {}}}},
)
def camera_snapshot(
    camera: MediaCamera,
    session: SessionDep,
    ctx: CtxDep,
    at: Annotated[datetime | None, Query(description="default: the latest recorded frame")] = None,
) -> Response:
    if at is not None and at.tzinfo is None:
        raise Invalid("at needs a time zone")
    query = select(Recording).where(Recording.device_id == camera.id)
    if at is not None:
        query = query.where(Recording.start <= at, Recording.end >= at)
    row = session.scalars(query.order_by(Recording.start.desc()).limit(1)).first()
    if row is None:
        raise NotFound("no recording at that time")
    try:
        jpeg = snapshot(_archive(ctx) / row.path, row.start, at)
    except SnapshotError as exc:
        raise NotFound(f"no frame at that time: {exc}") from exc
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})
