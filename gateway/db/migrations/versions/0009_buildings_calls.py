"""buildings with shared entrances (panels, flats -> homes) and intercom calls

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 18:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "buildings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(length=32), nullable=False, unique=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "entrance_panels",
        sa.Column(
            "device_id",
            sa.Integer(),
            sa.ForeignKey("devices.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "building_id",
            sa.Integer(),
            sa.ForeignKey("buildings.id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_table(
        "flats",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "building_id",
            sa.Integer(),
            sa.ForeignKey("buildings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column(
            "home_id", sa.Integer(), sa.ForeignKey("homes.id", ondelete="CASCADE"), nullable=False
        ),
        sa.UniqueConstraint("building_id", "number", name="uq_flats_building_number"),
    )
    op.create_table(
        "calls",
        sa.Column("id", _BigId, primary_key=True),
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
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("flat", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=64), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=16), nullable=True),
        sa.Column("clip_end", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("device_id", "call_id", "home_id", name="uq_calls_device_call_home"),
    )
    op.create_index("ix_calls_contract_id", "calls", ["contract_id", "id"])
    op.create_index("ix_calls_state_started", "calls", ["state", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_state_started", table_name="calls")
    op.drop_index("ix_calls_contract_id", table_name="calls")
    op.drop_table("calls")
    op.drop_table("flats")
    op.drop_table("entrance_panels")
    op.drop_table("buildings")
