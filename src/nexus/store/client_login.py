"""A client's portal login: a one-time enrolment invitation, a password (argon2id, as staff), a lockout.

The facility invites a client (:func:`invite_client`: a one-time code, shown once, valid 7 days) or sets a password
for them (:func:`set_client_password`). With the code the client chooses a password (:func:`enrol_client`) and
then logs in with their client code and password (:func:`client_login`). After :data:`LOGIN_ATTEMPTS` wrong
passwords or codes in a row the login is locked for :data:`LOGIN_LOCK`; a good password resets the count, an
invitation or a password from the facility lifts the lock. Every attempt is audited: a refusal and its count are
committed even though the login fails.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from secrets import compare_digest

from sqlalchemy import select
from sqlalchemy.orm import Session

from nexus.core.errors import StateError
from nexus.guard.credentials import (
    INVITE_TTL,
    LOGIN_ATTEMPTS,
    LOGIN_LOCK,
    as_utc,
    check_ttl,
    hash_password,
    new_invite,
    token_digest,
    verify_password,
)
from nexus.guard.policy import AccessDenied, Principal, Role
from nexus.store.access import get_client
from nexus.store.audit import append
from nexus.store.db import Store
from nexus.store.models import Client, utcnow

WRONG = "Wrong client code or password. Check them and retry (or ask the facility for a new invitation)."


class LoginLocked(AccessDenied):
    """Too many wrong attempts: the client's login is locked until :attr:`until` (UTC)."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(f"Too many wrong attempts: this login is locked until "
                         f"{until.strftime('%H:%M')} UTC. Wait until then, or ask the facility for a new invitation.")


@cache
def _decoy_hash() -> str:
    """An argon2id hash of nothing anyone types: checked for unknown codes, so they take as long as known ones."""
    return hash_password(new_invite())


def _lift_lock(c: Client) -> None:
    c.failed_logins, c.locked_until = 0, None


def _live(s: Session, client: str) -> Client:
    c = get_client(s, client)
    if c.erased_at is not None:
        raise StateError(f"Client '{client}' was erased: they cannot log in any more.")
    return c


def invite_client(s: Session, client: str, *, ttl: timedelta = INVITE_TTL,
                  actor: str = "system") -> tuple[str, datetime]:
    """A one-time enrolment code for ``client`` (id or code) and its expiry; an earlier code stops working."""
    check_ttl(ttl)
    c = _live(s, client)
    code = new_invite()
    c.invite_hash, c.invite_expires_at = token_digest(code), utcnow() + ttl
    _lift_lock(c)
    append(s, actor, "client.invite", c.id, {"expires_at": c.invite_expires_at.isoformat()})
    return code, c.invite_expires_at


def set_client_password(s: Session, client: str, password: str, *, actor: str = "system") -> None:
    """Set ``client``'s portal password (at least 12 characters; argon2id); any open invitation ends."""
    h = hash_password(password)
    c = _live(s, client)
    c.password_hash, c.invite_hash, c.invite_expires_at = h, None, None
    _lift_lock(c)
    append(s, actor, "client.password", c.id, {})


def _attempt(store: Store, code: str, check: Callable[[Session, Client, datetime], bool], what: str,
             now: datetime | None) -> Principal:
    """Run one login attempt for the client of ``code``; count and audit a failure, commit it, then refuse."""
    at = as_utc(now or utcnow())
    locked: datetime | None = None
    with store.session() as s:
        c = s.scalars(select(Client).where(Client.code == code, Client.erased_at.is_(None))).first()
        if c is not None and c.locked_until is not None and as_utc(c.locked_until) > at:
            locked = as_utc(c.locked_until)
            append(s, "anonymous", "auth.refused", c.id, {"problem": "locked", "via": what})
        elif c is not None and check(s, c, at):
            _lift_lock(c)
            who = Principal(f"client:{c.id}", Role.CLIENT, client_id=c.id)
            append(s, who.actor, "auth.login", c.id, {"via": what})
            return who
        elif c is None:
            verify_password(_decoy_hash(), code)  # as long as a wrong password: codes cannot be told by timing
            append(s, "anonymous", "auth.refused", None, {"problem": "unknown client code", "via": what})
        else:
            c.failed_logins = (c.failed_logins or 0) + 1
            append(s, "anonymous", "auth.refused", c.id, {"problem": f"wrong {what}", "in_a_row": c.failed_logins})
            if c.failed_logins >= LOGIN_ATTEMPTS:
                c.failed_logins, c.locked_until = 0, at + LOGIN_LOCK
                locked = c.locked_until
                append(s, "system", "auth.locked", c.id, {"until": locked.isoformat()})
    if locked is not None:
        raise LoginLocked(locked)
    raise AccessDenied(WRONG)


def client_login(store: Store, code: str, password: str, *, now: datetime | None = None) -> Principal:
    """The client principal of ``code`` and ``password``; :class:`AccessDenied` (or :class:`LoginLocked`)."""
    def check(s: Session, c: Client, at: datetime) -> bool:
        # a client without a password yet costs the same check as one with (no telling who enrolled)
        return verify_password(c.password_hash or _decoy_hash(), password) and c.password_hash is not None

    return _attempt(store, code, check, "password", now)


def enrol_client(store: Store, code: str, invitation: str, password: str, *,
                 now: datetime | None = None) -> Principal:
    """Set the password of client ``code`` with their one-time ``invitation``; used once, then it is gone."""
    h = hash_password(password)  # a too-short password is refused before the invitation is spent

    def accept(s: Session, c: Client, at: datetime) -> bool:
        if (c.invite_hash is None or c.invite_expires_at is None or as_utc(c.invite_expires_at) <= at
                or not compare_digest(token_digest(invitation.strip()), c.invite_hash)):
            return False
        c.password_hash, c.invite_hash, c.invite_expires_at = h, None, None
        append(s, f"client:{c.id}", "client.enrol", c.id, {})
        return True

    return _attempt(store, code, accept, "invitation", now)


__all__ = ["LoginLocked", "client_login", "enrol_client", "invite_client", "set_client_password"]
