"""Clients log in to the portal with a password: its argon2id hash, a one-time enrolment invitation, a lockout.

``password_hash`` is set by the client from an invitation (``invite_hash``: SHA-256 of a one-time code, with its
expiry) or by the facility; ``failed_logins`` and ``locked_until`` lock the login after repeated wrong passwords.

Revision ID: 0008_client_login
Revises: 0007_clinician_role
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_client_login"
down_revision: str | None = "0007_clinician_role"
branch_labels = None
depends_on = None

COLUMNS = ("password_hash", "invite_hash", "invite_expires_at", "failed_logins", "locked_until")


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("invite_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("invite_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
