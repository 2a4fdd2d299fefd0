"""Sessions: list, detail, hypnogram so far, events, decisions, extraction, program change."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from nexus.api.deps import ModeQuery, PrincipalDep, ServiceDep, StoreDep, allow, own_client, shared_clients
from nexus.api.schemas import Bed, BedEvent, CheckResult, Decision, Hypnogram, Problem, ProgramCheckIn, SessionOut
from nexus.core.errors import NotFoundError, StateError
from nexus.core.lifecycle import FINAL_STATES, SessionState
from nexus.facility.service import FacilityService
from nexus.guard.policy import Action, Principal
from nexus.store.db import Store
from nexus.store.models import Client, DecisionRow, Event, HypnogramRow, NightSession

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


def _row(store: Store, session: str) -> tuple[NightSession, str]:
    with store.session() as s:
        row = s.get(NightSession, session)
        if row is None:
            raise NotFoundError(f"No session '{session}'. List them with GET /api/sessions.")
        code = s.get(Client, row.client_id)
        return row, code.code if code is not None else ""


def _out(row: NightSession, code: str, live: dict[str, Any] | None) -> SessionOut:
    return SessionOut(id=row.id, client_id=row.client_id, client_code=code, bed=row.bed, mode=row.mode.value,
                      state=row.state.value, program_id=row.program_id, source=row.source,
                      end_reason=row.end_reason, started_at=row.started_at, ended_at=row.ended_at,
                      summary=row.summary, live=None if live is None else Bed(**live))


def _checked(store: Store, principal: Principal, session: str, action: Action) -> NightSession:
    row, _ = _row(store, session)
    allow(store, principal, action, row.client_id)
    return row


@router.get("")
def list_sessions(principal: PrincipalDep, store: StoreDep,
                  state: Annotated[SessionState | None, Query(description="Only this state.")] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[SessionOut]:
    """Sessions, newest first (a client sees their own, a clinician those of the clients who share with them)."""
    mine = own_client(principal)
    shared = shared_clients(store, principal, Action.SESSION_READ)
    if mine is None and shared is None:
        allow(store, principal, Action.SESSION_READ)
    q = select(NightSession, Client.code).join(Client, Client.id == NightSession.client_id)
    if mine is not None:
        q = q.where(NightSession.client_id == mine)
    if shared is not None:
        q = q.where(NightSession.client_id.in_(shared))
    if state is not None:
        q = q.where(NightSession.state == state)
    q = q.order_by(NightSession.created_at.desc(), NightSession.id).limit(limit)
    with store.session() as s:
        rows = s.execute(q).all()
    return [_out(r, code, None) for r, code in rows]


@router.get("/{session}", responses={404: {"description": "No such session."}})
def get_session(session: str, principal: PrincipalDep, store: StoreDep, service: ServiceDep) -> SessionOut:
    """One session, with its live bed when it runs in this facility."""
    row, code = _row(store, session)
    allow(store, principal, Action.SESSION_READ, row.client_id)
    return _out(row, code, service.bed(session) if service.has_session(session) else None)


@router.get("/{session}/hypnogram", responses={404: {"description": "No such session."}})
def hypnogram(session: str, principal: PrincipalDep, store: StoreDep, service: ServiceDep) -> Hypnogram:
    """The live hypnogram so far (or the stored one of an earlier night)."""
    _checked(store, principal, session, Action.SIGNALS_READ)
    if service.has_session(session):
        return Hypnogram(**service.hypnogram(session))
    with store.session() as s:
        h = s.scalars(select(HypnogramRow).where(HypnogramRow.session_id == session)
                      .order_by(HypnogramRow.id.desc())).first()
        if h is None:
            return Hypnogram(session=session, epoch_s=30.0, stages=[], confidence=[])
        return Hypnogram(session=session, epoch_s=h.epoch_s, stages=list(h.stages),
                         confidence=list(h.confidence or [None] * len(h.stages)))


@router.get("/{session}/events", responses={404: {"description": "No such session."}})
def events(session: str, principal: PrincipalDep, store: StoreDep, service: ServiceDep) -> list[BedEvent]:
    """The session's latest events (spindles, slow oscillations, arousals, …), oldest first."""
    _checked(store, principal, session, Action.SIGNALS_READ)
    if service.has_session(session):
        return [BedEvent(**e) for e in service.events(session)]
    with store.session() as s:
        rows = s.scalars(select(Event).where(Event.session_id == session).order_by(Event.onset_s).limit(1000))
        return [BedEvent(t_s=e.onset_s, kind=e.description, channel=e.channel) for e in rows]


@router.get("/{session}/decisions", responses={404: {"description": "No such session."}})
def decisions(session: str, principal: PrincipalDep, store: StoreDep, service: ServiceDep) -> list[Decision]:
    """The dreamscape controller's latest decisions with their reasons, oldest first."""
    _checked(store, principal, session, Action.DECISIONS_READ)
    if service.has_session(session):
        live = service.decisions(session)
        if live or service.bed(session)["state"] == "running":
            return [Decision(**d) for d in live]
    with store.session() as s:
        rows = s.scalars(select(DecisionRow).where(DecisionRow.session_id == session)
                         .order_by(DecisionRow.t_s).limit(1000))
        return [Decision(t_s=d.t_s, kind=d.kind, command=d.command, reason=d.reason) for d in rows]


@router.get("/{session}/report", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}}, "description": "The night report (one HTML page)."},
                       404: {"description": "No such session."},
                       409: {"description": "The night has not started yet.", "model": Problem}})
def report(session: str, principal: PrincipalDep, store: StoreDep, service: ServiceDep) -> HTMLResponse:
    """The night report of a session (``nexus report SESSION``): hypnogram, stages, events, glitches.

    A night still running in this facility gets the report of the night so far: its live hypnogram,
    latest decisions and event counts (the page says so). Psyche alarms keep their detail only for
    whoever may read it (the client, or staff with the client's ``psyche_monitoring`` consent).
    """
    row = _checked(store, principal, session, Action.SIGNALS_READ)
    allow(store, principal, Action.DECISIONS_READ, row.client_id)
    from nexus.guard.policy import authorize
    from nexus.reports.document import to_html
    from nexus.reports.night import LiveBed, build_night_report, night_from_session

    live = None
    if row.state not in FINAL_STATES:
        if not service.has_session(session):
            raise StateError(f"Session '{session}' is {row.state.value} and runs in no bed of this facility: its "
                             "report is ready once the night has ended.")
        bed = service.bed(session)
        live = LiveBed(service.hypnogram(session), service.decisions(session),
                       dict(bed.get("event_counts") or {}), command_counts=dict(bed.get("commands") or {}))
    night = night_from_session(store, session, detect=False, live=live)
    with store.session() as s:
        c = s.get(Client, row.client_id)
        scopes = list(c.consent_scopes or []) if c is not None else []
    if not authorize(principal, Action.PSYCHE_READ, client_id=row.client_id, client_scopes=scopes).allowed:
        for g in night.glitches:
            if g.get("category") == "psyche":
                g["message"] = "Psyche alarm: the detail needs the client's psyche_monitoring consent."
    return HTMLResponse(to_html(build_night_report(night)))


@router.post("/{session}/extract", responses={404: {"description": "No such session."},
                                                 409: {"description": "The session is not running."}})
def extract(session: str, principal: PrincipalDep, store: StoreDep, service: ServiceDep,
            mode: ModeQuery = None) -> Bed:
    """Extract the session: stimulation stops at once (the sound output goes safe), then it leaves by ``mode``.

    The same order as ``nexus extract`` (the supervisor's extraction; conflicting orders resolve to the safest).
    """
    row = _checked(store, principal, session, Action.SESSION_EXTRACT)
    _live(service, session)
    m = None if mode is None else mode.value
    out = service.extract(session, f"extracted by {principal.actor}", mode=m)
    from nexus.store.audit import append

    with store.session() as s:
        append(s, principal.actor, "session.extract", row.client_id, {"session": session, "mode": m})
    return Bed(**out)


@router.put("/{session}/program", responses={404: {"description": "No such session."},
                                                409: {"description": "The session is not running."}})
def change_program(session: str, body: Annotated[ProgramCheckIn, Body()], principal: PrincipalDep,
                   store: StoreDep, service: ServiceDep) -> CheckResult:
    """Replace a running session's program if, and only if, it passes every check (else it keeps the old one)."""
    _checked(store, principal, session, Action.PROGRAM_CHANGE)
    _live(service, session)
    rep = service.update_program(session, body.text, fmt=body.format)
    d = rep.to_dict()
    return CheckResult(ok=d["ok"], errors=d["errors"], warnings=d["warnings"])


def _live(service: FacilityService, session: str) -> None:
    if not service.has_session(session):
        raise NotFoundError(f"Session '{session}' does not run in this facility now.")
