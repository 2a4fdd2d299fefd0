"""Safety: facility runs (pid, host, journals, heartbeat), extraction orders, and each session's run.

Revision ID: 0004_extraction_orders
Revises: 0003_session_summary
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_extraction_orders"
down_revision: str | None = "0003_session_summary"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "facility_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("journals", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "extraction_orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("facility_run_id", sa.String(length=32), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("ordered_by", sa.String(length=64), nullable=False),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("safe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("extraction_orders") as batch:
        batch.create_index("ix_extraction_orders_session_id", ["session_id"], unique=False)
        batch.create_index("ix_extraction_orders_run_status", ["facility_run_id", "status"], unique=False)
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("facility_run_id", sa.String(length=32), nullable=True))
        batch.create_index("ix_sessions_facility_run_id", ["facility_run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ix_sessions_facility_run_id")
        batch.drop_column("facility_run_id")
    op.drop_table("extraction_orders")
    op.drop_table("facility_runs")
