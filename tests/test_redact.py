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


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/stream?access%5Ftoken=eyJhbGciOi.x.y",
        "/api/v1/stream?%61ccess_token=eyJhbGciOi.x.y",
        "/api/v1/stream?ACCESS_TOKEN=eyJhbGciOi.x.y",
        "/api/v1/exports/ab/file?cid=1&exp=2&si%67=eyJhbGciOi",
        "/api/v1/exports/ab/file?cid=1&exp=2&%73%69%67=eyJhbGciOi",
    ],
)
def test_percent_encoded_names_are_masked_too(caplog: pytest.LogCaptureFixture, url: str) -> None:
    """The server decodes the name before it reads it, so the filter must match it encoded."""
    redact.install("uvicorn.error")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info('"WebSocket %s" [accepted]', url)
    assert "eyJhbGciOi" not in caplog.text
    assert "=***" in caplog.text
