"""Staff users, API tokens, break-glass and audited authorisation, in the database.

Every refusal and every break-glass use is written to the audit log, in its own transaction when the refused
work is rolled back (so a refusal is never lost with it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nexus.core.errors import InvalidInputError, NotFoundError
from nexus.core.log import logger
from nexus.guard.credentials import (
    as_utc,
    check_reason,
    check_ttl,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)
from nexus.guard.policy import AccessDenied, Action, Principal, Role, Verdict, authorize, parse_role
from nexus.store.audit import append
from nexus.store.db import Store
from nexus.store.models import ApiToken, Client, StaffRole, StaffUser, utcnow

_STAFF = {r.value for r in StaffRole}


def add_user(s: Session, username: str, role: str, *, password: str | None = None,
             full_name: str | None = None, actor: str = "system") -> StaffUser:
    """Create a staff user (technician, clinician, auditor or admin), audited as ``user.add``."""
    name = username.strip()
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InvalidInputError(
            f"Invalid username '{username}': use 1-64 letters, digits, '.', '-' or '_'."
        )
    r = parse_role(role)
    if r.value not in _STAFF:
        raise InvalidInputError(
            f"'{role}' is not a staff role: use one of {', '.join(sorted(_STAFF))} (clients are added with "
            "'nexus client add')."
        )
    if s.scalars(select(StaffUser).where(StaffUser.username == name)).first() is not None:
        raise InvalidInputError(f"A user named '{name}' exists already: choose another username.")
    user = StaffUser(username=name, role=StaffRole(r.value), full_name=full_name,
                     password_hash=hash_password(password) if password is not None else None)
    s.add(user)
    s.flush()
    append(s, actor, "user.add", user.id, {"username": name, "role": r.value})
    return user


def list_users(s: Session) -> list[StaffUser]:
    """All staff users, by username."""
    return list(s.scalars(select(StaffUser).order_by(StaffUser.username)))


def get_user(s: Session, username: str) -> StaffUser:
    """A staff user by username (NotFoundError otherwise)."""
    u = s.scalars(select(StaffUser).where(StaffUser.username == username)).first()
    if u is None:
        raise NotFoundError(f"No staff user '{username}'. List them with 'nexus user list'.")
    return u


def login(s: Session, username: str, password: str) -> Principal:
    """Check a password in ``s`` (a success is audited). Raises :class:`AccessDenied` on a wrong name or password.

    No lockout, and a refusal leaves nothing once the caller's transaction rolls back: logins from outside go
    through :func:`nexus.store.staff_login.staff_login` (every attempt audited and committed, the lockout).
    """
    u = s.scalars(select(StaffUser).where(StaffUser.username == username)).first()
    if u is None or not u.active or not verify_password(u.password_hash, password):
        raise AccessDenied("Wrong username or password (or the account is disabled). Check them and retry.")
    append(s, u.username, "auth.login", u.id, {})
    return Principal(u.username, Role(u.role.value))


def issue_token(s: Session, *, username: str | None = None, client_id: str | None = None,
                ttl: timedelta = timedelta(days=30), label: str = "", actor: str = "system") -> str:
    """Make an API token for a staff user or a client; return it (shown once; only its hash is kept)."""
    if (username is None) == (client_id is None):
        raise InvalidInputError("A token belongs to exactly one staff user or one client: give one of them.")
    check_ttl(ttl)
    tok = new_token()
    now = utcnow()
    if username is not None:
        u = get_user(s, username)
        row = ApiToken(token_hash=token_digest(tok), staff_user_id=u.id, role=u.role.value, label=label,
                       created_at=now, expires_at=now + ttl)
        subject = u.id
    else:
        c = get_client(s, client_id or "")
        row = ApiToken(token_hash=token_digest(tok), client_id=c.id, role=Role.CLIENT.value, label=label,
                       created_at=now, expires_at=now + ttl)
        subject = c.id
    s.add(row)
    s.flush()
    append(s, actor, "token.issue", subject, {"token_id": row.id, "role": row.role,
                                                "expires_at": row.expires_at.isoformat()})
    return tok


def break_glass(s: Session, username: str, reason: str, *, ttl: timedelta = timedelta(minutes=30)) -> str:
    """Open time-limited emergency access for ``username``: it can see and extract sessions, nothing else.

    The reason is required, the opening is audited as ``break_glass.open`` and logged as a warning; every use is
    audited under ``break-glass:<username>``.
    """
    text = check_reason(reason)
    check_ttl(ttl, break_glass=True)
    u = get_user(s, username)
    tok = new_token()
    now = utcnow()
    row = ApiToken(token_hash=token_digest(tok), staff_user_id=u.id, role=Role.BREAK_GLASS.value,
                   label="break-glass", reason=text, created_at=now, expires_at=now + ttl)
    s.add(row)
    s.flush()
    append(s, f"break-glass:{u.username}", "break_glass.open", u.id,
           {"token_id": row.id, "reason": text, "expires_at": row.expires_at.isoformat()})
    logger.warning("BREAK-GLASS access opened by %s until %s: %s", u.username, row.expires_at.isoformat(), text)
    return tok


def revoke_token(s: Session, token: str, *, actor: str = "system") -> None:
    """Revoke a token at once (audited)."""
    row = s.scalars(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).first()
    if row is None:
        raise NotFoundError("Unknown token: nothing revoked. Check that you copied the whole token.")
    row.revoked_at = utcnow()
    append(s, actor, "token.revoke", row.staff_user_id or row.client_id, {"token_id": row.id})


def authenticate(store: Store, token: str, *, now: datetime | None = None) -> Principal:
    """The principal a token stands for. Unknown, expired and revoked tokens are refused and audited."""
    at = now or utcnow()
    with store.session() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).first()
        problem = None
        if row is None:
            problem = "unknown or forged token"
        elif row.revoked_at is not None:
            problem = "revoked token"
        elif as_utc(row.expires_at) <= as_utc(at):
            problem = f"token expired at {as_utc(row.expires_at).isoformat(timespec='seconds')}"
        if problem is not None:
            append(s, "anonymous", "auth.refused", row.id if row else None,
                   {"problem": problem.split(" at ")[0]})
    if problem is not None or row is None:
        raise AccessDenied(f"Refused: {problem}. Ask for a new token ('nexus user token USER').")
    with store.session() as s:
        if row.client_id is not None:
            return Principal(f"client:{row.client_id}", Role.CLIENT, client_id=row.client_id)
        u = s.get(StaffUser, row.staff_user_id)
        if u is None or not u.active:
            raise AccessDenied("Refused: the token's user is disabled or gone. Ask an admin.")
        return Principal(u.username, Role(row.role))


def get_client(s: Session, client: str) -> Client:
    """A client by id or code (NotFoundError otherwise)."""
    c = s.get(Client, client) or s.scalars(select(Client).where(Client.code == client)).first()
    if c is None:
        raise NotFoundError(f"No client '{client}'. Check the id or code ('nexus client list').")
    return c


def check_access(store: Store, principal: Principal, action: Action | str, client_id: str | None = None,
                 *, detail: dict[str, Any] | None = None) -> Verdict:
    """Authorise ``principal`` for ``action`` about ``client_id`` through the policy table; audit the answer.

    Refusals are audited (``access.denied``) and raise :class:`AccessDenied`; accesses to client data and all
    break-glass uses are audited as ``access.<action>``.
    """
    with store.session() as s:
        scopes: list[str] = []
        if client_id is not None:
            c = get_client(s, client_id)
            client_id, scopes = c.id, list(c.consent_scopes or [])
        v = authorize(principal, action, client_id=client_id, client_scopes=scopes)
        payload = {"action": str(action), "role": principal.role.value, "reason": v.reason, **(detail or {})}
        if not v.allowed:
            append(s, principal.actor, "access.denied", client_id, payload)
        elif client_id is not None or principal.role is Role.BREAK_GLASS:
            append(s, principal.actor, f"access.{action}", client_id, payload)
            if principal.role is Role.BREAK_GLASS:
                logger.warning("BREAK-GLASS use by %s: %s %s", principal.name, action, client_id or "")
    if not v.allowed:
        raise AccessDenied(f"Refused: {v.reason}. Ask an admin if you need this access.")
    return v


__all__ = [
    "add_user", "authenticate", "break_glass", "check_access", "get_client", "get_user",
    "issue_token", "list_users", "login", "revoke_token",
]
