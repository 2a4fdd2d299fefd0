"""``nexus user unlock``: an admin lifts a staff login's lockout (audited); others may not."""

from nexus.store.audit import entries


def test_nexus_user_unlock_is_for_admins(db, cli):
    from nexus.core.settings import load_settings
    from nexus.store import open_store

    assert cli("user", "add", "tess", "--role", "technician", "--no-password")[0] == 0
    code, _, err = cli("user", "unlock", "tess", "--as", "tess")
    assert code == 77 and "may not user.manage" in err
    code, out, _ = cli("user", "unlock", "tess")
    assert code == 0 and "unlocked" in out
    code, _, err = cli("user", "unlock", "nobody")
    assert code == 3 and "No staff user 'nobody'" in err
    store = open_store(load_settings())
    try:
        with store.session() as s:
            assert [e.action for e in entries(s)][-1] == "auth.unlock"
    finally:
        store.close()
