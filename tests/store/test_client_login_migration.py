"""Migration 0008: clients get a portal password, an invitation and a lockout; clients added before keep their rows."""

from sqlalchemy import inspect, text

from nexus.core.settings import load_settings
from nexus.store import current_revision, head_revision, open_store, upgrade
from nexus.store.client_login import client_login, set_client_password
from nexus.store.migrate import alembic_config

COLUMNS = {"password_hash", "invite_hash", "invite_expires_at", "failed_logins", "locked_until"}


def test_client_login_columns_after_an_upgrade_with_clients_in_place_and_back(db_url):
    from alembic import command

    store = open_store(load_settings(database_url=db_url), create=True, check=False)
    try:
        upgrade(store.engine, "0007_clinician_role")
        with store.engine.begin() as c:
            c.execute(text("INSERT INTO clients (id, code, intake, consent_scopes, created_at) "
                           "VALUES ('c1', 'C-1', '{}', '[\"recording\"]', '2026-01-01 00:00:00')"))
        upgrade(store.engine)
        assert current_revision(store.engine) == head_revision()
        with store.engine.begin() as c:
            row = c.execute(text("SELECT code, failed_logins, password_hash FROM clients WHERE id = 'c1'")).one()
        assert tuple(row) == ("C-1", 0, None)
        with store.session() as s:
            set_client_password(s, "C-1", "a lighthouse in the pines")
        assert client_login(store, "C-1", "a lighthouse in the pines").client_id == "c1"
        command.downgrade(alembic_config(store.engine), "0007_clinician_role")
        assert not COLUMNS & {col["name"] for col in inspect(store.engine).get_columns("clients")}
        with store.engine.begin() as c:
            assert c.execute(text("SELECT code FROM clients WHERE id = 'c1'")).scalar() == "C-1"
    finally:
        store.close()
