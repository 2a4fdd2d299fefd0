"""Migration 0007: 'clinician' joins the staff roles; staff added before keep their rows; other roles stay refused."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from nexus.core.settings import load_settings
from nexus.store import current_revision, head_revision, open_store, upgrade
from nexus.store.access import add_user


def test_clinician_role_after_an_upgrade_with_staff_in_place(db_url):
    store = open_store(load_settings(database_url=db_url), create=True, check=False)
    try:
        upgrade(store.engine, "0005_alarm_log")
        with store.engine.begin() as c:
            c.execute(text("INSERT INTO staff_users (id, username, role, active, created_at) "
                           "VALUES ('u1', 'tess', 'technician', true, '2026-01-01 00:00:00')"))
            with pytest.raises(IntegrityError), c.begin_nested():
                c.execute(text("INSERT INTO staff_users (id, username, role, active, created_at) "
                               "VALUES ('u2', 'dr-lee', 'clinician', true, '2026-01-01 00:00:00')"))
        upgrade(store.engine)
        assert current_revision(store.engine) == head_revision()
        with store.session() as s:
            assert add_user(s, "dr-lee", "clinician").role.value == "clinician"
        with store.engine.begin() as c:
            assert c.execute(text("SELECT role FROM staff_users WHERE id = 'u1'")).scalar() == "technician"
            with pytest.raises(IntegrityError), c.begin_nested():
                c.execute(text("INSERT INTO staff_users (id, username, role, active, created_at) "
                               "VALUES ('u3', 'jan', 'janitor', true, '2026-01-01 00:00:00')"))
    finally:
        store.close()
