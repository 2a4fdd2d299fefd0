"""A whole facility night in fast-forward: synthetic sleepers through the live engine.

:func:`simulate` runs ``clients`` synthetic sleepers (a
:class:`~nexus.sources.synthetic.fleet.SyntheticFleet`) through the same
:class:`~nexus.facility.supervisor.Supervisor` and batched pipeline as a live night, on a
:class:`~nexus.core.clock.ManualClock` that jumps ``tick_s`` seconds per tick. Everything a live
night stores is stored in ``out``: the recording journal (stages, events, glitches; raw signals
with ``signals=True``, merged into one EDF+ per session at the end), a live hypnogram per
session (``hypnograms/<session>.tsv``), a SQLite database with one row per client and per
session, and ``summary.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nexus.core.checks import check_number
from nexus.core.clock import ManualClock
from nexus.core.errors import InvalidInputError
from nexus.core.log import logger
from nexus.core.stages import EPOCH_S
from nexus.facility.analyzers import default_analyzers
from nexus.facility.supervisor import Supervisor
from nexus.store.recording import RecordingJournal

#: Channels of a simulated bed: the staging montage, heart and movement.
SIM_CHANNELS: tuple[str, ...] = ("EEG C4-M1", "EOG E1-M2", "EOG E2-M2", "EMG Chin", "ECG", "Acc X", "Acc Y", "Acc Z")


@dataclass
class SimulationSummary:
    """Figures of one simulated night (also written to ``summary.json``)."""

    clients: int
    hours: float
    fs: float
    channels: int
    wall_s: float
    speedup: float
    epochs_staged: int
    events: dict[str, int]
    glitches: dict[str, int]
    samples: dict[str, int]
    stage_minutes: dict[str, float]
    recordings: int
    out: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return asdict(self)


class _StageLog:
    """Collects live stages per session from the supervisor's records."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[int, int]] = {}

    def __call__(self, kind: str, records: list[dict[str, Any]]) -> None:
        for r in records:
            if r.get("kind") == "stage":
                self.stages.setdefault(r["session"], {})[round(r["onset"] / EPOCH_S)] = int(r["stage"])

    def array(self, session: str, n_epochs: int) -> np.ndarray:
        out = np.full(n_epochs, -2, dtype=np.int64)
        for e, s in self.stages.get(session, {}).items():
            if 0 <= e < n_epochs:
                out[e] = s
        return out


def simulate(
    clients: int,
    hours: float,
    out: str | Path,
    *,
    seed: int = 0,
    fs: float = 100.0,
    channels: Sequence[str] = SIM_CHANNELS,
    profiles: str | Sequence[str] = "typical_adult",
    tick_s: float = 30.0,
    signals: bool = False,
    events: bool = True,
    database: bool = True,
    progress: Callable[[float, float], None] | None = None,
) -> SimulationSummary:
    """Run a facility night of synthetic sleepers in fast-forward.

    Parameters
    ----------
    clients : int
        Number of beds (one synthetic sleeper each).
    hours : float
        Length of the night in hours.
    out : path-like
        Output folder (created; must not hold a previous simulation's journal).
    seed : int
        Seed of the first sleeper; sleeper ``k`` uses ``seed + k``.
    fs : float
        Sampling rate of the sleepers, in Hz (≥ 100).
    channels : sequence of str
        Channels of every bed.
    profiles : str or sequence of str
        Sleeper profile(s) (see ``nexus synth --help``), one for all or one per client.
    tick_s : float
        Clock step of the fast-forward, in seconds (the block length of each pipeline step).
    signals : bool
        Record raw signals and merge them into one EDF+ per session (about 5.5 MB per bed-hour
        at 100 Hz × 8 channels).
    events : bool
        Run the event detectors.
    database : bool
        Write clients and sessions to ``out/nexus.db`` (SQLite, migrated).
    progress : callable, optional
        Called as ``progress(done_s, total_s)`` after each tick.

    Returns
    -------
    SimulationSummary
    """
    from nexus.sources.synthetic.fleet import SyntheticFleet

    n = int(check_number("clients", clients, ge=1, le=100_000))
    hours = check_number("hours", hours, gt=0, le=24, unit="h")
    tick_s = check_number("tick_s", tick_s, gt=0, le=300, unit="s")
    root = Path(out)
    if (root / "journal" / "sessions.jsonl").exists():
        raise InvalidInputError(f"'{root}' already holds a simulation; choose an empty output folder.")
    root.mkdir(parents=True, exist_ok=True)
    names = [f"sim-{k + 1:04d}" for k in range(n)]
    seeds = [seed + k for k in range(n)]
    fleet = SyntheticFleet(profiles if isinstance(profiles, str) else list(profiles), seeds, hours=hours, fs=fs,
                           channels=tuple(channels))
    store = _open_db(root) if database else None
    if store is not None:
        _start_rows(store, names, seeds, profiles)
    journal = RecordingJournal(root / "journal")
    clock = ManualClock()
    sup = Supervisor(clock, journal=journal, analyzers=default_analyzers(events=events),
                     buffer_s=2 * tick_s + 2.0, record_signals=signals)
    stages = _StageLog()
    sup.listeners.append(stages)
    sup.add_fleet(fleet, names)
    total = hours * 3600.0
    t0 = time.perf_counter()
    sup.run(total, tick_s=tick_s, on_tick=(lambda rep: progress(rep.t, total)) if progress else None)
    wall = time.perf_counter() - t0
    sup.close()
    journal.close()
    paths = journal.finalize(root / "recordings") if signals else {}
    n_epochs = int(total // EPOCH_S)
    (root / "hypnograms").mkdir(exist_ok=True)
    stage_totals = np.zeros(5)
    from nexus.formats.hypnogram import write_hypnogram

    for name in names:
        st = stages.array(name, n_epochs)
        stage_totals += np.bincount(st[st >= 0], minlength=5)[:5]
        if name in stages.stages:
            write_hypnogram(root / "hypnograms" / f"{name}.tsv", st)
    glitch_counts: dict[str, int] = {}
    for g in sup.glitches:
        glitch_counts[g.kind] = glitch_counts.get(g.kind, 0) + 1
    if store is not None:
        _end_rows(store, names, paths, stages, n_epochs, sup)
        store.close()
    notes = []
    if not sup.lanes[0].has_stager:
        notes.append("no live stager available: epochs were not staged")
    summary = SimulationSummary(
        clients=n, hours=hours, fs=fs, channels=len(tuple(channels)), wall_s=round(wall, 2),
        speedup=round(n * total / max(wall, 1e-9), 1), epochs_staged=sup.epochs_staged,
        events=dict(sorted(sup.event_counts.items())), glitches=glitch_counts, samples=sup.counts,
        stage_minutes={lab: round(float(m) * EPOCH_S / 60 / n, 1)
                       for lab, m in zip(("W", "N1", "N2", "N3", "R"), stage_totals, strict=True)},
        recordings=len(paths), out=str(root), notes=notes,
    )
    (root / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    return summary


def _open_db(root: Path) -> Any:
    from sqlalchemy.orm import sessionmaker

    from nexus.store import upgrade
    from nexus.store.db import Store, make_engine

    engine = make_engine(f"sqlite:///{(root / 'nexus.db').as_posix()}", create_dirs=True)
    upgrade(engine, "head")
    return Store(engine=engine, factory=sessionmaker(engine, expire_on_commit=False))


def _start_rows(store: Any, names: list[str], seeds: list[int], profiles: str | Sequence[str]) -> None:
    from nexus.core.lifecycle import SessionState
    from nexus.store.models import Client, NightSession, SessionMode

    with store.session() as s:
        for k, (name, sd) in enumerate(zip(names, seeds, strict=True)):
            prof = profiles if isinstance(profiles, str) else profiles[k]
            client = Client(code=f"{name}-client", display_name=f"Synthetic sleeper {k + 1}",
                            intake={"profile": prof, "seed": sd})
            s.add(client)
            s.flush()
            row = NightSession(id=name, client_id=client.id, bed=f"bed-{k + 1}",
                               mode=SessionMode.RECORD_ONLY, state=SessionState.PREPARED,
                               source=f"synthetic:{prof}:{sd}")
            row.transition_to(SessionState.CALIBRATING)
            row.transition_to(SessionState.RUNNING)
            s.add(row)


def _end_rows(store: Any, names: list[str], paths: dict[str, Path], stages: _StageLog, n_epochs: int,
              sup: Supervisor) -> None:
    from nexus.core.lifecycle import SessionState
    from nexus.store.models import AlarmPriority, Glitch, GlitchCategory, Hypnogram, NightSession

    with store.session() as s:
        for name in names:
            row = s.get(NightSession, name)
            if row is None:
                logger.warning("No database row for %s.", name)
                continue
            row.transition_to(SessionState.EXTRACTING)
            row.transition_to(SessionState.ENDED, reason="simulated night over")
            if name in paths:
                row.recording_path = str(paths[name])
            if name in stages.stages:
                s.add(Hypnogram(session_id=row.id, kind="live", stages=stages.array(name, n_epochs).tolist()))
        for g in sup.glitches:
            s.add(Glitch(session_id=g.session, onset_s=g.onset_s, duration_s=g.duration_s,
                         category=GlitchCategory(g.category), kind=g.kind, priority=AlarmPriority(g.priority),
                         channel=g.channel, message=g.message))
