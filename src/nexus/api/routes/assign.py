"""Bed assignment: an unassigned bed (a device that matched no client) given to its client, as ``nexus assign``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from nexus.api.deps import PrincipalDep, ServiceDep, StoreDep, allow
from nexus.api.routes.sessions import _out, _row
from nexus.api.schemas import SessionOut
from nexus.guard.policy import Action

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


class AssignIn(BaseModel):
    """Whose bed it is."""

    client: str = Field(min_length=1, max_length=64, description="The client's code (e.g. C-0001).")


@router.post("/{session}/assign", responses={404: {"description": "No such session or client."},
                                                409: {"description": "The session already belongs to a client, or "
                                                                     "the client has not consented to recording."}})
def assign_session(session: str, body: Annotated[AssignIn, Body()], principal: PrincipalDep, store: StoreDep,
                   service: ServiceDep) -> SessionOut:
    """Assign a session recorded from a device that matched no client to ``client`` (technicians and admins).

    The same checks as ``nexus assign``: only an unassigned bed's session, a client that exists and has
    consented to recording; audited (``session.assigned``). A bed running in this facility shows its client
    from now on, and its client's consent applies from its next step.
    """
    from nexus.facility.record import assign_bed

    row, _ = _row(store, session)
    allow(store, principal, Action.SESSION_ASSIGN, row.client_id)  # the policy, checked and audited
    client_id = assign_bed(store, session, body.client, actor=principal.actor)
    live = getattr(service, "assigned", None)
    if live is not None and service.has_session(session):
        live(session, body.client, client_id)
    row, code = _row(store, session)
    return _out(row, code, service.bed(session) if service.has_session(session) else None)
