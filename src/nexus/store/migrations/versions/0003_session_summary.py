"""Sessions keep a summary of their night (events by kind, dreamscape commands by kind, SO power).

Revision ID: 0003_session_summary
Revises: 0002_guard
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_session_summary"
down_revision: str | None = "0002_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("summary", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("summary")
