"""Keep credentials out of the logs.

The streams take tokens only from headers now, but old clients still put
``access_token`` in URLs, signed media URLs carry a ``sig``, and uvicorn logs
the URL of every WebSocket it accepts. This filter masks them in any record
of the loggers it is installed on. The server percent-decodes a query's names
before it reads them (``access%5Ftoken`` *is* ``access_token``), so the filter
matches each letter of a name in either spelling.
"""

from __future__ import annotations

import logging
import re

SECRET_NAMES = ("access_token", "sig")


def _spelled_any_way(name: str) -> str:
    """A pattern for ``name`` with any of its letters percent-encoded, in any case."""
    return "".join(f"(?:{re.escape(c)}|%{ord(c):02x})" for c in name)


_SECRET = re.compile(
    r"((?:" + "|".join(_spelled_any_way(n) for n in SECRET_NAMES) + r")=)[^&\s\"']+",
    re.IGNORECASE,
)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRET.sub(r"\1***", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install(*names: str) -> None:
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
