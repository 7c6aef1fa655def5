"""Domain errors. The core raises these; the API maps each to one HTTP status,
so no route decides status codes for the same failure twice."""

from __future__ import annotations


class MoydomError(Exception):
    """Base of every error the core reports to a caller."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(MoydomError):
    status_code = 404


class Conflict(MoydomError):
    status_code = 409


class InvalidCredentials(MoydomError):
    status_code = 401


class Forbidden(MoydomError):
    status_code = 403


class Throttled(MoydomError):
    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class BrokerUnavailable(MoydomError):
    """The broker did not apply an account change; nothing was changed here either."""

    status_code = 503


class Invalid(MoydomError):
    """Well-formed but not acceptable (a 422 decided by the core, not by the schema)."""

    status_code = 422
