"""What each device last reported of its state fields, for ``devices.edges``.

The database row (``device_state``) is the truth, written in the batch's own
transaction, so the memory survives restarts and a failed commit changes
nothing. The writer thread classifies a batch while the previous one
commits, so it works from a prediction (:class:`StateCache`: the states its
own earlier batches left). A worker alone on its subscription is the only
writer of its devices' rows, so the prediction holds until a commit fails
(then it is dropped and read again). Workers sharing a subscription may be
given reports of one device: their commits read the rows, locked, and
classify the batch again where the prediction was wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.models import DeviceState, utcnow
from gateway.db.upsert import upsert

State = dict[str, Any]
Lookup = Callable[[int], State]
"""A device id to the state it last reported (``{}`` if none is known)."""


def read(session: Session, device_ids: Iterable[int]) -> dict[int, State]:
    """The stored states of these devices (``{}`` for none yet).

    On PostgreSQL the rows stay locked until the commit (taken in id order),
    so two workers given reports of one device take turns; a device without
    a row gets an empty one first, because a lock on a row that does not
    exist holds nobody. (On SQLite the ingest transaction holds the
    database's write lock.)"""
    ids = sorted(set(device_ids))
    if not ids:
        return {}
    found = _select(session, ids)
    missing = [device_id for device_id in ids if device_id not in found]
    if missing and session.get_bind().dialect.name == "postgresql":
        empty = [{"device_id": i, "state": {}, "updated_at": utcnow()} for i in missing]
        session.execute(postgresql.insert(DeviceState).on_conflict_do_nothing(), empty)
        found.update(_select(session, missing))
    return {device_id: found.get(device_id, {}) for device_id in ids}


_SELECT = select(DeviceState.device_id, DeviceState.state).where(
    DeviceState.device_id.in_(bindparam("ids", expanding=True))
)
_SELECT_LOCKED = _SELECT.order_by(DeviceState.device_id).with_for_update()


def _select(session: Session, ids: list[int]) -> dict[int, State]:
    locked = session.get_bind().dialect.name == "postgresql"
    rows = session.execute(_SELECT_LOCKED if locked else _SELECT, {"ids": ids})
    return {device_id: state for device_id, state in rows}


def write(session: Session, states: dict[int, State], at: datetime) -> None:
    """Store the states that a batch changed."""
    rows = [
        {"device_id": device_id, "state": state, "updated_at": at}
        for device_id, state in sorted(states.items())
    ]
    upsert(session, DeviceState, rows, ["device_id"])


class StateCache:
    """The writer thread's prediction: the states its batches left, else the row.

    ``generation`` counts :meth:`forget` calls: a batch classified before
    one must be classified again."""

    _MAX = 100_000

    def __init__(self, db: Database) -> None:
        self._db = db
        self._states: dict[int, State] = {}
        self.generation = 0

    def lookup(self, device_id: int) -> State:
        state = self._states.get(device_id)
        if state is None:
            with self._db.session() as session:
                state = read(session, [device_id])[device_id]
            if len(self._states) >= self._MAX:
                self._states.clear()
            self._states[device_id] = state
        return state

    def update(self, states: dict[int, State]) -> None:
        self._states.update(states)

    def forget(self) -> None:
        """A commit failed: what its batch predicted may never be stored."""
        self._states = {}
        self.generation += 1
