"""The floor: ``GET /api/beds``, ``GET /api/facility``, ``POST /api/facility/extract-all``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from nexus.api.deps import ModeQuery, PrincipalDep, ServiceDep, StoreDep, allow, own_client, shared_clients
from nexus.api.schemas import Bed, ExtractAll, FacilityStatus
from nexus.guard.policy import Action

router = APIRouter(prefix="/api", tags=["beds"])


@router.get("/beds")
def beds(principal: PrincipalDep, service: ServiceDep, store: StoreDep) -> list[Bed]:
    """Every bed now (a client sees their own bed only, a clinician those of the clients who share with them)."""
    mine = own_client(principal)
    shared = shared_clients(store, principal, Action.SESSION_READ)
    if mine is None and shared is None:
        allow_floor(principal)
    keep = {mine} if mine is not None else None if shared is None else set(shared)
    rows: list[dict[str, Any]] = service.beds()
    return [Bed(**b) for b in rows if keep is None or b["client_id"] in keep]


def allow_floor(principal: Any) -> None:
    """The floor shows every client's bed: staff with session.read."""
    from nexus.guard.policy import require

    require(principal, Action.SESSION_READ)


@router.get("/facility")
def facility(principal: PrincipalDep, service: ServiceDep, store: StoreDep) -> FacilityStatus:
    """The facility's clock, beds running, ticks and lag.

    A clinician's ``clients`` and ``running`` count the beds of the clients who share with clinicians only.
    """
    shared = shared_clients(store, principal, Action.SESSION_READ)
    status = service.status()
    if shared is None:
        allow_floor(principal)
    else:
        keep = set(shared)
        theirs = [b for b in service.beds() if b["client_id"] in keep]
        status |= {"clients": len(theirs), "running": sum(b["state"] == "running" for b in theirs)}
    return FacilityStatus(**status)


@router.post("/facility/extract-all")
def extract_all(principal: PrincipalDep, service: ServiceDep, store: StoreDep, mode: ModeQuery = None) -> ExtractAll:
    """Extract every running bed: stimulation stops at once everywhere, then each leaves by ``mode`` (audited)."""
    allow(store, principal, Action.SESSION_EXTRACT)
    from nexus.store.audit import append

    m = None if mode is None else mode.value
    n = service.extract_all(f"facility-wide extraction by {principal.actor}", mode=m)
    with store.session() as s:
        append(s, principal.actor, "facility.extract_all", None, {"ordered": n, "mode": m})
    return ExtractAll(ordered=n, ended=n if m is None else 0, mode=m)
