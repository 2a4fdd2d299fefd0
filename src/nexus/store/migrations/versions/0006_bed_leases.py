"""Scale-out: leases of the multi-host floor's beds (which ``nexus worker`` runs which session).

Revision ID: 0006_bed_leases
Revises: 0004_extraction_orders
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_bed_leases"
down_revision: str | None = "0004_extraction_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bed_leases",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("worker_id", sa.String(length=32), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("journals", sa.JSON(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("takeovers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id"),
    )
    with op.batch_alter_table("bed_leases") as batch:
        batch.create_index("ix_bed_leases_worker_id", ["worker_id"], unique=False)


def downgrade() -> None:
    op.drop_table("bed_leases")
