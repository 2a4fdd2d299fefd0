"""Alembic migrations, driven from code (``nexus db upgrade``).

The migration scripts ship inside the package (``nexus/store/migrations``), so a wheel
install can migrate without an ``alembic.ini`` in the working folder.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError, SQLAlchemyError

from nexus.core.errors import MigrationError, StorageError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic :class:`Config` pointing at the packaged migrations (and at ``engine`` when given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest migration revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise MigrationError("No migrations found in the package; reinstall bedtime-nexus.")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DatabaseError as exc:  # cannot connect, or the file is not a database at all
        raise StorageError(f"Cannot open the database: {exc.orig}. Check NEXUS_DATABASE_URL (or move the file "
                           "away to start a new database).") from None


def _known(rev: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config())
    try:
        return script.get_revision(rev) is not None
    except Exception:  # alembic raises several kinds for unknown ids
        return False


def _refuse_newer(engine: Engine) -> str | None:
    cur = current_revision(engine)
    if cur is not None and not _known(cur):
        raise MigrationError(
            f"The database is at migration '{cur}', newer than this code (latest '{head_revision()}'). "
            "Upgrade bedtime-nexus, or point NEXUS_DATABASE_URL at another database."
        )
    return cur


def check_schema(engine: Engine) -> None:
    """Raise :class:`MigrationError` unless the database is exactly at :func:`head_revision`."""
    cur = _refuse_newer(engine)
    head = head_revision()
    if cur != head:
        state = "empty" if cur is None else f"at migration '{cur}'"
        raise MigrationError(f"The database is {state}, the code needs '{head}'. Run 'nexus db upgrade'.")


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Apply migrations up to ``revision``; return ``(before, after)`` revisions.

    A database at a migration newer than the code is refused before anything is changed.
    """
    before = _refuse_newer(engine)
    try:
        command.upgrade(alembic_config(engine), revision)
    except SQLAlchemyError as exc:
        raise StorageError(f"Migration failed: {exc}. The database was left at '{before}'.") from exc
    after = current_revision(engine)
    return before, after or ""
