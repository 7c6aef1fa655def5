"""Keep credentials out of the logs.

Browsers pass tokens in URLs where they cannot send headers (the WebSocket
streams' ``access_token``, signed media URLs' ``sig``), and uvicorn logs the
URL of every WebSocket it accepts. This filter masks them in any record of
the loggers it is installed on.
"""

from __future__ import annotations

import logging
import re

_SECRET = re.compile(r"((?:access_token|sig)=)[^&\s\"']+")


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
