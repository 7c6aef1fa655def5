"""Passwords: change (old and new) for the owner or a member, and «Забыли
пароль?» — a 6-digit code by SMS or e-mail, then a new password."""

from __future__ import annotations

from fastapi import APIRouter, status

from gateway.api.deps import AddressDep, CtxDep, CurrentPrincipal, StreamsDep
from gateway.api.people_schemas import PasswordChange, ResetAccepted, ResetConfirm, ResetRequest
from gateway.api.revocation import login_key
from gateway.api.schemas import TokenOut, errors
from gateway.context import AppContext
from gateway.db.models import utcnow
from gateway.people import access
from gateway.tokens import Principal, issue

router = APIRouter(tags=["auth"], responses=errors(422, 429))

SENT = "if the login exists and has a phone or e-mail, a code was sent to it"


def _token(ctx: AppContext, principal: Principal) -> TokenOut:
    ttl = ctx.settings.access_token_ttl_s
    token = issue(principal, ctx.secrets.secret_key, ttl, utcnow())
    return TokenOut(access_token=token, expires_in=ttl)


@router.post("/me/password", response_model=TokenOut, responses=errors(401, 403))
def change_password(
    body: PasswordChange,
    principal: CurrentPrincipal,
    ctx: CtxDep,
    address: AddressDep,
    streams: StreamsDep,
) -> TokenOut:
    """Change the caller's own password. Every other session of this login
    ends; the answer is a new token for this one. 403 on a wrong current
    password (counted like a wrong login)."""
    renewed = access.change_password(
        ctx.db,
        ctx.throttle,
        principal,
        old=body.old_password,
        new=body.new_password,
        address=address,
        now=utcnow(),
    )
    streams.end(login_key(renewed))
    return _token(ctx, renewed)


@router.post(
    "/auth/password-reset", status_code=status.HTTP_202_ACCEPTED, response_model=ResetAccepted
)
def reset_request(body: ResetRequest, ctx: CtxDep, address: AddressDep) -> ResetAccepted:
    """Send a reset code (valid 10 minutes, 5 tries) to the login's SMS or
    e-mail channel. The same answer whether the login exists or not."""
    s = ctx.settings
    policy = access.ResetPolicy(
        sms=bool(s.sms_url),
        email=bool(s.smtp_host),
        window_s=s.login_window_s,
        per_login=s.reset_max_requests_per_login,
        per_address=s.reset_max_requests_per_address,
    )
    access.request_reset(
        ctx.db, policy, login=body.login, prefer=body.channel, address=address, now=utcnow()
    )
    return ResetAccepted(detail=SENT)


@router.post("/auth/password-reset/confirm", response_model=TokenOut, responses=errors(401))
def reset_confirm(
    body: ResetConfirm, ctx: CtxDep, address: AddressDep, streams: StreamsDep
) -> TokenOut:
    """Set a new password with the code; every session of the login ends, and
    the answer is a token for a new one. 401 on a wrong, used or expired code."""
    principal = access.confirm_reset(
        ctx.db,
        ctx.throttle,
        login=body.login,
        code=body.code,
        new_password=body.new_password,
        address=address,
        now=utcnow(),
    )
    streams.end(login_key(principal))
    return _token(ctx, principal)
