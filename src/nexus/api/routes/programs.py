"""Dreamscape programs: list, detail, check, and upload (which runs every check of ``nexus dreamscape check``)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from nexus.api.deps import PrincipalDep, StoreDep, allow, own_client, shared_clients
from nexus.api.schemas import CheckResult, Invalid, Problem, ProgramCheckIn, ProgramIn, ProgramOut
from nexus.core.errors import NotFoundError
from nexus.dreamscape.check import CheckReport
from nexus.guard.exploitation import check_program_text
from nexus.guard.policy import Action
from nexus.store.access import get_client
from nexus.store.audit import append
from nexus.store.models import DreamscapeProgram

router = APIRouter(prefix="/api/programs", tags=["programs"])


def _result(rep: CheckReport) -> CheckResult:
    d = rep.to_dict()
    return CheckResult(ok=d["ok"], errors=d["errors"], warnings=d["warnings"])


def _out(p: DreamscapeProgram, *, body: bool = False) -> ProgramOut:
    return ProgramOut(id=p.id, client_id=p.client_id, name=p.name, version=p.version, sha256=p.sha256,
                      created_at=p.created_at, body=p.body if body else None)


@router.get("")
def list_programs(principal: PrincipalDep, store: StoreDep,
                  limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[ProgramOut]:
    """Stored programs, newest first (a client sees their own, a clinician those of who share with them)."""
    mine = own_client(principal)
    shared = shared_clients(store, principal, Action.PROGRAM_READ)
    if mine is None and shared is None:
        allow(store, principal, Action.PROGRAM_READ)
    q = select(DreamscapeProgram)
    if mine is not None:
        q = q.where(DreamscapeProgram.client_id == mine)
    if shared is not None:
        q = q.where(DreamscapeProgram.client_id.in_(shared))
    with store.session() as s:
        rows = s.scalars(q.order_by(DreamscapeProgram.created_at.desc(), DreamscapeProgram.id).limit(limit))
        return [_out(p) for p in rows]


@router.get("/{program}", responses={404: {"description": "No such program."}})
def get_program(program: str, principal: PrincipalDep, store: StoreDep) -> ProgramOut:
    """One program version with its document."""
    with store.session() as s:
        p = s.get(DreamscapeProgram, program)
        if p is None:
            raise NotFoundError(f"No program '{program}'. List them with GET /api/programs.")
    if p.client_id is not None:
        allow(store, principal, Action.PROGRAM_READ, p.client_id)
    else:
        allow(store, principal, Action.PROGRAM_READ)
    return _out(p, body=True)


@router.post("/check")
def check(body: ProgramCheckIn, principal: PrincipalDep, store: StoreDep) -> CheckResult:
    """Run the checks of ``nexus dreamscape check`` on a program; nothing is stored."""
    allow(store, principal, Action.PROGRAM_CHANGE)
    return _result(check_program_text(body.text, source="upload", fmt=body.format))


@router.post("", status_code=201, response_model=ProgramOut,
             responses={404: {"description": "No such client.", "model": Problem},
                        422: {"description": "The program failed its checks (the report says why), or the "
                                             "request is invalid (the detail says which field).",
                              "model": CheckResult | Invalid}})
def upload(body: ProgramIn, principal: PrincipalDep, store: StoreDep) -> ProgramOut | JSONResponse:
    """Store a new version of a client's program, only if it passes every check of ``dreamscape check``."""
    with store.session() as s:
        client_id = get_client(s, body.client_id).id
    allow(store, principal, Action.PROGRAM_CHANGE, client_id)
    rep = check_program_text(body.text, source="upload", fmt=body.format)
    if not rep.ok or rep.program is None:
        return JSONResponse(_result(rep).model_dump(), status_code=422)
    doc = rep.program.model_dump(mode="json", exclude_none=True)
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    with store.session() as s:
        last = s.scalar(select(func.max(DreamscapeProgram.version)).where(
            DreamscapeProgram.client_id == client_id, DreamscapeProgram.name == rep.program.name))
        row = DreamscapeProgram(client_id=client_id, name=rep.program.name, version=(last or 0) + 1, body=doc,
                                sha256=digest)
        s.add(row)
        s.flush()
        append(s, principal.actor, "program.upload", client_id, {"program_id": row.id, "sha256": digest})
        out = _out(row, body=True)
    out.check = _result(rep)
    return out
