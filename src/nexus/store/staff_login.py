"""A staff login (admin, technician, clinician, auditor) with a lockout per (login, source address).

After :data:`STAFF_LOGIN_ATTEMPTS` wrong passwords in a row *from one address* that address may not try that login
again for :data:`STAFF_LOCK` (5 minutes); other addresses are not affected. A good password from the address, the
end of the lock, or an admin's :func:`unlock_staff` (``nexus user unlock``) starts the count again. Every attempt
is audited and committed, refusals included; the state lives in the audit log itself (``auth.refused``,
``auth.locked``, ``auth.unlock`` entries under the subject ``login:<username>``), so it needs no table of its own,
survives a restart and cannot be edited quietly.

Why per address and short, unlike a client's 15-minute lock on the login itself: staff logins run the night. A
technician who cannot log in cannot see or acknowledge an alarm (IEC 60601-1-8), so anyone who knows the name
``tech1`` must not be able to lock the night's technician out from another machine; hospital identity systems
do the same (Microsoft Entra "smart lockout" locks the unfamiliar location, not the account), and NIST SP 800-63B
§5.2.2 asks for rate limiting, not account lockout, of at most 100 failures. Guessing stays slow: 5 tries per
5 minutes per address against argon2id passwords of at least 12 characters. Unknown usernames are counted and
locked alike (the answer does not tell which names exist) and cost one argon2id check like a wrong password.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from nexus.guard.credentials import LOGIN_ATTEMPTS, as_utc, hash_password, new_invite, verify_password
from nexus.guard.policy import AccessDenied, Principal, Role
from nexus.store.access import get_user
from nexus.store.audit import append
from nexus.store.client_login import LoginLocked
from nexus.store.db import Store
from nexus.store.models import AuditEntry, StaffUser, utcnow

#: Wrong passwords in a row from one address before that address is locked out of the login.
STAFF_LOGIN_ATTEMPTS = LOGIN_ATTEMPTS
#: How long the address is locked out (short: a back-off, not a ban).
STAFF_LOCK = timedelta(minutes=5)
#: How far back refusals count (older ones are forgotten).
STAFF_WINDOW = timedelta(minutes=15)

WRONG = "Wrong username or password (or the account is disabled). Check them and retry."
_STATE = ("auth.refused", "auth.locked", "auth.unlock", "auth.login")


class StaffLoginLocked(LoginLocked):
    """Too many wrong staff passwords from this address: it may retry at :attr:`until` (UTC)."""

    def __init__(self, until: datetime) -> None:
        super().__init__(until)
        self.message = (f"Too many wrong passwords from this address: retry after {until.strftime('%H:%M:%S')} UTC, "
                        f"or ask an admin to unlock the login ('nexus user unlock USERNAME').")

    def __str__(self) -> str:
        return self.message


@cache
def _decoy_hash() -> str:
    """An argon2id hash checked for unknown usernames, so they take as long as known ones."""
    return hash_password(new_invite())


def _subject(username: str) -> str:
    return f"login:{username.strip().lower()}"[:128]


def _lock_state(s: Session, username: str, user_id: str | None, source: str,
                at: datetime) -> tuple[int, datetime | None]:
    """(wrong attempts in a row from ``source``, end of its lock if locked now), read back from the audit log."""
    subjects = [_subject(username)] + ([user_id] if user_id else [])
    rows = s.scalars(select(AuditEntry).where(AuditEntry.subject.in_(subjects), AuditEntry.action.in_(_STATE),
                                              AuditEntry.ts >= at - STAFF_WINDOW)
                     .order_by(AuditEntry.seq.desc()).limit(4 * STAFF_LOGIN_ATTEMPTS)).all()
    wrong = 0
    for e in rows:  # newest first, up to what started the count again
        p = e.payload or {}
        if e.action == "auth.unlock":
            break
        if p.get("source") != source:
            continue
        if e.action == "auth.locked":
            until = datetime.fromisoformat(str(p["until"]))
            return (0, until) if until > at else (0, None)
        if e.action == "auth.login":
            break
        if e.action == "auth.refused" and p.get("problem") == "wrong password":
            wrong += 1
    return wrong, None


def staff_login(store: Store, username: str, password: str, *, source: str,
                now: datetime | None = None) -> Principal:
    """The staff principal of ``username`` and ``password`` tried from ``source`` (an IP address).

    Raises :class:`AccessDenied` on a wrong name or password, :class:`StaffLoginLocked` while ``source`` is locked
    out of this login. The attempt and its outcome are audited and committed either way.
    """
    at = as_utc(now or utcnow())
    locked: datetime | None = None
    with store.session() as s:
        u = s.scalars(select(StaffUser).where(StaffUser.username == username)).first()
        wrong, locked = _lock_state(s, username, u.id if u else None, source, at)
        if locked is not None:
            append(s, "anonymous", "auth.refused", _subject(username), {"problem": "locked", "source": source})
        else:
            ok = verify_password(u.password_hash if u and u.password_hash else _decoy_hash(), password)
            if ok and u is not None and u.active and u.password_hash is not None:
                append(s, u.username, "auth.login", u.id, {"source": source})
                return Principal(u.username, Role(u.role.value))
            wrong += 1
            append(s, "anonymous", "auth.refused", _subject(username),
                   {"problem": "wrong password", "source": source, "in_a_row": wrong})
            if wrong >= STAFF_LOGIN_ATTEMPTS:
                locked = at + STAFF_LOCK
                append(s, "system", "auth.locked", _subject(username),
                       {"source": source, "until": locked.isoformat()})
    if locked is not None:
        raise StaffLoginLocked(locked)
    raise AccessDenied(WRONG)


def unlock_staff(s: Session, username: str, *, actor: str) -> None:
    """Lift every address's lock and count on ``username``'s login (an admin's act, audited)."""
    u = get_user(s, username)
    append(s, actor, "auth.unlock", _subject(u.username), {})


__all__ = ["STAFF_LOCK", "STAFF_LOGIN_ATTEMPTS", "StaffLoginLocked", "staff_login", "unlock_staff"]
