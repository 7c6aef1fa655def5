"""What the network thread received and the writer has not taken yet."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from gateway.ingest.classify import Received
from gateway.ingest.ledger import ProbeAnswered


class Inbox:
    """What the network thread received and the writer has not taken yet.

    Bounded by message count: the network thread puts the messages of one
    read at once, after waiting while ``maxsize`` or more are waiting (so it
    holds at most one read more). Probe answers are never held back.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[Received | ProbeAnswered] = deque()
        self._cond = threading.Condition()

    def put_many(
        self, items: list[Received], stop: threading.Event, idle: Callable[[], None]
    ) -> bool:
        """Wait for room, then queue ``items``; ``idle`` runs every second of
        waiting. False (nothing queued) if ``stop`` is set meanwhile."""
        with self._cond:
            while len(self._items) >= self.maxsize:
                if stop.is_set():
                    return False
                if not self._cond.wait(1.0):
                    idle()
            self._items.extend(items)
            self._cond.notify_all()
        return True

    def put(self, item: ProbeAnswered) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def take(self, most: int, first_wait: float, linger: float) -> list[Received | ProbeAnswered]:
        """Whatever arrives within ``linger`` after the first item (waited for up
        to ``first_wait``), at most ``most``."""
        items = self._items
        with self._cond:
            if not items and not self._cond.wait(first_wait) and not items:
                return []
            deadline = time.monotonic() + linger
            batch: list[Received | ProbeAnswered] = []
            while True:
                take = min(len(items), most - len(batch))
                batch.extend(items.popleft() for _ in range(take))
                if len(batch) >= most:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._cond.notify_all()  # room for the network thread
        return batch
