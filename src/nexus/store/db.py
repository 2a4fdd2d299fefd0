"""Opening the database: URL checks, the data folder, engine and session factory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from nexus.core.errors import ConfigError, StorageError
from nexus.core.settings import Settings

_EXAMPLES = "e.g. sqlite:///nexus-data/nexus.db or postgresql+psycopg://user:password@localhost/nexus"


def parse_database_url(raw: str) -> URL:
    """Parse and normalise a database URL.

    ``postgres://`` and ``postgresql://`` are read as ``postgresql+psycopg://`` (psycopg 3).

    Raises
    ------
    ConfigError
        When the URL cannot be parsed or names a driver that is not installed.
    """
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"NEXUS_DATABASE_URL is not a valid database URL ('{raw}'): use {_EXAMPLES}."
        ) from None
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    try:
        url.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            f"NEXUS_DATABASE_URL names an unknown database kind '{url.drivername}': use {_EXAMPLES}."
        ) from None
    if url.get_backend_name() == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError(
                "NEXUS_DATABASE_URL points at PostgreSQL but psycopg is not installed: "
                "pip install 'bedtime-nexus[postgres]'."
            ) from None
    if url.get_backend_name() == "sqlite" and url.database in (None, ""):
        raise ConfigError(f"NEXUS_DATABASE_URL has no SQLite file name ('{raw}'): use {_EXAMPLES}.")
    return url


def check_data_dir(data_dir: Path, *, create: bool) -> Path:
    """Check that ``data_dir`` exists (or can be created) and is writable.

    With ``create=False`` nothing is changed on disk.
    """
    d = Path(data_dir)
    if d.exists():
        if not d.is_dir():
            raise StorageError(f"The data folder '{d}' is a file. Set NEXUS_DATA_DIR to a folder.")
        if not os.access(d, os.W_OK | os.X_OK):
            raise StorageError(
                f"The data folder '{d}' is not writable. Fix its permissions or set NEXUS_DATA_DIR to another folder."
            )
        return d
    parent = next((p for p in d.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise StorageError(
            f"The data folder '{d}' cannot be created: '{parent}' is not a writable folder. "
            "Set NEXUS_DATA_DIR to a writable folder."
        )
    if create:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"The data folder '{d}' cannot be created ({exc.strerror}). Set NEXUS_DATA_DIR to a writable folder."
            ) from None
    return d


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_engine(url: str | URL, *, create_dirs: bool = False) -> Engine:
    """Create an engine for ``url`` (SQLite pragmas: foreign keys, WAL, busy timeout).

    For SQLite the folder of the file is checked (and created when ``create_dirs``).
    """
    parsed = parse_database_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if db != ":memory:" and not db.startswith("file:"):
            check_data_dir(Path(db).parent if Path(db).parent != Path("") else Path("."), create=create_dirs)
            if not create_dirs and not Path(db).exists():
                raise StorageError(f"No database at '{db}'. Run 'nexus db upgrade' first to create it.")
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


@dataclass
class Store:
    """An open database: the engine and a session factory.

    Use ``with store.session() as s:`` for a unit of work that commits on success and
    rolls back on error.
    """

    engine: Engine
    factory: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A database session that commits at the end of the block, or rolls back on error."""
        with self.factory() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def close(self) -> None:
        """Release all pooled connections."""
        self.engine.dispose()


def open_store(settings: Settings, *, create: bool = False, check: bool = True) -> Store:
    """Open the database named by ``settings``.

    Parameters
    ----------
    settings : Settings
        Validated settings.
    create : bool
        Create the data folder and the SQLite file when missing (``nexus db upgrade``).
    check : bool
        Refuse a database whose schema is not at this code's migration head.
    """
    url = parse_database_url(settings.resolved_database_url)
    if settings.uses_default_sqlite:
        check_data_dir(settings.data_dir, create=create)
    engine = make_engine(url, create_dirs=create)
    store = Store(engine=engine, factory=sessionmaker(engine, expire_on_commit=False))
    if check:
        from nexus.store.migrate import check_schema

        try:
            check_schema(engine)
        except BaseException:
            store.close()
            raise
    return store
