"""A migrated database per test (SQLite, and PostgreSQL when NEXUS_TEST_POSTGRES_URL is set)."""

import pytest

from nexus.core.settings import load_settings
from nexus.store import open_store, upgrade


@pytest.fixture
def store(db_url):
    s = open_store(load_settings(database_url=db_url), create=True, check=False)
    upgrade(s.engine)
    yield s
    s.close()
