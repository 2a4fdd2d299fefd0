"""Clients: list and detail (personal fields need ``client.read``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from nexus.api.deps import PrincipalDep, StoreDep, allow, own_client, shared_clients
from nexus.api.schemas import ClientOut, Invitation
from nexus.guard.policy import Action
from nexus.store.access import get_client
from nexus.store.client_login import invite_client
from nexus.store.models import Client

router = APIRouter(prefix="/api/clients", tags=["clients"])


def _out(c: Client) -> ClientOut:
    return ClientOut(id=c.id, code=c.code, display_name=c.display_name,
                     consent_scopes=[str(x) for x in c.consent_scopes or []], created_at=c.created_at)


@router.get("")
def list_clients(principal: PrincipalDep, store: StoreDep,
                 limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[ClientOut]:
    """Clients, newest first (a client sees only themselves, a clinician those who share with clinicians)."""
    mine = own_client(principal)
    shared = shared_clients(store, principal, Action.CLIENT_READ)
    if mine is None and shared is None:
        allow(store, principal, Action.CLIENT_READ)
    q = select(Client).where(Client.erased_at.is_(None))
    if mine is not None:
        q = q.where(Client.id == mine)
    if shared is not None:
        q = q.where(Client.id.in_(shared))
    with store.session() as s:
        return [_out(c) for c in s.scalars(q.order_by(Client.created_at.desc(), Client.code).limit(limit))]


@router.get("/{client}", responses={404: {"description": "No such client."}})
def get_one(client: str, principal: PrincipalDep, store: StoreDep) -> ClientOut:
    """One client, by id or code (audited)."""
    with store.session() as s:
        c = get_client(s, client)
    allow(store, principal, Action.CLIENT_READ, c.id)
    return _out(c)


@router.post("/{client}/invitation", responses={404: {"description": "No such client."},
                                                409: {"description": "The client was erased."}})
def invite(client: str, principal: PrincipalDep, store: StoreDep) -> Invitation:
    """A one-time code (valid 7 days, shown once) with which the client sets their portal password (admin)."""
    with store.session() as s:
        cid = get_client(s, client).id
    allow(store, principal, Action.USER_MANAGE, cid)  # a refusal is audited
    with store.session() as s:
        code, expires = invite_client(s, cid, actor=principal.actor)
    return Invitation(client_id=cid, code=code, expires_at=expires)
