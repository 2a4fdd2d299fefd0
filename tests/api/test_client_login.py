"""A client's own portal login: an invitation from the facility, a password of their own, a lockout (API + store).

On an app without a running facility (logins need only the database), on SQLite and PostgreSQL.
"""

import warnings
from datetime import timedelta

import pytest
from sqlalchemy import select

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from nexus.api.app import create_app
from nexus.guard.credentials import LOGIN_ATTEMPTS
from nexus.guard.policy import SYSTEM, AccessDenied
from nexus.store.access import add_user, issue_token
from nexus.store.audit import entries
from nexus.store.client_login import LoginLocked, client_login, enrol_client, invite_client, set_client_password
from nexus.store.clients import add_client, erase_client
from nexus.store.models import Client, utcnow

PASSWORD = "correct horse battery staple"
MINE = "a lighthouse in the pines"


@pytest.fixture
def portal(store):
    """(TestClient, admin headers, technician headers) over a store with clients C-1 and C-2 and two staff."""
    with store.session() as s:
        for code in ("C-1", "C-2"):
            add_client(s, code, scopes=["recording"])
        add_user(s, "ada", "admin", password=PASSWORD)
        add_user(s, "tom", "technician", password=PASSWORD)
        admin, tech = issue_token(s, username="ada"), issue_token(s, username="tom")
    with TestClient(create_app(None, store)) as c:  # type: ignore[arg-type]
        yield c, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {tech}"}


def _enrol(c, code, invitation, password=MINE):
    return c.post("/api/auth/client/enrol", json={"code": code, "invitation": invitation, "password": password})


def _login(c, code, password=MINE):
    return c.post("/api/auth/client/login", json={"code": code, "password": password})


def test_an_invited_client_sets_a_password_once_and_logs_in_with_it(portal, store):
    c, admin, tech = portal
    assert c.post("/api/clients/C-1/invitation", headers=tech).status_code == 403  # only an admin invites
    assert _login(c, "C-1").status_code == 401  # no password yet
    inv = c.post("/api/clients/C-1/invitation", headers=admin)
    assert inv.status_code == 200 and inv.json()["code"].startswith("nxi_")
    code = inv.json()["code"]

    assert _enrol(c, "C-1", code, password="short").status_code == 422  # refused before the code is spent
    assert _enrol(c, "C-2", code).status_code == 401  # another client's code
    r = _enrol(c, "C-1", code)
    assert r.status_code == 200 and r.json()["role"] == "client"
    me = c.get("/api/auth/me", headers={"Authorization": f"Bearer {r.json()['token']}"}).json()
    with store.session() as s:
        row = s.scalars(select(Client).where(Client.code == "C-1")).one()
        assert me == {"name": f"client:{row.id}", "role": "client", "client_id": row.id}
        assert row.password_hash.startswith("$argon2id$") and MINE not in row.password_hash  # as staff passwords
        assert row.invite_hash is None
    assert _enrol(c, "C-1", code, password="another long password").status_code == 401  # one time only

    r = _login(c, "C-1")
    assert r.status_code == 200
    own = c.get("/api/clients", headers={"Authorization": f"Bearer {r.json()['token']}"}).json()
    assert [x["code"] for x in own] == ["C-1"]  # a client token: their own data only
    assert _login(c, "C-1", "a lighthouse in the pine").status_code == 401
    assert _login(c, "C-2").status_code == 401
    assert c.post("/api/auth/client/login", json={"code": "ada", "password": PASSWORD}).status_code == 401
    with store.session() as s:
        actions = [e.action for e in entries(s)]
    assert actions.count("client.invite") == 1 and actions.count("client.enrol") == 1
    assert actions.count("auth.login") == 2 and "auth.refused" in actions


def test_wrong_passwords_lock_the_login_and_an_invitation_lifts_the_lock(portal, store, monkeypatch):
    monkeypatch.setattr("nexus.store.client_login.LOGIN_ATTEMPTS", 3)  # fewer argon2 checks (the real 5: below)
    c, admin, _ = portal
    with store.session() as s:
        set_client_password(s, "C-1", MINE)
    for _ in range(2):
        assert _login(c, "C-1", "wrong password, sorry").status_code == 401
    assert _login(c, "C-1").status_code == 200  # a good password resets the count
    for _ in range(2):
        assert _login(c, "C-1", "wrong password, sorry").status_code == 401
    r = _login(c, "C-1", "wrong password, sorry")
    assert r.status_code == 429 and "locked until" in r.json()["detail"]
    assert 0 < int(r.headers["retry-after"]) <= 15 * 60
    r = _login(c, "C-1")  # the right password too, while locked
    assert r.status_code == 429
    assert _login(c, "C-2").status_code == 401  # other clients are not locked (C-2 has no password)
    with store.session() as s:
        assert "auth.locked" in [e.action for e in entries(s)]

    code = c.post("/api/clients/C-1/invitation", headers=admin).json()["code"]
    assert _enrol(c, "C-1", code, password="a new and longer password").status_code == 200
    assert _login(c, "C-1", "a new and longer password").status_code == 200
    assert _login(c, "C-1").status_code == 401  # the old password is gone


def test_the_lock_ends_after_its_time_and_an_invitation_expires(store):
    with store.session() as s:
        add_client(s, "C-9")
        set_client_password(s, "C-9", MINE)
        code, expires = invite_client(s, "C-9", ttl=timedelta(days=1))
    assert expires - utcnow() <= timedelta(days=1)
    later = utcnow() + timedelta(days=2)
    with pytest.raises(AccessDenied, match="Wrong client code"):
        enrol_client(store, "C-9", code, "a password of my own", now=later)
    for _ in range(LOGIN_ATTEMPTS - 1):
        with pytest.raises(AccessDenied):
            client_login(store, "C-9", "not my password at all")
    with pytest.raises(LoginLocked) as locked:
        client_login(store, "C-9", "not my password at all")
    with pytest.raises(LoginLocked):
        client_login(store, "C-9", MINE, now=locked.value.until - timedelta(seconds=1))
    assert client_login(store, "C-9", MINE, now=locked.value.until + timedelta(seconds=1)).client_id is not None


def test_an_erased_client_cannot_log_in(store):
    with store.session() as s:
        add_client(s, "C-7")
        set_client_password(s, "C-7", MINE)
        code, _ = invite_client(s, "C-7")
    assert client_login(store, "C-7", MINE).client_id
    erase_client(store, SYSTEM, "C-7")
    with store.session() as s:
        row = s.scalars(select(Client).where(Client.erased_at.is_not(None))).one()
        assert row.password_hash is None and row.invite_hash is None
        erased_code = row.code
    for code_now in ("C-7", erased_code):
        with pytest.raises(AccessDenied):
            client_login(store, code_now, MINE)
        with pytest.raises(AccessDenied):
            enrol_client(store, code_now, code, "a password of my own")


def test_an_unknown_code_or_a_client_without_password_costs_one_password_check(store, monkeypatch):
    """No telling by the answer's time which codes exist or who enrolled: each refusal checks one argon2id hash."""
    import nexus.store.client_login as cl

    checked = []
    real = cl.verify_password
    monkeypatch.setattr(cl, "verify_password", lambda h, pw: checked.append(h) or real(h, pw))
    with store.session() as s:
        add_client(s, "C-5")  # no password yet
        add_client(s, "C-6")
        set_client_password(s, "C-6", MINE)
    for code in ("C-404", "C-5", "C-6"):
        with pytest.raises(AccessDenied, match="Wrong client code or password"):
            client_login(store, code, "a guess at a password")
    assert len(checked) == 3 and all(h.startswith("$argon2id$") for h in checked)
