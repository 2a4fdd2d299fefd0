"""``POST /api/auth/login`` (staff password → bearer token) and ``GET /api/auth/me``."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, status

from nexus.api.deps import PrincipalDep, StoreDep
from nexus.api.schemas import Login, Me, Token
from nexus.guard.policy import AccessDenied
from nexus.store.access import issue_token, login

router = APIRouter(prefix="/api/auth", tags=["auth"])

#: Life of a console token: one night shift.
CONSOLE_TOKEN_TTL = timedelta(hours=12)


@router.post("/login", responses={401: {"description": "Wrong username or password."}})
def do_login(body: Login, store: StoreDep) -> Token:
    """Check a staff password (audited either way) and issue a 12-hour bearer token."""
    try:
        with store.session() as s:
            who = login(s, body.username, body.password)
            tok = issue_token(s, username=who.name, ttl=CONSOLE_TOKEN_TTL, label="console", actor=who.actor)
    except AccessDenied as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    return Token(token=tok, username=who.name, role=who.role.value)


@router.get("/me")
def me(principal: PrincipalDep) -> Me:
    """Who the token stands for."""
    return Me(name=principal.name, role=principal.role.value, client_id=principal.client_id)
