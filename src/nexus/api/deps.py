"""Typed dependencies of the API (after the FastAPI template's ``deps.py``): the facility, the store, who asks.

Every route but health and login takes :data:`PrincipalDep`: a bearer token (``Authorization: Bearer nxt_…``)
checked by :func:`nexus.store.access.authenticate` (unknown, expired and revoked tokens are refused and audited).
What the principal may do is decided by the guard's one policy table (:func:`allow`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from nexus.facility.service import FacilityService
from nexus.guard.consent import Scope
from nexus.guard.policy import AccessDenied, Action, Principal, Role, require
from nexus.safety.extraction import ExtractionMode
from nexus.store.access import authenticate, check_access
from nexus.store.db import Store
from nexus.store.models import Client

_bearer = HTTPBearer(auto_error=False, description="An API token from POST /api/auth/login or 'nexus user token'.")


def get_service(request: Request) -> FacilityService:
    """The running facility."""
    return request.app.state.service


def get_store(request: Request) -> Store:
    """The facility database."""
    return request.app.state.store


ServiceDep = Annotated[FacilityService, Depends(get_service)]
StoreDep = Annotated[Store, Depends(get_store)]


def principal_from_token(store: Store, token: str | None) -> Principal:
    """The principal of a bearer token; 401 when it is missing or refused."""
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "Not logged in: send 'Authorization: Bearer <token>' (POST /api/auth/login gives one).",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        return authenticate(store, token)
    except AccessDenied as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def get_principal(store: StoreDep,
                  cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """Who sends this request (401 without a valid token)."""
    return principal_from_token(store, None if cred is None else cred.credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def allow(store: Store, principal: Principal, action: Action, client_id: str | None = None) -> None:
    """Let the request go on only if the policy allows ``action`` (about ``client_id``); 403 otherwise.

    With a client id the check and the access are audited (:func:`nexus.store.access.check_access`); without
    one (lists, the floor) the table alone decides, and a client's own-data rule refuses.
    """
    if client_id is not None:
        check_access(store, principal, action, client_id)
    else:
        require(principal, action)


def shared_clients(store: Store, principal: Principal, action: Action) -> list[str] | None:
    """For a clinician, the ids of the clients who share with clinicians; None for any other role.

    Each is checked for ``action`` and audited, as a read of that client's record is: what a list may show them.
    """
    if principal.role is not Role.CLINICIAN:
        return None
    with store.session() as s:
        ids = [c.id for c in s.scalars(select(Client).where(Client.erased_at.is_(None)))
               if Scope.CLINICIAN_SHARING in (c.consent_scopes or [])]
    for cid in ids:
        allow(store, principal, action, cid)
    return ids


def own_client(principal: Principal) -> str | None:
    """The client id a client principal is limited to (None for staff)."""
    return principal.client_id if principal.role is Role.CLIENT else None


#: ``?mode=`` of an extraction: how the sleeper leaves (the safe state always comes first).
ModeQuery = Annotated[
    ExtractionMode | None,
    Query(description="gentle: wait for light sleep, then the wake ramp; immediate: the wake sound now; release: "
                      "nothing more is played and the night records on. Left out: the session ends now "
                      "(stimulation stops; wake the sleeper in person)."),
]
