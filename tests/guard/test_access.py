"""Users, passwords, API tokens (expiry, forgery, revocation), break-glass and audited refusals, in the database."""

from datetime import timedelta

import pytest

from nexus.core.errors import InvalidInputError, NotFoundError
from nexus.guard.policy import AccessDenied, Principal, Role
from nexus.store.access import (
    add_user,
    authenticate,
    break_glass,
    check_access,
    issue_token,
    list_users,
    login,
    revoke_token,
)
from nexus.store.audit import entries, verify
from nexus.store.models import Client, utcnow

PW = "correct horse battery staple"


@pytest.fixture
def people(store):
    with store.session() as s:
        add_user(s, "tess", "technician", password=PW)
        add_user(s, "audrey", "auditor", password=PW)
        add_user(s, "ada", "admin", password=PW)
        c = Client(code="C-1", consent_scopes=["recording", "audio"])
        s.add(c)
        s.flush()
        return c.id


def test_users_passwords_and_listing(store, people):
    with store.session() as s:
        assert [(u.username, u.role.value) for u in list_users(s)] == [
            ("ada", "admin"), ("audrey", "auditor"), ("tess", "technician")]
        assert list_users(s)[2].password_hash.startswith("$argon2id$")
        assert PW not in list_users(s)[2].password_hash
        assert login(s, "tess", PW) == Principal("tess", Role.TECHNICIAN)
    with pytest.raises(AccessDenied, match="Wrong username or password"), store.session() as s:
        login(s, "tess", PW + "x")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("tess", "technician"), "exists already"),
        (("bob", "client"), "not a staff role"),
        (("bob", "techician"), "Did you mean 'technician'"),
        (("bob smith", "admin"), "Invalid username"),
    ],
    ids=["duplicate", "client-role", "typo", "space"],
)
def test_bad_users_are_refused(store, people, args, match):
    with pytest.raises(InvalidInputError, match=match), store.session() as s:
        add_user(s, *args)


def test_short_password_is_refused(store):
    with pytest.raises(InvalidInputError, match="at least 12"), store.session() as s:
        add_user(s, "bob", "admin", password="short")


def test_token_round_trip_expiry_forgery_revocation(store, people):
    with store.session() as s:
        tok = issue_token(s, username="tess", ttl=timedelta(hours=1))
        ctok = issue_token(s, client_id=people, ttl=timedelta(days=1))
    assert authenticate(store, tok) == Principal("tess", Role.TECHNICIAN)
    assert authenticate(store, ctok) == Principal(f"client:{people}", Role.CLIENT, client_id=people)
    with pytest.raises(AccessDenied, match="token expired"):
        authenticate(store, tok, now=utcnow() + timedelta(hours=2))
    with pytest.raises(AccessDenied, match="unknown or forged"):
        authenticate(store, tok[:-2] + "xx")
    with store.session() as s:
        revoke_token(s, tok)
    with pytest.raises(AccessDenied, match="revoked"):
        authenticate(store, tok)
    with store.session() as s:
        refused = entries(s, action_prefix="auth.refused")
    assert [e.payload["problem"] for e in refused] == ["token expired", "unknown or forged token", "revoked token"]
    with pytest.raises(InvalidInputError, match="at most"), store.session() as s:
        issue_token(s, username="tess", ttl=timedelta(days=365))


def test_technician_reading_a_journal_is_refused_and_audited(store, people):
    tech = Principal("tess", Role.TECHNICIAN)
    with pytest.raises(AccessDenied, match=r"may not journal\.read"):
        check_access(store, tech, "journal.read", people)
    with store.session() as s:
        (e,) = entries(s, action_prefix="access.denied")
    assert (e.actor, e.subject, e.payload["action"]) == ("tess", people, "journal.read")
    assert verify(store).ok


def test_client_reads_own_journal_but_not_another(store, people):
    me = Principal(f"client:{people}", Role.CLIENT, client_id=people)
    assert check_access(store, me, "journal.read", people).allowed
    with store.session() as s:
        other = Client(code="C-2")
        s.add(other)
        s.flush()
        other_id = other.id
    with pytest.raises(AccessDenied, match="only on their own data"):
        check_access(store, me, "journal.read", other_id)
    with pytest.raises(NotFoundError, match="No client 'nobody'"):
        check_access(store, me, "journal.read", "nobody")


def test_break_glass_is_limited_reasoned_and_loud(store, people, caplog):
    with pytest.raises(InvalidInputError, match="reason of at least"), store.session() as s:
        break_glass(s, "tess", "help")
    with pytest.raises(InvalidInputError, match="at most 1:00:00"), store.session() as s:
        break_glass(s, "tess", "controller crashed, bed 3 still stimulating", ttl=timedelta(hours=3))
    with store.session() as s:
        tok = break_glass(s, "tess", "controller crashed, bed 3 still stimulating", ttl=timedelta(minutes=20))
    assert "BREAK-GLASS access opened by tess" in caplog.text
    p = authenticate(store, tok)
    assert p.role is Role.BREAK_GLASS and p.actor == "break-glass:tess"
    assert check_access(store, p, "session.extract", people).allowed
    with pytest.raises(AccessDenied, match=r"psyche\.read"):
        check_access(store, p, "psyche.read", people)
    with pytest.raises(AccessDenied, match=r"journal\.read"):
        check_access(store, p, "journal.read", people)
    with pytest.raises(AccessDenied, match="token expired"):
        authenticate(store, tok, now=utcnow() + timedelta(minutes=21))
    with store.session() as s:
        actions = [(e.actor, e.action) for e in entries(s, actor="break-glass:tess")]
    assert actions == [("break-glass:tess", "break_glass.open"), ("break-glass:tess", "access.session.extract"),
                       ("break-glass:tess", "access.denied"), ("break-glass:tess", "access.denied")]
    with store.session() as s:
        (opened,) = entries(s, action_prefix="break_glass.open")
    assert opened.payload["reason"] == "controller crashed, bed 3 still stimulating"
