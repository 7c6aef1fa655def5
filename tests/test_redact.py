"""Tokens in URLs never reach the log."""

from __future__ import annotations

import logging

import pytest

from gateway import redact


def test_tokens_and_signatures_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    redact.install("uvicorn.error")
    log = logging.getLogger("uvicorn.error")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        log.info(
            '%s - "WebSocket %s" [accepted]',
            "127.0.0.1:5000",
            "/api/v1/dispatch/stream?access_token=eyJhbGciOi.x.y&x=1",
        )
        log.info("GET /api/v1/exports/ab/file?cid=1&exp=2&sig=0123abcd")
    assert "eyJhbGciOi" not in caplog.text and "0123abcd" not in caplog.text
    assert "access_token=***&x=1" in caplog.text and "sig=***" in caplog.text
