"""``nexus db upgrade`` and ``nexus db current``."""

from __future__ import annotations

import click


@click.group()
def db() -> None:
    """Manage the database: NEXUS_DATABASE_URL, or SQLite in NEXUS_DATA_DIR (./nexus-data)."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target migration.")
def upgrade(revision: str) -> None:
    """Create the database if needed and apply migrations."""
    from nexus.core.settings import load_settings
    from nexus.store import open_store
    from nexus.store import upgrade as do_upgrade

    settings = load_settings()
    store = open_store(settings, create=True, check=False)
    try:
        before, after = do_upgrade(store.engine, revision)
        rec = None
        if revision == "head":
            from nexus.facility.recovery import recover

            rec = recover(store)  # sessions a crashed facility left open get their end state
    finally:
        store.close()
    where = store.engine.url.render_as_string(hide_password=True)
    if before == after:
        click.echo(f"Database {where} is up to date (migration {after}).")
    else:
        click.echo(f"Database {where} upgraded from {before or 'empty'} to {after}.")
    if rec is not None and (rec.sessions or rec.unowned):
        click.echo(rec.summary())


@db.command()
def current() -> None:
    """Print the migration the database is at and the one the code needs."""
    from nexus.core.settings import load_settings
    from nexus.store import current_revision, head_revision
    from nexus.store.db import make_engine, parse_database_url

    settings = load_settings()
    engine = make_engine(parse_database_url(settings.resolved_database_url))
    try:
        click.echo(f"database: {current_revision(engine) or 'empty'}; code: {head_revision()}")
    finally:
        engine.dispose()
