"""Leases of the multi-host floor: which ``nexus worker`` runs which bed, kept in the facility database.

A *floor* is a set of sessions opened for workers (:func:`open_floor`): each has a
:class:`~nexus.store.models.BedLease` row. A *worker* is a
:class:`~nexus.store.models.FacilityRun` that beats (:func:`heartbeat`) every ``heartbeat_s``;
its lease on all of its beds lasts ``lease_s`` past its last beat, so a heartbeat is one row
whatever the number of beds. Times come from the database's clock (PostgreSQL's
``clock_timestamp()``), so hosts need not agree on the time; on SQLite (one host) the local clock.

:func:`claim` hands a worker the beds nobody holds and the beds of workers whose lease ran out
(a takeover: the dead worker's run is closed so that it cannot come back to them). Each claim is a
compare-and-set on the lease's ``generation``: of two workers claiming the same bed, exactly one
wins. A worker that cannot beat for ``lease_s`` must treat its beds as lost (it silences them);
:func:`heartbeat` tells a worker that is still alive which beds are still its own.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError, StateError
from nexus.core.lifecycle import FINAL_STATES, SessionState

LEASE_S = 2.5
"""How long a worker's beds stay its own after its last heartbeat, in s (default of ``nexus worker``)."""

HEARTBEAT_S = 0.5
"""Time between two heartbeats of a worker, in s."""

OPEN = [s.value for s in SessionState if s not in FINAL_STATES]


def _aware(d: datetime | None) -> datetime | None:
    return None if d is None else (d if d.tzinfo is not None else d.replace(tzinfo=UTC))


def db_now(s: Any) -> datetime:
    """The database's current time (PostgreSQL: ``clock_timestamp()``; SQLite, one host: this host's clock)."""
    from sqlalchemy import text

    if s.get_bind().dialect.name == "postgresql":
        return cast(datetime, _aware(s.scalar(text("SELECT clock_timestamp()"))))
    return datetime.now(UTC)


@dataclass
class Claim:
    """A bed a worker now holds."""

    session: str
    generation: int
    plan: dict[str, Any]
    journals: list[str]
    started_at: datetime | None
    program: dict[str, Any] | None
    client: str
    previous: str | None = None
    """The worker that held it before (a takeover), None for a bed nobody held."""
    lapsed_at: datetime | None = None
    """When the previous worker's lease ran out (its last heartbeat + lease), for takeovers."""


@dataclass
class Beat:
    """What a heartbeat found."""

    alive: bool
    """False when this worker's run was closed by others (it was taken for dead): it must stop its beds."""
    held: dict[str, int] = field(default_factory=dict)
    """Session → generation of every open bed this worker holds according to the database."""
    now: datetime | None = None
    workers: int = 0
    """Live workers on the floor (this one included)."""
    open_beds: int = 0
    local_s: float = 0.0
    """This host's clock (``time.time()``) when the database read ``now``: the midpoint of the query."""
    rtt_s: float = 0.0
    """How long that query took, in s (the error of ``now - local_s`` is at most half of it)."""


# -- the floor --------------------------------------------------------------------------------------
def open_floor(store: Any, beds: Sequence[Any], *, hours: float, fs: float) -> list[str]:
    """Write clients, programs and sessions (``prepared``) of ``beds`` (:class:`BedPlan`) with a free lease each.

    Workers start each session (``running``, its night's clock at 0) when they first claim it.
    """
    import hashlib
    import json

    from sqlalchemy import select

    from nexus.store.models import BedLease, Client, DreamscapeProgram, NightSession, SessionMode

    check_number("hours", hours, gt=0, le=24, unit="h")
    names = [b.session for b in beds]
    with store.session() as s:
        taken = list(s.scalars(select(NightSession.id).where(NightSession.id.in_(names))))
        if taken:
            raise StateError(f"Session(s) {', '.join(taken[:3])} already exist; open the floor with another "
                             "run id (--run).")
        for k, b in enumerate(beds):
            client = Client(code=b.client, display_name=f"Synthetic sleeper {k + 1}",
                            intake={"profile": b.profile, "seed": b.seed, **b.intake},
                            consent_scopes=list(b.intake.get("consent", [])))
            s.add(client)
            s.flush()
            prog_id = None
            if b.program is not None:
                body = b.program.model_dump(mode="json", exclude_none=True)
                row_p = DreamscapeProgram(client_id=client.id, name=b.program.name, body=body,
                                          sha256=hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(),
                                          curator_reasons=b.reasons)
                s.add(row_p)
                s.flush()
                prog_id = row_p.id
            s.add(NightSession(id=b.session, client_id=client.id, bed=f"bed-{k + 1}", program_id=prog_id,
                               mode=SessionMode.RECORD_ONLY if b.program is None else SessionMode.STIMULATION,
                               state=SessionState.PREPARED, source=f"synthetic:{b.profile}:{b.seed}"))
            s.flush()
            s.add(BedLease(session_id=b.session, worker_id=None, generation=0, journals=[], takeovers=0,
                           plan={"profile": b.profile, "seed": b.seed, "hours": float(hours), "fs": float(fs)}))
    return names


# -- workers ----------------------------------------------------------------------------------------
def register_worker(store: Any, worker_id: str, journal: str | Path) -> None:
    """Record a worker (a facility run: this process, this host, its journal) with a first heartbeat."""
    from nexus.store.models import FacilityRun

    with store.session() as s:
        now = db_now(s)
        s.add(FacilityRun(id=worker_id, pid=os.getpid(), host=socket.gethostname(),
                          journals=[str(Path(journal).absolute())], started_at=now, heartbeat_at=now))


def live_workers(s: Any, now: datetime, lease_s: float) -> set[str]:
    """Workers (runs named ``w-…``) not ended whose last heartbeat is younger than ``lease_s``."""
    from sqlalchemy import select

    from nexus.store.models import FacilityRun

    t = cast(Table, FacilityRun.__table__)
    rows = s.execute(select(t.c.id, t.c.heartbeat_at).where(t.c.ended_at.is_(None), t.c.id.like("w-%"))).all()
    return {i for i, hb in rows if now - cast(datetime, _aware(hb)) < timedelta(seconds=lease_s)}


def heartbeat(store: Any, worker_id: str, *, lease_s: float = LEASE_S) -> Beat:
    """Renew this worker's lease; say which open beds it still holds and how many workers are alive.

    Pending extraction orders of its beds that name another run (ordered while a bed changed hands)
    are moved to this worker.
    """
    from sqlalchemy import select, update

    from nexus.store.models import BedLease, ExtractionOrder, FacilityRun, NightSession

    with store.session() as s:  # the beat alone, committed at once (it holds the run's row while it lasts)
        if s.get_bind().dialect.name == "postgresql":
            from sqlalchemy import text

            s.execute(text("SET LOCAL synchronous_commit TO OFF"))  # a beat lost in a database crash is harmless
        t0 = time.time()
        now = db_now(s)
        t1 = time.time()
        n = s.execute(update(FacilityRun).where(FacilityRun.id == worker_id, FacilityRun.ended_at.is_(None))
                      .values(heartbeat_at=now)).rowcount
    if not n:
        return Beat(alive=False, now=now, local_s=(t0 + t1) / 2, rtt_s=t1 - t0)
    with store.session() as s:
        lt, st = cast(Table, BedLease.__table__), cast(Table, NightSession.__table__)
        held = dict(s.execute(select(lt.c.session_id, lt.c.generation).join(st, st.c.id == lt.c.session_id)
                              .where(lt.c.worker_id == worker_id, st.c.state.in_(OPEN))).all())
        mine = select(lt.c.session_id).where(lt.c.worker_id == worker_id)
        s.execute(update(ExtractionOrder).where(ExtractionOrder.status == "pending",
                                                ExtractionOrder.session_id.in_(mine),
                                                ExtractionOrder.facility_run_id.is_distinct_from(worker_id))
                  .values(facility_run_id=worker_id))
        from sqlalchemy import func

        open_beds = s.scalar(select(func.count()).select_from(lt.join(st, st.c.id == lt.c.session_id))
                             .where(st.c.state.in_(OPEN))) or 0
        workers = len(live_workers(s, now, lease_s) | {worker_id})
    return Beat(alive=True, held=held, now=now, workers=workers, open_beds=int(open_beds), local_s=(t0 + t1) / 2,
                rtt_s=t1 - t0)


def end_worker(store: Any, worker_id: str, reason: str) -> None:
    """Close a worker's run (it holds nothing any more)."""
    from nexus.facility.orders import end_run

    end_run(store, worker_id, reason)


# -- claims -----------------------------------------------------------------------------------------
def fair_share(open_beds: int, workers: int, capacity: int) -> int:
    """How many beds one worker should hold: an even share of the open beds, at most ``capacity``."""
    return min(int(capacity), math.ceil(open_beds / max(1, workers)))


def claim(store: Any, worker_id: str, journal: str | Path, *, want: int, lease_s: float = LEASE_S) -> list[Claim]:
    """Claim up to ``want`` beds: free ones first, then those of workers whose lease ran out (takeovers).

    The beds are taken by one compare-and-set (free, or held by a worker found dead; the generation
    grows by one), so a bed that another worker claimed in the meantime is skipped, never shared. A
    bed still ``prepared`` is started (``running``, its night's clock at 0). A worker is found dead
    by closing its run while its heartbeat is still stale, so it cannot come back to its beds.
    """
    from sqlalchemy import case, select, update

    from nexus.store.models import BedLease, Client, DreamscapeProgram, FacilityRun, NightSession

    want = int(want)
    if want <= 0:
        return []
    lt, st = cast(Table, BedLease.__table__), cast(Table, NightSession.__table__)
    out: list[Claim] = []
    with store.session() as s:
        now = db_now(s)
        live = live_workers(s, now, lease_s) | {worker_id}
        rows = s.execute(select(lt.c.session_id, lt.c.worker_id, lt.c.generation)
                         .join(st, st.c.id == lt.c.session_id)
                         .where(st.c.state.in_(OPEN), lt.c.worker_id.is_(None) | lt.c.worker_id.not_in(live))
                         .order_by(lt.c.worker_id.is_not(None), lt.c.session_id).limit(4 * want)).all()
        beats = dict(s.execute(select(FacilityRun.id, FacilityRun.heartbeat_at)
                               .where(FacilityRun.id.in_({r[1] for r in rows if r[1]}))).all())
        # a worker is declared dead by closing its run, re-checking its heartbeat under the row's lock: of a
        # heartbeat and a takeover that race, exactly one wins (the beat then finds its run closed, or the
        # takeover finds the beat fresh and leaves the beds alone)
        cutoff = now - timedelta(seconds=lease_s)
        dead: set[str] = set()
        for w in sorted(set(beats)):
            if s.execute(update(FacilityRun).where(FacilityRun.id == w, FacilityRun.ended_at.is_(None),
                                                   FacilityRun.heartbeat_at < cutoff)
                         .values(ended_at=now, end_reason=f"heartbeat lost; beds taken over by {worker_id}")
                         ).rowcount:
                dead.add(w)
            elif s.scalar(select(FacilityRun.ended_at).where(FacilityRun.id == w)) is not None:
                dead.add(w)  # closed already (stopped, or declared dead by another worker)
        gone = dead | {r[1] for r in rows if r[1] and r[1] not in beats}  # dead, or never registered
        pick = [(n, prev) for n, prev, _ in rows if prev is None or prev in gone][:want]
        if not pick:
            return []
        prev_of = dict(pick)
        # one compare-and-set for the batch: a bed is taken only while it is free or its worker is gone, so a
        # bed that another worker claimed in the meantime (the row re-checked under its lock) is skipped
        won = dict(s.execute(
            update(lt).where(lt.c.session_id.in_(list(prev_of)),
                             lt.c.worker_id.is_(None) | lt.c.worker_id.in_(sorted(gone) or [""]))
            .values(worker_id=worker_id, generation=lt.c.generation + 1, claimed_at=now,
                    takeovers=lt.c.takeovers + case((lt.c.worker_id.is_(None), 0), else_=1))
            .returning(lt.c.session_id, lt.c.generation)).all())
        if not won:
            return []
        names = sorted(won)
        jpath = str(Path(journal).absolute())
        leases = {le.session_id: le for le in s.scalars(select(BedLease).where(BedLease.session_id.in_(names)))}
        rows_s = {r.id: r for r in s.scalars(select(NightSession).where(NightSession.id.in_(names)))}
        progs = {p.id: p for p in s.scalars(select(DreamscapeProgram).where(
            DreamscapeProgram.id.in_({r.program_id for r in rows_s.values() if r.program_id})))}
        codes = dict(s.execute(select(Client.id, Client.code).where(
            Client.id.in_({r.client_id for r in rows_s.values()}))).all())
        for name in names:
            lease, row = leases[name], rows_s[name]
            if jpath not in lease.journals:
                lease.journals = [*lease.journals, jpath]
            if row.state in (SessionState.PREPARED, SessionState.CALIBRATING):
                if row.state is SessionState.PREPARED:
                    row.transition_to(SessionState.CALIBRATING)
                row.transition_to(SessionState.RUNNING)
                row.started_at = now
            row.facility_run_id = worker_id
            prog = progs.get(row.program_id) if row.program_id else None
            prev = prev_of[name]
            hb = _aware(beats.get(prev)) if prev else None
            out.append(Claim(name, int(won[name]), dict(lease.plan), list(lease.journals), _aware(row.started_at),
                             None if prog is None else dict(prog.body), codes.get(row.client_id, ""),
                             previous=prev, lapsed_at=None if hb is None else hb + timedelta(seconds=lease_s)))
    return out


def release(store: Any, worker_id: str, sessions: Sequence[str] | None = None) -> int:
    """Hand beds back (``None``: all of this worker's), e.g. before a planned stop; return how many."""
    from sqlalchemy import update

    from nexus.store.models import BedLease

    q = update(BedLease).where(BedLease.worker_id == worker_id)
    if sessions is not None:
        q = q.where(BedLease.session_id.in_(list(sessions)))
    with store.session() as s:
        return int(s.execute(q.values(worker_id=None)).rowcount)


def floor_status(store: Any, *, lease_s: float = LEASE_S) -> dict[str, Any]:
    """Who runs what: every worker (alive or not, beds held) and every open bed with its worker."""
    from sqlalchemy import select

    from nexus.store.models import BedLease, FacilityRun, NightSession

    with store.session() as s:
        now = db_now(s)
        beds = s.execute(select(BedLease.session_id, BedLease.worker_id, BedLease.generation, BedLease.takeovers,
                                NightSession.state).join(NightSession, NightSession.id == BedLease.session_id)
                         .order_by(BedLease.session_id)).all()
        ids = {b[1] for b in beds if b[1]}
        runs = list(s.scalars(select(FacilityRun).where(FacilityRun.id.in_(ids) | FacilityRun.id.like("w-%"))
                              .order_by(FacilityRun.started_at)))
        workers = []
        for r in runs:
            age = (now - cast(datetime, _aware(r.heartbeat_at))).total_seconds()
            workers.append({"worker": r.id, "host": r.host, "pid": r.pid,
                            "alive": r.ended_at is None and age < lease_s, "heartbeat_age_s": round(age, 2),
                            "beds": sum(1 for b in beds if b[1] == r.id and b[4].value in OPEN),
                            "ended": r.end_reason})
    return {"workers": sorted(workers, key=lambda w: w["worker"]),
            "beds": [{"session": b[0], "worker": b[1], "generation": b[2], "takeovers": b[3],
                      "state": b[4].value} for b in beds]}


def parse_capacity(capacity: int) -> int:
    """Check a worker's capacity (beds it may hold at once)."""
    if int(capacity) < 1:
        raise InvalidInputError(f"Invalid value for 'capacity': expected >= 1 bed, got {capacity}.")
    return int(capacity)
