"""A staff login's lockout: per (login, source address), short, audited, lifted by an admin (API + store).

The CLI's `nexus user unlock` is tried in tests/cli/test_cli_unlock.py.
"""

import warnings
from datetime import timedelta

import pytest

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from nexus.api.app import create_app
from nexus.guard.policy import AccessDenied
from nexus.store.access import add_user
from nexus.store.audit import entries
from nexus.store.models import utcnow
from nexus.store.staff_login import STAFF_LOCK, STAFF_LOGIN_ATTEMPTS, StaffLoginLocked, staff_login, unlock_staff

PASSWORD = "correct horse battery staple"


def test_wrong_passwords_lock_one_address_out_of_the_login_not_the_others(store):
    with store.session() as s:
        add_user(s, "tom", "technician", password=PASSWORD)
    app = create_app(None, store)  # type: ignore[arg-type]
    hosts = {h: TestClient(app, client=(h, 5000)) for h in ("10.0.0.66", "10.0.0.7")}

    def _post(_, host, password, username="tom"):
        return hosts[host].post("/api/auth/login", json={"username": username, "password": password})

    for _ in range(STAFF_LOGIN_ATTEMPTS - 1):
        assert _post(store, "10.0.0.66", "guess").status_code == 401
    r = _post(store, "10.0.0.66", "guess")
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= STAFF_LOCK.total_seconds()
    assert "nexus user unlock" in r.json()["detail"]
    assert _post(store, "10.0.0.66", PASSWORD).status_code == 429  # even the right password, while locked
    assert _post(store, "10.0.0.7", PASSWORD).status_code == 200  # the technician's console is not locked out
    # an unknown name locks alike (the answer does not tell which names exist)
    assert [_post(store, "10.0.0.66", "x", "nemo").status_code
            for _ in range(STAFF_LOGIN_ATTEMPTS)][-1] == 429
    with store.session() as s:
        actions = [(e.action, (e.payload or {}).get("source")) for e in entries(s)]
    assert actions.count(("auth.refused", "10.0.0.66")) == 2 * STAFF_LOGIN_ATTEMPTS + 1  # committed, not rolled back
    assert ("auth.locked", "10.0.0.66") in actions and ("auth.login", "10.0.0.7") in actions
    with store.session() as s:
        unlock_staff(s, "tom", actor="ada")  # an admin lifts it ('nexus user unlock')
    assert _post(store, "10.0.0.66", PASSWORD).status_code == 200


def test_the_lock_ends_by_itself_and_a_good_password_resets_the_count(store):
    with store.session() as s:
        add_user(s, "tom", "technician", password=PASSWORD)
    for _ in range(STAFF_LOGIN_ATTEMPTS - 1):
        with pytest.raises(AccessDenied):
            staff_login(store, "tom", "guess", source="a")
    assert staff_login(store, "tom", PASSWORD, source="a").name == "tom"  # resets the count
    for _ in range(STAFF_LOGIN_ATTEMPTS - 1):
        with pytest.raises(AccessDenied) as exc:
            staff_login(store, "tom", "guess", source="a")
        assert not isinstance(exc.value, StaffLoginLocked)
    with pytest.raises(StaffLoginLocked):
        staff_login(store, "tom", "guess", source="a")
    later = utcnow() + STAFF_LOCK + timedelta(seconds=1)
    assert staff_login(store, "tom", PASSWORD, source="a", now=later).name == "tom"  # the lock ended


def test_behind_a_trusted_proxy_the_forwarded_address_is_locked_and_elsewhere_the_header_is_ignored(store):
    with store.session() as s:
        add_user(s, "tom", "technician", password=PASSWORD)
    app = create_app(None, store, trusted_proxies=["10.0.0.1", "10.9.0.0/16"])  # type: ignore[arg-type]
    proxy, stranger = (TestClient(app, client=(h, 5000)) for h in ("10.0.0.1", "10.0.0.66"))

    def _post(via, forwarded_for, password):
        return via.post("/api/auth/login", json={"username": "tom", "password": password},
                        headers={"X-Forwarded-For": forwarded_for})

    codes = [_post(proxy, "203.0.113.9", "guess").status_code for _ in range(STAFF_LOGIN_ATTEMPTS)]
    assert codes == [401] * (STAFF_LOGIN_ATTEMPTS - 1) + [429]  # that client, behind the proxy, is locked
    # another client behind the same proxy (through a second trusted hop) is not
    assert _post(proxy, "198.51.100.7, 10.9.0.2", PASSWORD).status_code == 200
    assert _post(stranger, "203.0.113.9", "guess").status_code == 401  # not a proxy: its own address counts
    with store.session() as s:
        sources = [(e.action, (e.payload or {}).get("source")) for e in entries(s)]
    assert ("auth.locked", "203.0.113.9") in sources and ("auth.login", "198.51.100.7") in sources
    assert ("auth.refused", "10.0.0.66") in sources
    assert not any(src == "10.0.0.1" for _, src in sources)  # the proxy itself is never taken for the client
