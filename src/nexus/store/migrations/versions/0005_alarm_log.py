"""Monitor: the alarm log (every high and medium alarm with its times: raised, acknowledged, escalated, resolved).

Revision ID: 0005_alarm_log
Revises: 0006_bed_leases

0005 was kept for the alarm log while 0006 (bed leases) landed first; the chain is 0004 → 0006 → 0005.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_alarm_log"
down_revision: str | None = "0006_bed_leases"
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("facility_run_id", sa.String(length=32), nullable=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("category", _enum("alarm_category", "technical", "psyche", "system"), nullable=False),
        sa.Column("priority", _enum("alarm_priority_now", "high", "medium", "low"), nullable=False),
        sa.Column("raised_priority", _enum("alarm_priority_raised", "high", "medium", "low"), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("onset_s", sa.Float(), nullable=True),
        sa.Column("raised_s", sa.Float(), nullable=False),
        sa.Column("acknowledged_s", sa.Float(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("escalated_s", sa.Float(), nullable=True),
        sa.Column("resolved_s", sa.Float(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alarms") as batch:
        batch.create_index("ix_alarms_session_raised", ["session_id", "raised_s"], unique=False)
        batch.create_index("ix_alarms_priority", ["priority"], unique=False)


def downgrade() -> None:
    op.drop_table("alarms")
