"""commands: gate, barrier and door commands with their deadline and outcome

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "commands",
        sa.Column("id", _BigId, primary_key=True),
        sa.Column("uid", sa.String(length=32), nullable=False, unique=True),
        sa.Column(
            "contract_id",
            sa.Integer(),
            sa.ForeignKey("contracts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "home_id", sa.Integer(), sa.ForeignKey("homes.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "device_id",
            sa.Integer(),
            sa.ForeignKey("devices.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_commands_contract_id", "commands", ["contract_id", "id"])
    op.create_index("ix_commands_home_id", "commands", ["home_id", "id"])
    op.create_index("ix_commands_status_deadline", "commands", ["status", "deadline"])


def downgrade() -> None:
    op.drop_index("ix_commands_status_deadline", table_name="commands")
    op.drop_index("ix_commands_home_id", table_name="commands")
    op.drop_index("ix_commands_contract_id", table_name="commands")
    op.drop_table("commands")
