"""SMS notifications through a provider's HTTP API, behind one small interface.

``SmsSender`` is all the outbox knows; ``HttpSmsSender`` speaks moydom's own
provider contract (docs/central-station.md), which a thin adapter in front of
a real SMS gateway offers. ``key`` is the outbox key: it travels as the
``Idempotency-Key`` header and the message ``id``, so a provider that has seen
it already does not send a second SMS when the outbox retries after a lost
answer.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from gateway.notify.errors import NotificationError

_DETAIL_CHARS = 200


class SmsSender(Protocol):
    """Send one SMS, or raise ``NotificationError``; ``key`` makes repeats harmless."""

    async def send(self, to: str, text: str, key: str) -> None: ...


class HttpSmsSender:
    """``SmsSender`` over HTTP: ``POST url`` with JSON ``{"to", "text", "id"}``.

    Answers: 2xx sent. 429 and 408 (slow down, try again), 401 and 403 (our
    API key: the provider refuses us, not this message) and 5xx are
    temporary; any other 4xx means this message can never be sent
    (a bad number, a refused text) and is permanent. Network errors and
    timeouts are temporary.
    """

    def __init__(self, url: str, api_key: str | None, *, timeout_s: float = 10.0) -> None:
        """Without ``api_key`` no ``Authorization`` header is sent at all."""
        self._url = url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout_s, headers=headers)

    async def send(self, to: str, text: str, key: str) -> None:
        """Ask the provider to send ``text`` to ``to``."""
        try:
            response = await self._client.post(
                self._url,
                json={"to": to, "text": text, "id": key},
                headers={"Idempotency-Key": key},
            )
        except httpx.HTTPError as exc:
            reason = f"sms provider unreachable: {str(exc) or type(exc).__name__}"
            raise NotificationError(reason, permanent=False) from exc
        status = response.status_code
        if response.is_success:
            return
        detail = response.text[:_DETAIL_CHARS]
        permanent = 400 <= status < 500 and status not in {401, 403, 408, 429}
        raise NotificationError(f"sms provider answered {status}: {detail}", permanent)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
