"""The one map from the core's errors to HTTP, and the handler that answers
with it: ``{"detail": …}`` with the status of the error's nearest class here."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from gateway.errors import (
    Conflict,
    Forbidden,
    Invalid,
    InvalidCredentials,
    MoydomError,
    NotFound,
    Throttled,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)

STATUS: dict[type[MoydomError], int] = {
    MoydomError: 400,
    InvalidCredentials: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    Invalid: 422,
    Throttled: 429,
    Unavailable: 503,
}


def status_of(exc: MoydomError) -> int:
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MoydomError)
    headers = None
    if isinstance(exc, Throttled):
        headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, InvalidCredentials):
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse({"detail": exc.detail}, status_code=status_of(exc), headers=headers)
