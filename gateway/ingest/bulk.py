"""The statements ingest runs per batch, written for bulk.

On PostgreSQL each is one statement whatever the batch size: one plan,
prepared once, instead of SQL text with thousands of placeholders that
psycopg re-parses per batch and the server plans anew. The parameters are
built by C code, not per element in Python: the events are one JSON document
(``json.dumps`` of the whole batch, unpacked by ``json_to_recordset``), the
markers (gateway.ingest.markers) two array literals joined from digits and
hex digests (:func:`pg_array`). psycopg's
list adapters quote each element in Python, which cost about 18 µs of
the worker's CPU per event. SQLite gets the portable forms, in chunks that
stay under its variable limit.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, func, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.db.models import DeviceHealth, Event

CHUNK = 500

EventRow = tuple[int, int, int, str, dict[str, Any], datetime]
"""(contract id, home id, device id, event class, body, received at)."""

HealthRow = list[Any]
"""[device id, online, last seen at, battery, battery_low, voltage, linkquality];
``None`` in the last four: not reported, the stored value stays."""

HEALTH_COLUMNS = (
    "device_id",
    "online",
    "last_seen_at",
    "battery",
    "battery_low",
    "voltage",
    "linkquality",
)

_PG_INSERT_EVENTS = text(
    "INSERT INTO events (contract_id, home_id, device_id, event, body, received_at) "
    "SELECT c, h, d, e, b, t FROM json_to_recordset(CAST(:rows AS json)) "
    "AS x(c integer, h integer, d integer, e varchar, b json, t timestamptz) "
    "RETURNING id, contract_id"
)


def pg_array(values: Any) -> str:
    """A PostgreSQL array literal of digits or hex digests: nothing to quote."""
    return "{" + ",".join(map(str, values)) + "}"


def events_param(dialect: str, rows: list[EventRow]) -> tuple[str, Any]:
    """What :func:`insert_events` sends for ``rows`` on ``dialect``, with the
    dialect; pure, so it can be built before the transaction (on PostgreSQL,
    the JSON document)."""
    return dialect, _events_param(dialect, rows)


def _events_param(dialect: str, rows: list[EventRow]) -> Any:
    if dialect == "postgresql":
        # Rows of one network read share their received_at object.
        stamps: dict[int, str] = {}
        return json.dumps(
            [
                {
                    "c": c,
                    "h": h,
                    "d": d,
                    "e": e,
                    "b": b,
                    "t": stamps.get(id(t)) or stamps.setdefault(id(t), t.isoformat()),
                }
                for c, h, d, e, b, t in rows
            ],
            separators=(",", ":"),
        )
    return [
        {"contract_id": c, "home_id": h, "device_id": d, "event": e, "body": b, "received_at": t}
        for c, h, d, e, b, t in rows
    ]


def insert_events(
    session: Session, rows: list[EventRow], ahead: tuple[str, Any] | None = None
) -> list[tuple[int, int]]:
    """Insert events in order; return (event id, contract id) of each.
    ``ahead``: :func:`events_param` of ``rows``, if built before."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    param = ahead[1] if ahead is not None and ahead[0] == dialect else None
    if param is None:
        param = _events_param(dialect, rows)
    if dialect == "postgresql":
        result = session.execute(_PG_INSERT_EVENTS, {"rows": param})
    else:
        result = session.execute(insert(Event).returning(Event.id, Event.contract_id), param)
    return [(row[0], row[1]) for row in result]


_HEALTH_UPSERTS: dict[str, Insert] = {}


def _health_upsert(dialect_name: str) -> Insert:
    """Built once per dialect: every column given, a NULL health field keeps the stored value."""
    stmt = _HEALTH_UPSERTS.get(dialect_name)
    if stmt is None:
        base = (postgresql if dialect_name == "postgresql" else sqlite).insert(DeviceHealth)
        keep = {
            c: func.coalesce(base.excluded[c], DeviceHealth.__table__.c[c])
            for c in HEALTH_COLUMNS[3:]
        }
        stmt = _HEALTH_UPSERTS[dialect_name] = base.on_conflict_do_update(
            index_elements=["device_id"],
            set_={
                "online": base.excluded.online,
                "last_seen_at": base.excluded.last_seen_at,
                **keep,
            },
        )
    return stmt


def upsert_health(session: Session, rows: list[HealthRow]) -> None:
    """Device health: online and last seen always, the four health fields when reported.

    Every row has every column, so one statement fits a batch whose devices
    reported different fields.
    """
    if rows:
        session.execute(
            _health_upsert(session.get_bind().dialect.name),
            [dict(zip(HEALTH_COLUMNS, row, strict=True)) for row in rows],
        )
