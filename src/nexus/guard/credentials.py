"""Passwords (argon2id through argon2-cffi), API tokens and break-glass limits — no database here.

Only a token's SHA-256 is stored: the token is shown once, when it is made. Tokens always expire.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from nexus.core.errors import InvalidInputError

TOKEN_PREFIX = "nxt_"
MAX_TOKEN_TTL = timedelta(days=90)
"""Longest life of an ordinary API token."""
BREAK_GLASS_MAX_TTL = timedelta(hours=1)
"""Longest life of a break-glass token."""
BREAK_GLASS_MIN_REASON = 15
"""Shortest accepted break-glass reason, in characters (a real sentence, not 'x')."""
MIN_PASSWORD = 12
LOGIN_ATTEMPTS = 5
"""Wrong passwords in a row after which a client's portal login is locked."""
LOGIN_LOCK = timedelta(minutes=15)
"""How long a locked portal login stays locked."""
INVITE_PREFIX = "nxi_"
INVITE_TTL = timedelta(days=7)
"""Life of a client's one-time enrolment code."""

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (at least 12 characters)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInputError(
            f"Password too short ({len(password)} characters): use at least {MIN_PASSWORD}, e.g. four random words."
        )
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (False for no hash or a damaged one)."""
    if not stored_hash:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A new random API token (shown once; store only :func:`token_digest`)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_invite() -> str:
    """A new one-time enrolment code for a client (shown once; store only :func:`token_digest`)."""
    return INVITE_PREFIX + secrets.token_urlsafe(12)


def token_digest(token: str) -> str:
    """SHA-256 (hex) of a token: what the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_ttl(ttl: timedelta, *, break_glass: bool = False) -> timedelta:
    """Check a token's life: positive and at most 90 days (1 hour for break-glass)."""
    top = BREAK_GLASS_MAX_TTL if break_glass else MAX_TOKEN_TTL
    if ttl <= timedelta(0) or ttl > top:
        kind = "break-glass access" if break_glass else "a token"
        raise InvalidInputError(
            f"Invalid lifetime for {kind}: expected more than 0 and at most {top}, got {ttl}. Give a shorter one."
        )
    return ttl


def check_reason(reason: str | None) -> str:
    """A break-glass reason: required, a real sentence."""
    text = " ".join((reason or "").split())
    if len(text) < BREAK_GLASS_MIN_REASON:
        raise InvalidInputError(
            f"Break-glass needs a reason of at least {BREAK_GLASS_MIN_REASON} characters saying what went wrong "
            f"(got '{text}'), e.g. 'controller down, bed 4 cannot be extracted from the console'."
        )
    return text


def as_utc(ts: datetime) -> datetime:
    """A timestamp as aware UTC (SQLite returns naive ones)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
