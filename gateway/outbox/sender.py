"""Sending what the outbox holds, after the deciding transaction committed.

One asyncio task per channel, so a slow SMTP server never delays an alarm to
the central station. A row is *claimed* by pushing its ``next_attempt_at``
a lease ahead (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), then sent, then
marked sent: a crash between sending and marking sends it again after the
lease — at least once, with the row's key as the e-mail Message-ID and the
SMS idempotency key so the far side can tell. Alarms to the central station
are retried forever; e-mail and SMS give up after ``max_attempts`` or at a
permanent refusal, and say so in ``last_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select

from gateway.db.engine import Database
from gateway.db.models import utcnow
from gateway.db.security_models import Outbox
from gateway.outbox.enqueue import Channel

log = logging.getLogger(__name__)

SENT = Counter("moydom_outbox_sent_total", "Outbox rows delivered", ["channel"])
FAILED = Counter("moydom_outbox_attempts_failed_total", "Failed delivery attempts", ["channel"])
GAVE_UP = Counter("moydom_outbox_given_up_total", "Outbox rows abandoned", ["channel"])
LEASE = timedelta(seconds=60)


class SendError(Exception):
    """A failed attempt; ``permanent`` ones are not retried."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


Transport = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Sends one row: (key, payload); raises ``SendError`` (or anything) on failure."""


@dataclass(frozen=True)
class ChannelPolicy:
    transport: Transport
    max_attempts: int | None
    """None: never give up (alarms)."""
    max_backoff_s: float = 60.0


@dataclass(frozen=True)
class Claimed:
    id: int
    key: str
    payload: dict[str, Any]
    attempts: int


def claim(db: Database, channel: Channel, now: datetime, limit: int = 20) -> list[Claimed]:
    with db.transaction() as session:
        query = (
            select(Outbox)
            .where(
                Outbox.channel == channel.value,
                Outbox.sent_at.is_(None),
                Outbox.failed_at.is_(None),
                Outbox.next_attempt_at <= now,
            )
            .order_by(Outbox.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(session.scalars(query))
        for row in rows:
            row.next_attempt_at = now + LEASE
            row.attempts += 1
        return [Claimed(r.id, r.key, r.payload, r.attempts) for r in rows]


def settle(
    db: Database,
    channel: Channel,
    row: Claimed,
    policy: ChannelPolicy,
    *,
    error: BaseException | None,
    now: datetime,
) -> None:
    with db.transaction() as session:
        stored = session.get_one(Outbox, row.id)
        if error is None:
            stored.sent_at = now
            stored.last_error = None
            return
        stored.last_error = f"{type(error).__name__}: {error}"[:1000]
        permanent = isinstance(error, SendError) and error.permanent
        if permanent or (policy.max_attempts is not None and row.attempts >= policy.max_attempts):
            stored.failed_at = now
            GAVE_UP.labels(channel.value).inc()
            log.error("outbox %s %s: given up: %s", channel.value, row.key, stored.last_error)
            return
        backoff = min(policy.max_backoff_s, 0.5 * 2 ** min(row.attempts, 10))
        stored.next_attempt_at = now + timedelta(seconds=backoff)


class OutboxSender:
    """Runs one task per channel until ``stop``; ``wake`` cuts the poll short."""

    def __init__(self, db: Database, policies: dict[Channel, ChannelPolicy], poll_s: float) -> None:
        self.db = db
        self.policies = policies
        self.poll_s = poll_s
        self._wake: dict[Channel, asyncio.Event] = {}

    def wake(self) -> None:
        """Call in the event loop's thread."""
        for event in self._wake.values():
            event.set()

    async def run(self) -> None:
        await asyncio.gather(*(self._channel(c, p) for c, p in self.policies.items()))

    async def _channel(self, channel: Channel, policy: ChannelPolicy) -> None:
        wake = self._wake.setdefault(channel, asyncio.Event())
        while True:
            wake.clear()
            try:
                rows = await asyncio.to_thread(claim, self.db, channel, utcnow())
            except Exception:
                log.exception("outbox %s: cannot read the outbox", channel.value)
                rows = []
            for row in rows:
                await self._send_one(channel, policy, row)
            if len(rows) < 20:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.poll_s)

    async def _send_one(self, channel: Channel, policy: ChannelPolicy, row: Claimed) -> None:
        error: BaseException | None = None
        try:
            await policy.transport(row.key, row.payload)
            SENT.labels(channel.value).inc()
        except Exception as exc:
            error = exc
            FAILED.labels(channel.value).inc()
            log.warning(
                "outbox %s %s: attempt %d failed: %s", channel.value, row.key, row.attempts, exc
            )
        try:
            await asyncio.to_thread(
                partial(settle, self.db, channel, row, policy, error=error, now=utcnow())
            )
        except Exception:
            # The lease runs out and the row is tried again: at least once.
            log.exception("outbox %s %s: cannot record the outcome", channel.value, row.key)
