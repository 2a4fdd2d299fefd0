"""Crash recovery: no session is ever left without an end state.

After a ``kill -9``, a power cut or a crash, the facility database still says ``running`` for
every session of the run that died. :func:`recover` (``nexus recover``; also run by
``nexus db upgrade`` and at the start of ``nexus simulate``) finds the runs that are gone
(:func:`~nexus.facility.orders.run_alive`), reads each of their journals back
(:func:`~nexus.store.recording.recover_journal`, a torn last frame ignored), merges them into
one EDF+ per session (``recordings/`` next to the journal), and ends every session left open as
``aborted`` with the reason ``"facility crashed; recovered"`` (through ``extracting``, as the
session state machine wants). Orders still pending for those sessions are refused with a message.

A session that no run owns (written by an older version, or by hand) is listed as *unowned* and
only ended when asked (``unowned=True``): nothing tells whether something still runs it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nexus.core.lifecycle import FINAL_STATES, SessionState
from nexus.core.log import logger
from nexus.facility.orders import run_alive

CRASH_REASON = "facility crashed; recovered"


@dataclass
class RecoveryReport:
    """What :func:`recover` found and did."""

    runs: list[str] = field(default_factory=list)
    """Runs found dead and recovered."""
    alive: list[str] = field(default_factory=list)
    """Runs still going (left untouched)."""
    sessions: list[str] = field(default_factory=list)
    """Sessions ended as aborted."""
    recordings: dict[str, str] = field(default_factory=dict)
    """Session → EDF+ merged from its journal."""
    recorded_s: dict[str, float] = field(default_factory=dict)
    """Session → seconds of signal recovered from its journal."""
    unowned: list[str] = field(default_factory=list)
    """Open sessions that no run owns (ended only with ``unowned=True``)."""
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def summary(self) -> str:
        """One line for the CLI."""
        if not self.runs and not self.sessions and not self.unowned:
            return "Nothing to recover: no session was left open by a facility that stopped."
        line = (f"Recovered {len(self.sessions)} session(s) of {len(self.runs)} crashed run(s) "
                f"({len(self.recordings)} recording(s) merged) in {self.wall_s:.1f} s")
        left = [u for u in self.unowned if u not in self.sessions]
        if left:
            line += f"; {len(left)} open session(s) belong to no run (nexus recover --unowned ends them)"
        if self.problems:
            line += f"; {len(self.problems)} problem(s): {self.problems[0]}"
        return line + "."


def _merge(journal: Path, names: list[str], rep: RecoveryReport) -> dict[str, str]:
    from nexus.store.recording import merge_journal, recover_journal

    if not (journal / "sessions.jsonl").exists():
        rep.problems.append(f"journal '{journal}' is missing")
        return {}
    try:
        rec = recover_journal(journal)
        mine = [n for n in names if n in rec.sessions]
        for n in mine:
            idx = rec.index.get(n)
            if idx is not None and idx.n:
                info = rec.sessions[n]
                rep.recorded_s[n] = round(max(t + k / info.fs for t, k in zip(idx.t0, idx.n, strict=True)), 3)
        paths = merge_journal(journal, journal.parent / "recordings", sessions=mine)
    except Exception as exc:  # one damaged journal must not keep the sessions open
        rep.problems.append(f"journal '{journal}' could not be merged: {exc}")
        logger.error("Recovery: journal %s could not be merged: %s", journal, exc)
        return {}
    return {k: str(v) for k, v in paths.items()}


def _floor_alive(s: Any) -> bool:
    """Whether a ``nexus worker`` of the multi-host floor is alive (it takes over the beds of dead workers)."""
    from nexus.facility.leases import LEASE_S, db_now, live_workers

    return bool(live_workers(s, db_now(s), LEASE_S))


def recover(store: Any, *, unowned: bool = False, merge: bool = True, stale_s: float = 120.0) -> RecoveryReport:
    """End every session left open by a facility run that is gone; merge its journals.

    Parameters
    ----------
    store : Store
        The facility database (at the current migration).
    unowned : bool
        Also end open sessions that belong to no run.
    merge : bool
        Merge the journals of the crashed runs into EDF+ files.
    stale_s : float
        A run on another host is gone when its heartbeat is older than this, in s.
    """
    from sqlalchemy import select

    from nexus.store.models import BedLease, ExtractionOrder, FacilityRun, NightSession

    t0 = time.perf_counter()
    rep = RecoveryReport()
    open_states = [s for s in SessionState if s not in FINAL_STATES]
    with store.session() as s:
        runs = list(s.scalars(select(FacilityRun).where(FacilityRun.ended_at.is_(None))))
        dead = []
        for run in runs:
            if run_alive(run, stale_s=stale_s):
                rep.alive.append(run.id)
            else:
                dead.append(run)
        rows = list(s.scalars(select(NightSession).where(NightSession.state.in_(open_states))))
        if _floor_alive(s):  # beds of the multi-host floor are taken over by its live workers, not aborted
            leased = set(s.scalars(select(BedLease.session_id)))
            rows = [r for r in rows if r.id not in leased]
        by_run: dict[str | None, list[Any]] = {}
        for r in rows:
            by_run.setdefault(r.facility_run_id, []).append(r)
        rep.unowned = sorted(r.id for r in by_run.get(None, []))
        targets: list[tuple[Any, list[Any]]] = [(run, by_run.get(run.id, [])) for run in dead]
        if unowned and rep.unowned:
            targets.append((None, by_run.get(None, [])))
        for run, sess in targets:
            names = [r.id for r in sess]
            if run is not None and merge and names:
                for j in run.journals:
                    paths = _merge(Path(j), names, rep)
                    rep.recordings.update(paths)
            for r in sess:
                if r.state in (SessionState.RUNNING,):
                    r.transition_to(SessionState.EXTRACTING)
                if r.state in (SessionState.PREPARED, SessionState.CALIBRATING, SessionState.EXTRACTING):
                    r.transition_to(SessionState.ABORTED,
                                    reason=CRASH_REASON if run is not None else "no facility run owns it; recovered")
                if r.id in rep.recordings:
                    r.recording_path = rep.recordings[r.id]
                rep.sessions.append(r.id)
            for o in s.scalars(select(ExtractionOrder).where(ExtractionOrder.session_id.in_(names),
                                                             ExtractionOrder.status.in_(("pending", "applied")))):
                o.status = "refused" if o.status == "pending" else "done"
                o.message = (o.message + " " if o.message else "") + f"Session ended by recovery: {CRASH_REASON}."
            if run is not None:
                run.ended_at, run.end_reason = datetime.now(UTC), "crashed; recovered"
                rep.runs.append(run.id)
    rep.wall_s = round(time.perf_counter() - t0, 3)
    if rep.sessions:
        logger.warning("Recovery: %s", rep.summary())
    return rep
