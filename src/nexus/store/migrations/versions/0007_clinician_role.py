"""Staff may be clinicians: 'clinician' joins the roles a staff user may have.

A clinician sees a client's nights and journal only while the client shares them (``clinician_sharing``) and
changes nothing (see :mod:`nexus.guard.policy`).

Revision ID: 0007_clinician_role
Revises: 0005_alarm_log
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_clinician_role"
down_revision: str | None = "0005_alarm_log"
branch_labels = None
depends_on = None

OLD = ("technician", "auditor", "admin")
NEW = ("technician", "clinician", "auditor", "admin")


def _role(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name="staff_role", native_enum=False, create_constraint=True, length=16)


def _set_roles(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "sqlite":  # no ALTER of a CHECK: the table is rebuilt with the new one
        with op.batch_alter_table("staff_users", recreate="always") as batch:
            batch.alter_column("role", existing_type=_role(old), type_=_role(new), existing_nullable=False)
        return
    op.drop_constraint("staff_role", "staff_users", type_="check")
    op.create_check_constraint("staff_role", "staff_users", "role IN (" + ", ".join(f"'{v}'" for v in new) + ")")


def upgrade() -> None:
    _set_roles(OLD, NEW)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM staff_users WHERE role = 'clinician'"))
    _set_roles(NEW, OLD)
