"""The three statements ingest runs per batch, written for bulk.

On PostgreSQL each is one statement over arrays (``unnest``): one plan,
prepared once, whatever the batch size — instead of SQL text with thousands
of placeholders that psycopg re-parses per batch and the server plans anew
(the profile taken with bench/ingest showed that as the largest cost). SQLite
gets the portable forms, in chunks that stay under its variable limit.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, insert, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.db.models import Event, IngestMarker

CHUNK = 500

_PG_INSERT_EVENTS = text(
    "INSERT INTO events (contract_id, home_id, device_id, event, body, received_at) "
    "SELECT * FROM unnest(CAST(:contract AS integer[]), CAST(:home AS integer[]), "
    "CAST(:device AS integer[]), CAST(:event AS varchar[]), CAST(:body AS json[]), "
    "CAST(:at AS timestamptz[])) "
    "RETURNING id, contract_id"
)
_PG_UPSERT_MARKERS = text(
    "INSERT INTO ingest_markers (session, packet_id, digest, written_at) "
    "SELECT :session, p, d, :at FROM unnest(CAST(:packet AS integer[]), "
    "CAST(:digest AS varchar[])) AS m(p, d) "
    "ON CONFLICT (session, packet_id) DO UPDATE "
    "SET digest = excluded.digest, written_at = excluded.written_at"
)
_PG_DELETE_MARKERS = text(
    "DELETE FROM ingest_markers AS m "
    "USING unnest(CAST(:packet AS integer[]), CAST(:digest AS varchar[])) AS c(p, d) "
    "WHERE m.session = :session AND m.packet_id = c.p AND m.digest = c.d"
)


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_events(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Insert events; return (event id, contract id) of each."""
    if not rows:
        return []
    if _is_pg(session):
        result = session.execute(
            _PG_INSERT_EVENTS,
            {
                "contract": [r["contract_id"] for r in rows],
                "home": [r["home_id"] for r in rows],
                "device": [r["device_id"] for r in rows],
                "event": [r["event"] for r in rows],
                "body": [json.dumps(r["body"]) for r in rows],
                "at": [r["received_at"] for r in rows],
            },
        )
    else:
        result = session.execute(insert(Event).returning(Event.id, Event.contract_id), rows)
    return [(row.id, row.contract_id) for row in result]


def upsert_markers(session: Session, session_name: str, markers: dict[int, str], at: Any) -> None:
    """One marker per packet id (the dict already keeps the last digest)."""
    if not markers:
        return
    if _is_pg(session):
        session.execute(
            _PG_UPSERT_MARKERS,
            {
                "session": session_name,
                "at": at,
                "packet": list(markers),
                "digest": list(markers.values()),
            },
        )
        return
    stmt = sqlite.insert(IngestMarker)
    rows = [
        {"session": session_name, "packet_id": p, "digest": d, "written_at": at}
        for p, d in markers.items()
    ]
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["session", "packet_id"],
            set_={"digest": stmt.excluded.digest, "written_at": stmt.excluded.written_at},
        ),
        rows,
    )


def delete_markers(session: Session, session_name: str, pairs: list[tuple[int, str]]) -> None:
    """Delete markers whose acknowledgement the broker confirmed, by (packet id, digest)."""
    if not pairs:
        return
    if _is_pg(session):
        session.execute(
            _PG_DELETE_MARKERS,
            {
                "session": session_name,
                "packet": [p for p, _ in pairs],
                "digest": [d for _, d in pairs],
            },
        )
        return
    for start in range(0, len(pairs), CHUNK):
        session.execute(
            delete(IngestMarker).where(
                IngestMarker.session == session_name,
                tuple_(IngestMarker.packet_id, IngestMarker.digest).in_(
                    pairs[start : start + CHUNK]
                ),
            )
        )


def upsert(session: Session, model: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT … ON CONFLICT DO UPDATE, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    dialect = postgresql if _is_pg(session) else sqlite
    stmt = dialect.insert(model)
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)
