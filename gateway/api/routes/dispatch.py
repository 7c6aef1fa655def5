"""The dispatch console's API: dispatchers see every open case live,
acknowledge it (which stops its re-sending), record the team sent, add notes,
and close it with a resolution. Subscribers' tokens get nothing here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, WebSocket
from sqlalchemy import select

from gateway.api.deps import CtxDep, CurrentDispatcher, RowId, SessionDep, dispatcher_from_token
from gateway.api.pagination import Cursor, keyset, page
from gateway.api.routes import dispatch_media
from gateway.api.schemas import TokenOut, errors
from gateway.api.security_schemas import (
    CaseOut,
    CasePage,
    CloseBody,
    DispatcherLogin,
    NoteBody,
    TeamBody,
)
from gateway.api.shown import case_out, case_out_of
from gateway.api.streaming import WS_UNAUTHORIZED, Position, Replay, accept_stream, pump
from gateway.context import AppContext
from gateway.db.models import utcnow
from gateway.db.security_models import Case, CaseEntry, CaseStatus, Dispatcher
from gateway.errors import Conflict, InvalidCredentials, MoydomError, NotFound
from gateway.live import (
    DISPATCH,
    Live,
    LiveCase,
    cases_after,
    newest_case_entry,
    open_cases,
)
from gateway.login import guard, record_failure
from gateway.notices import Notice
from gateway.passwords import burn_verify, verify_password
from gateway.tokens import DISPATCHER, Principal, issue

router = APIRouter(prefix="/dispatch", tags=["dispatch"], responses=errors(401))
router.include_router(dispatch_media.router)  # the media of open cases

Filter = Literal["active", "open", "acknowledged", "dispatched", "closed", "all"]


@router.post("/login", response_model=TokenOut, responses=errors(429))
def login(body: DispatcherLogin, request: Request, ctx: CtxDep) -> TokenOut:
    """A dispatcher's token; throttled like subscriber logins."""
    now = utcnow()
    key = f"dispatcher:{body.login}"
    address = request.client.host if request.client else "unknown"
    guard(ctx.db, ctx.throttle, key=key, address=address, now=now)
    with ctx.db.session() as session:
        account = session.scalars(select(Dispatcher).where(Dispatcher.login == body.login)).first()
    if account is None:
        burn_verify(body.password)
    if account is None or not verify_password(account.password_hash, body.password):
        record_failure(ctx.db, key, address, "bad_password", now)
        raise InvalidCredentials("wrong login or password")
    if not account.active:
        record_failure(ctx.db, key, address, "suspended", now)
        raise InvalidCredentials("account disabled")
    ttl = ctx.settings.access_token_ttl_s
    principal = Principal(account.id, key, DISPATCHER)
    return TokenOut(access_token=issue(principal, ctx.secrets.secret_key, ttl, now), expires_in=ttl)


@router.get("/cases", response_model=CasePage, responses=errors(422))
def list_cases(
    *,
    _dispatcher: CurrentDispatcher,
    session: SessionDep,
    state: Filter = "active",
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CasePage:
    """Cases newest first; ``active`` (the default) is every case not closed."""
    query = keyset(select(Case), Case.id, cursor, limit)
    if state == "active":
        query = query.where(Case.status != CaseStatus.CLOSED)
    elif state != "all":
        query = query.where(Case.status == state)
    cases, next_cursor = page(list(session.scalars(query)), limit, lambda case: case.id)
    return CasePage(items=[case_out(session, c) for c in cases], next_cursor=next_cursor)


@router.get("/cases/{case_id}", response_model=CaseOut, responses=errors(404))
def get_case(case_id: RowId, _dispatcher: CurrentDispatcher, session: SessionDep) -> CaseOut:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case_out(session, case)


def _change(
    ctx: AppContext, case_id: RowId, dispatcher: Dispatcher, change: Callable[[Case], str]
) -> CaseOut:
    """Apply ``change`` (which returns the timeline text) under the case's lock."""
    now = utcnow()
    with ctx.db.transaction() as session:
        query = select(Case).where(Case.id == case_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        case = session.scalars(query).first()
        if case is None:
            raise NotFound(f"no case {case_id}")
        if case.status == CaseStatus.CLOSED:
            raise Conflict(f"case {case_id} is closed")
        text = change(case)
        kind = text.split(":", 1)[0]
        session.add(
            CaseEntry(case_id=case.id, at=now, kind=kind, text=text, author=dispatcher.name)
        )
        session.flush()
        out = case_out(session, case)
    if ctx.hub is not None:
        ctx.hub.announce(Notice(cases=[case_id]))
    return out


def _acknowledge(case: Case, dispatcher: Dispatcher) -> None:
    if case.acknowledged_at is None:
        case.acknowledged_at = utcnow()
        case.acknowledged_by = dispatcher.id
        case.next_resend_at = None
        case.status = CaseStatus.ACKNOWLEDGED


@router.post("/cases/{case_id}/ack", response_model=CaseOut, responses=errors(404, 409))
def acknowledge(case_id: RowId, dispatcher: CurrentDispatcher, ctx: CtxDep) -> CaseOut:
    """Stops the re-sending; acknowledging twice changes nothing more."""

    def change(case: Case) -> str:
        _acknowledge(case, dispatcher)
        return "acknowledged: by " + dispatcher.name

    return _change(ctx, case_id, dispatcher, change)


@router.post("/cases/{case_id}/team", response_model=CaseOut, responses=errors(404, 409, 422))
def send_team(
    case_id: RowId, body: TeamBody, dispatcher: CurrentDispatcher, ctx: CtxDep
) -> CaseOut:
    def change(case: Case) -> str:
        _acknowledge(case, dispatcher)
        case.status = CaseStatus.DISPATCHED
        return f"team_sent: {body.team}"

    return _change(ctx, case_id, dispatcher, change)


@router.post("/cases/{case_id}/notes", response_model=CaseOut, responses=errors(404, 409, 422))
def add_note(case_id: RowId, body: NoteBody, dispatcher: CurrentDispatcher, ctx: CtxDep) -> CaseOut:
    return _change(ctx, case_id, dispatcher, lambda _case: f"note: {body.text}")


@router.post("/cases/{case_id}/close", response_model=CaseOut, responses=errors(404, 409, 422))
def close(case_id: RowId, body: CloseBody, dispatcher: CurrentDispatcher, ctx: CtxDep) -> CaseOut:
    def change(case: Case) -> str:
        _acknowledge(case, dispatcher)
        case.status = CaseStatus.CLOSED
        case.closed_at = utcnow()
        case.resolution = body.resolution
        return f"closed: {body.resolution}" + (f" — {body.note}" if body.note else "")

    return _change(ctx, case_id, dispatcher, change)


def _dispatcher_ok(ctx: AppContext, token: str | None) -> bool:
    if not token:
        return False
    with ctx.db.session() as session:
        try:
            dispatcher_from_token(ctx, session, token)
        except MoydomError:
            return False
    return True


def _render(item: Live) -> dict[str, Any] | None:
    if isinstance(item, LiveCase):
        return {"type": "case", "case": case_out_of(item.case).model_dump(mode="json")}
    return None


def _replay(ctx: AppContext) -> Replay:
    """Without a cursor, every case not closed; with one, every case changed after it."""

    def replay(after: Position | None) -> tuple[list[Live], Position]:
        with ctx.db.session() as session:
            if after is None:
                return [*open_cases(session)], Position({"case": newest_case_entry(session)})
            return [*cases_after(session, after.ids["case"])], after

    return replay


@router.websocket("/stream")
async def stream(websocket: WebSocket, ctx: CtxDep) -> None:
    """Every case that is not closed, first, then each case as it opens,
    changes or is re-sent: ``{"type": "case", "case": …}``. Close code 4401
    for a missing or invalid dispatcher token (a subscriber's included).

    Resuming: every message has a ``cursor``; reconnect with ``?after=<cursor>``
    to be sent every case changed since (closed ones included) instead of the
    open ones, then ``{"type": "position", "cursor": …}``, then live changes."""
    token = await accept_stream(websocket)
    if ctx.hub is None or not await asyncio.to_thread(_dispatcher_ok, ctx, token):
        await websocket.close(WS_UNAUTHORIZED, "dispatcher token required")
        return
    await pump(
        websocket,
        ctx,
        DISPATCH,
        still_allowed=lambda: _dispatcher_ok(ctx, token),
        render=_render,
        kinds=("case",),
        replay=_replay(ctx),
    )
