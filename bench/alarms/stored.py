"""What the gateway has stored of the leak sensors' reports, read from its
database: a trip starts only once the previous trip's dry report is in, so no
report of ours waits ahead of the timed one in the ingest queue."""

from __future__ import annotations

import time

from sqlalchemy import bindparam, text

from gateway.db.engine import Database

POLL_S = 0.002


class Stored:
    """Events per leak sensor, against how many the bench has published since."""

    def __init__(self, db_url: str, usernames: list[str]) -> None:
        self.db = Database(db_url)
        self.conn = self.db.engine.connect()
        query = text("SELECT mqtt_username, id FROM devices WHERE mqtt_username IN :names")
        rows = self.conn.execute(
            query.bindparams(bindparam("names", expanding=True)), {"names": usernames}
        )
        self.ids: dict[str, int] = {name: int(i) for name, i in rows}
        self.conn.rollback()
        self.expected = {name: self._count(name) for name in usernames}

    def _count(self, username: str) -> int:
        query = text("SELECT count(*) FROM events WHERE device_id = :d")
        value = self.conn.execute(query, {"d": self.ids[username]}).scalar()
        self.conn.rollback()  # a fresh snapshot each time (SQLite keeps one per transaction)
        return int(value or 0)

    def published(self, username: str, n: int = 1) -> None:
        self.expected[username] += n

    def wait(self, username: str, timeout: float) -> None:
        """Until every report published as ``username`` is stored."""
        deadline = time.monotonic() + timeout
        while self._count(username) < self.expected[username]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{username}'s reports not stored within {timeout:.0f} s")
            time.sleep(POLL_S)

    def close(self) -> None:
        self.conn.close()
        self.db.dispose()
