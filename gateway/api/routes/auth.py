"""Subscriber login: contract number and password for a bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gateway.api.deps import CtxDep
from gateway.api.schemas import LoginRequest, TokenOut, errors
from gateway.db.models import utcnow
from gateway.login import authenticate
from gateway.tokens import issue

router = APIRouter(prefix="/auth", tags=["auth"], responses=errors(401, 403, 429))


@router.post("/login", response_model=TokenOut)
def login(body: LoginRequest, request: Request, ctx: CtxDep) -> TokenOut:
    """401 on a wrong number or password, 403 if suspended, 429 with Retry-After when throttled."""
    now = utcnow()
    address = request.client.host if request.client else "unknown"
    principal = authenticate(
        ctx.db,
        ctx.throttle,
        number=body.contract,
        password=body.password,
        address=address,
        now=now,
    )
    ttl = ctx.settings.access_token_ttl_s
    return TokenOut(access_token=issue(principal, ctx.secrets.secret_key, ttl, now), expires_in=ttl)
