"""homes' time zone; a contract's termination and purge: when it ended,
when it is purged, the purge reports, and an audit trail that lets exactly
that purge delete a contract's entries

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

APPEND_ONLY = "audit_entries is append-only"

# An entry may be deleted only while its contract is being purged (status
# 'purging', set by gateway.people.purge after the grace period); every other
# DELETE, every UPDATE and (PostgreSQL) TRUNCATE are still refused.
_PURGING = (
    "EXISTS (SELECT 1 FROM contracts"
    " WHERE contracts.id = OLD.contract_id AND contracts.status = 'purging')"
)

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND {_PURGING} THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'insufficient_privilege';
END
$$
"""
_PG_FUNCTION_0010 = f"""
CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'insufficient_privilege';
END
$$
"""
_SQLITE_DELETE = (
    "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries"
    f" WHEN NOT {_PURGING}"
    f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
)
_SQLITE_DELETE_0010 = (
    "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries"
    f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
)


def _set_delete_rule(pg_function: str, sqlite_trigger: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(pg_function)
    else:
        op.execute("DROP TRIGGER audit_entries_no_delete")
        op.execute(sqlite_trigger)


def upgrade() -> None:
    with op.batch_alter_table("homes") as batch:
        batch.add_column(
            sa.Column(
                "time_zone",
                sa.String(length=64),
                nullable=False,
                server_default="Asia/Novosibirsk",
            )
        )
    with op.batch_alter_table("contracts") as batch:
        batch.add_column(sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("purge_after", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "purge_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contract_ref", sa.String(length=64), nullable=False, unique=True),
        sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("media_files", sa.Integer(), nullable=False),
        sa.Column("media_bytes", sa.BigInteger(), nullable=False),
    )
    _set_delete_rule(_PG_FUNCTION, _SQLITE_DELETE)


def downgrade() -> None:
    _set_delete_rule(_PG_FUNCTION_0010, _SQLITE_DELETE_0010)
    op.drop_table("purge_reports")
    with op.batch_alter_table("contracts") as batch:
        batch.drop_column("purge_after")
        batch.drop_column("terminated_at")
    with op.batch_alter_table("homes") as batch:
        batch.drop_column("time_zone")
