"""Storage: SQLAlchemy models, the database engine, Alembic migrations.

SQLite in ``<data_dir>/nexus.db`` by default, any SQLAlchemy URL (PostgreSQL through psycopg)
with ``NEXUS_DATABASE_URL``. Apply migrations with ``nexus db upgrade``.
"""

from nexus.store.db import Store, open_store
from nexus.store.migrate import check_schema, current_revision, head_revision, upgrade

__all__ = ["Store", "check_schema", "current_revision", "head_revision", "open_store", "upgrade"]
