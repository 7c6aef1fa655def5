"""The dispatch console's side: ``/api/v1/dispatch/stream``, every message
stamped the moment it arrives (by a reader thread, so a trip's clock does not
include the time the bench takes to look)."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

Message = dict[str, Any]


class CaseWatcher:
    """New cases as the dispatcher sees them: the opening snapshot of every
    case not closed, then one message per case opened or changed."""

    def __init__(self, port: int, token: str) -> None:
        url = f"ws://127.0.0.1:{port}/api/v1/dispatch/stream"
        self.ws = connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},  # never in the URL
            proxy=None,
            open_timeout=10,
            max_size=None,
        )
        self.inbox: queue.Queue[tuple[float, Message]] = queue.Queue()
        self.seen: set[int] = set()
        self.strays = 0
        """New cases that were not the awaited home's leak (none expected)."""
        self._reader = threading.Thread(target=self._read, name="dispatch-stream", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                self.inbox.put((time.monotonic(), json.loads(raw)))
        except ConnectionClosed:
            pass
        code = self.ws.close_code
        self.inbox.put((time.monotonic(), {"type": "closed", "code": code}))

    def new_case(self, home: str, timeout: float) -> tuple[float, Message]:
        """Arrival time and body of the first case not seen before, which must be
        a leak of ``home``; a case id seen again (a change) is skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                at, message = self.inbox.get(timeout=max(left, 0.0))
            except queue.Empty:
                raise TimeoutError(f"no new case for home {home} within {timeout:.0f} s") from None
            if message.get("type") == "closed":
                raise RuntimeError(f"the dispatch stream closed (code {message.get('code')})")
            if message.get("type") != "case":
                continue
            case: Message = message["case"]
            if case["id"] in self.seen:
                continue
            self.seen.add(case["id"])
            if case["home"] == home and case["alarm"] == "leak":
                return at, case
            self.strays += 1

    def forget_queued(self, settle: float) -> None:
        """After ``settle`` s of quiet, mark every case delivered so far as seen."""
        while True:
            try:
                _at, message = self.inbox.get(timeout=settle)
            except queue.Empty:
                return
            if message.get("type") == "case":
                self.seen.add(message["case"]["id"])

    def close(self) -> None:
        self.ws.close()
        self._reader.join(5)
