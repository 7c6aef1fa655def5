"""The one dialect-aware upsert, in the database layer: ingest, recording and
whoever else keeps "one row per key" share it instead of importing each other."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def upsert(session: Session, model: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT … ON CONFLICT DO UPDATE, on SQLite and PostgreSQL alike.

    The statement is built from the first row's columns: every row must have
    the same ones.
    """
    if not rows:
        return
    dialect = postgresql if is_postgres(session) else sqlite
    stmt = dialect.insert(model)
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)
