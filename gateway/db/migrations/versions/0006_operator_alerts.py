"""operator alerts: conditions an ISP operator must see (a central station not
receiving, later a full disk), one open row per condition key

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_operator_alerts_open_key",
        "operator_alerts",
        ["key"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    op.create_index("ix_operator_alerts_raised", "operator_alerts", ["raised_at"])


def downgrade() -> None:
    op.drop_index("ix_operator_alerts_raised", table_name="operator_alerts")
    op.drop_index("uq_operator_alerts_open_key", table_name="operator_alerts")
    op.drop_table("operator_alerts")
