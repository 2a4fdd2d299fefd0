"""Logins: ``POST /api/auth/login`` (staff), ``/api/auth/client/login`` and ``/client/enrol`` (clients).

Each gives a bearer token; ``GET /api/auth/me`` says who a token stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, status

from nexus.api.deps import PrincipalDep, StoreDep
from nexus.api.schemas import ClientEnrol, ClientLogin, Login, Me, Problem, Token
from nexus.guard.policy import AccessDenied, Principal
from nexus.store.access import issue_token
from nexus.store.client_login import LoginLocked, client_login, enrol_client
from nexus.store.db import Store
from nexus.store.models import utcnow
from nexus.store.staff_login import staff_login

router = APIRouter(prefix="/api/auth", tags=["auth"])

#: Life of a console token: one night shift.
CONSOLE_TOKEN_TTL = timedelta(hours=12)
#: Life of a client's portal token.
PORTAL_TOKEN_TTL = timedelta(hours=12)
#: What a client's login may answer besides a token.
CLIENT_REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Wrong client code, password or invitation."},
    429: {"model": Problem, "description": "Too many wrong attempts: locked for a while (see Retry-After)."},
}


#: What a staff login may answer besides a token.
STAFF_REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Wrong username or password."},
    429: {"model": Problem, "description": "Too many wrong passwords from this address: retry after Retry-After."},
}


def _locked(exc: LoginLocked) -> HTTPException:
    """429 with Retry-After (seconds) for a locked login."""
    wait = max(1, int((exc.until - utcnow()).total_seconds()))
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(wait)})


@router.post("/login", responses=STAFF_REFUSALS)
def do_login(body: Login, request: Request, store: StoreDep) -> Token:
    """Check a staff password and issue a 12-hour bearer token (audited; 5 wrong in a row: 429 for 5 minutes).

    The lock holds the requesting address only (see :mod:`nexus.store.staff_login`).
    """
    source = request.client.host if request.client else "unknown"
    try:
        who = staff_login(store, body.username, body.password, source=source)
    except LoginLocked as exc:
        raise _locked(exc) from None
    except AccessDenied as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    with store.session() as s:
        tok = issue_token(s, username=who.name, ttl=CONSOLE_TOKEN_TTL, label="console", actor=who.actor)
    return Token(token=tok, username=who.name, role=who.role.value)


def _portal_token(store: Store, code: str, check: Callable[[], Principal]) -> Token:
    """A 12-hour portal token for the client that ``check`` lets in; 401 or 429 (with Retry-After) otherwise."""
    try:
        who = check()
    except LoginLocked as exc:
        raise _locked(exc) from None
    except AccessDenied as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    with store.session() as s:
        tok = issue_token(s, client_id=who.client_id, ttl=PORTAL_TOKEN_TTL, label="portal", actor=who.actor)
    return Token(token=tok, username=code, role=who.role.value)


@router.post("/client/login", responses=CLIENT_REFUSALS)
def do_client_login(body: ClientLogin, store: StoreDep) -> Token:
    """A client's portal login: client code and password → a 12-hour token for their own data (audited)."""
    return _portal_token(store, body.code, lambda: client_login(store, body.code, body.password))


@router.post("/client/enrol", responses=CLIENT_REFUSALS)
def do_client_enrol(body: ClientEnrol, store: StoreDep) -> Token:
    """A client's first login: the facility's one-time invitation code sets their password, then logs them in."""
    return _portal_token(store, body.code, lambda: enrol_client(store, body.code, body.invitation, body.password))


@router.get("/me")
def me(principal: PrincipalDep) -> Me:
    """Who the token stands for."""
    return Me(name=principal.name, role=principal.role.value, client_id=principal.client_id)
