"""Alembic migrations, driven from code (``nexus db upgrade``).

The migration scripts ship inside the package (``nexus/store/migrations``), so a wheel
install can migrate without an ``alembic.ini`` in the working folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError, SQLAlchemyError

from nexus.core.errors import MigrationError, StorageError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_REV = re.compile(r'^(down_revision|revision)\s*(?::[^=]*)?=\s*["\']?([\w.-]+|None)["\']?\s*$', re.MULTILINE)


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic :class:`Config` pointing at the packaged migrations (and at ``engine`` when given)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest migration revision this code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise MigrationError("No migrations found in the package; reinstall bedtime-nexus.")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DatabaseError as exc:  # cannot connect, or the file is not a database at all
        raise StorageError(f"Cannot open the database: {exc.orig}. Check NEXUS_DATABASE_URL (or move the file "
                           "away to start a new database).") from None


def _known(rev: str) -> bool:
    from alembic.script import ScriptDirectory

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


def _quick_head() -> str | None:
    """The single head of the packaged migrations read from their ``revision`` lines (None: not that simple).

    Without importing Alembic (a third of a second), so that commands that only check the schema
    (``nexus extract``) start fast; anything unusual falls back to Alembic.
    """
    revs: set[str] = set()
    downs: set[str] = set()
    for f in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(_REV.findall(f.read_text(encoding="utf-8")))
        if "revision" not in found or "down_revision" not in found:
            return None
        revs.add(found["revision"])
        downs.add(found["down_revision"])
    heads = revs - downs
    return next(iter(heads)) if len(heads) == 1 else None


def _quick_current(engine: Engine) -> str | None:
    """The database's revision by one SELECT (None: no single row there)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def check_schema(engine: Engine) -> None:
    """Raise :class:`MigrationError` unless the database is exactly at :func:`head_revision`."""
    head = _quick_head()
    if head is not None and _quick_current(engine) == head:
        return  # the common case, without Alembic
    cur = _refuse_newer(engine)
    head = head_revision()
    if cur != head:
        state = "empty" if cur is None else f"at migration '{cur}'"
        raise MigrationError(f"The database is {state}, the code needs '{head}'. Run 'nexus db upgrade'.")


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Apply migrations up to ``revision``; return ``(before, after)`` revisions.

    A database at a migration newer than the code is refused before anything is changed.
    """
    from alembic import command

    before = _refuse_newer(engine)
    try:
        command.upgrade(alembic_config(engine), revision)
    except SQLAlchemyError as exc:
        raise StorageError(f"Migration failed: {exc}. The database was left at '{before}'.") from exc
    after = current_revision(engine)
    return before, after or ""
