"""Domain errors: one class per meaning. The core raises these and knows nothing
of HTTP; the API maps each to one status, in one table (``gateway.api.errors``)."""

from __future__ import annotations


class MoydomError(Exception):
    """Base of every error the core reports to a caller (a plain bad request)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(MoydomError):
    """No such object, or not the caller's: the two look the same on purpose."""


class Conflict(MoydomError):
    """The object's state does not allow it (already closed, taken, …)."""


class InvalidCredentials(MoydomError):
    """No credentials, or wrong, expired or of a suspended account."""


class Forbidden(MoydomError):
    """Known caller, not allowed to do this."""


class Throttled(MoydomError):
    """Too many attempts; try again after ``retry_after`` seconds."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(MoydomError):
    """A part the request needs (the broker, a camera, live view) does not answer now."""


class BrokerUnavailable(Unavailable):
    """The broker did not apply an account change; nothing was changed here either."""


class Invalid(MoydomError):
    """Well-formed but not acceptable (a 422 decided by the core, not by the schema)."""


class TooLarge(MoydomError):
    """A body or value over its limit."""


class UnsupportedMediaType(MoydomError):
    """A body of a type the operation does not take."""
