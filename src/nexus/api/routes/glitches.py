"""Glitches and alarms: list (psyche detail only with the client's consent) and acknowledge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from nexus.api.deps import PrincipalDep, ServiceDep, StoreDep, allow, own_client, shared_clients
from nexus.api.schemas import AckResult, Alarm
from nexus.core.errors import NotFoundError
from nexus.guard.policy import Action, Principal, authorize
from nexus.store.models import Client, GlitchRow, NightSession, StaffUser

router = APIRouter(prefix="/api/glitches", tags=["glitches"])

#: Acknowledging an alarm is part of running sessions (the policy table has no separate action for it).
ACK_ACTION = Action.SESSION_START


def _message(principal: Principal, g: GlitchRow, client_id: str, scopes: list[str]) -> str:
    if g.category.value != "psyche":
        return g.message
    if authorize(principal, Action.PSYCHE_READ, client_id=client_id, client_scopes=scopes).allowed:
        return g.message
    return "Psyche alarm: the detail needs the client's psyche_monitoring consent."


@router.get("")
def list_glitches(principal: PrincipalDep, store: StoreDep,
                  open_only: Annotated[bool, Query(alias="open", description="Only unacknowledged.")] = False,
                  session: Annotated[str | None, Query(max_length=64)] = None,
                  limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[Alarm]:
    """Glitches raised as alarms, newest first (a client sees their own, a clinician those of who share with them)."""
    mine = own_client(principal)
    shared = shared_clients(store, principal, Action.SESSION_READ)
    if mine is None and shared is None:
        allow(store, principal, Action.SESSION_READ)
    q = (select(GlitchRow, NightSession.client_id, Client.consent_scopes, StaffUser.username)
         .join(NightSession, NightSession.id == GlitchRow.session_id)
         .join(Client, Client.id == NightSession.client_id)
         .outerjoin(StaffUser, StaffUser.id == GlitchRow.acknowledged_by))
    if mine is not None:
        q = q.where(NightSession.client_id == mine)
    if shared is not None:
        q = q.where(NightSession.client_id.in_(shared))
    if open_only:
        q = q.where(GlitchRow.acknowledged_at.is_(None))
    if session is not None:
        q = q.where(GlitchRow.session_id == session)
    with store.session() as s:
        rows = s.execute(q.order_by(GlitchRow.id.desc()).limit(limit)).all()
    return [Alarm(id=g.id, session=g.session_id, onset_s=g.onset_s, kind=g.kind, category=g.category.value,
                  priority=g.priority.value, channel=g.channel, message=_message(principal, g, cid, list(sc or [])),
                  acknowledged=g.acknowledged_at is not None, acknowledged_by=who)
            for g, cid, sc, who in rows]


@router.post("/{glitch_id}/acknowledge", responses={404: {"description": "No such alarm."}})
def acknowledge(glitch_id: Annotated[int, Path(ge=1, le=2**31 - 1, description="The alarm's id.")],
                principal: PrincipalDep, store: StoreDep, service: ServiceDep) -> AckResult:
    """Acknowledge an alarm: the bed stops signalling it; the glitch stays on record with who and when."""
    with store.session() as s:
        g = s.get(GlitchRow, glitch_id)
        if g is None:
            raise NotFoundError(f"No alarm {glitch_id}. List them with GET /api/glitches.")
        owner = s.get(NightSession, g.session_id)
        user = s.scalars(select(StaffUser).where(StaffUser.username == principal.name)).first()
    allow(store, principal, ACK_ACTION, None if owner is None else owner.client_id)
    out = service.acknowledge(glitch_id, user_id=None if user is None else user.id, by=principal.name)
    return AckResult(id=glitch_id, acknowledged=True, acknowledged_by=out.get("acknowledged_by"))
