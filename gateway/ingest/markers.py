"""The redelivery markers in the database (``ingest_markers``): written with
each commit, read for a batch's DUP deliveries, deleted once they can no
longer match. Which to delete when is the ledger's (gateway.ingest.ledger);
this module only runs the statements, in bulk on PostgreSQL (gateway.ingest.bulk)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from gateway.db.models import IngestMarker
from gateway.db.upsert import is_postgres
from gateway.ingest.bulk import CHUNK, pg_array

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


def known(session: Session, session_name: str, dup_ids: list[int]) -> dict[int, str]:
    """The session's markers for these packet ids (of DUP deliveries): id -> digest."""
    if not dup_ids:
        return {}
    rows = session.execute(
        select(IngestMarker.packet_id, IngestMarker.digest).where(
            IngestMarker.session == session_name, IngestMarker.packet_id.in_(dup_ids)
        )
    )
    return {packet_id: digest for packet_id, digest in rows}


def upsert(session: Session, session_name: str, markers: dict[int, str], at: datetime) -> None:
    """One marker per packet id (the dict already keeps the last digest)."""
    if not markers:
        return
    if is_postgres(session):
        session.execute(
            _PG_UPSERT_MARKERS,
            {
                "session": session_name,
                "at": at,
                "packet": pg_array(markers),
                "digest": pg_array(markers.values()),
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


def delete_confirmed(session: Session, session_name: str, pairs: list[tuple[int, str]]) -> None:
    """Delete markers whose acknowledgement the broker confirmed, by (packet id, digest)."""
    if not pairs:
        return
    if is_postgres(session):
        session.execute(
            _PG_DELETE_MARKERS,
            {
                "session": session_name,
                "packet": pg_array(p for p, _ in pairs),
                "digest": pg_array(d for _, d in pairs),
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


def delete_stale(session: Session, session_name: str, before: datetime) -> None:
    """Delete the markers of messages received before ``before`` (an earlier connection's)."""
    session.execute(
        delete(IngestMarker).where(
            IngestMarker.session == session_name, IngestMarker.written_at < before
        )
    )
