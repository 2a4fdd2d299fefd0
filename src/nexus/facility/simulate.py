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

import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nexus.core.checks import check_number
from nexus.core.clock import ManualClock
from nexus.core.errors import InvalidInputError, StateError
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


@dataclass
class _Part:
    """One worker's share of a simulation (picklable, for worker processes)."""

    index: int
    names: list[str]
    seeds: list[int]
    profiles: list[str]
    hours: float
    fs: float
    channels: tuple[str, ...]
    tick_s: float
    signals: bool
    events: bool
    root: str


def _run_part(part: _Part, progress: Callable[[float, float], None] | None = None) -> dict[str, Any]:
    """Run some beds through one supervisor; return what the parent needs to summarise."""
    from nexus.sources.synthetic.fleet import SyntheticFleet

    root = Path(part.root)
    fleet = SyntheticFleet(part.profiles, part.seeds, hours=part.hours, fs=part.fs, channels=part.channels)
    journal = RecordingJournal(root / ("journal" if part.index == 0 else f"journal-{part.index}"))
    clock = ManualClock()
    sup = Supervisor(clock, journal=journal, analyzers=default_analyzers(events=part.events),
                     buffer_s=2 * part.tick_s + 2.0, record_signals=part.signals)
    stages = _StageLog()
    sup.listeners.append(stages)
    sup.add_fleet(fleet, part.names)
    total = part.hours * 3600.0
    t0 = time.perf_counter()
    sup.run(total, tick_s=part.tick_s, on_tick=(lambda rep: progress(rep.t, total)) if progress else None)
    sup.close()
    wall = time.perf_counter() - t0
    paths = journal.finalize(root / "recordings") if part.signals else {}
    journal.close()
    return {
        "stages": stages.stages, "glitches": [g.as_record() for g in sup.glitches], "events": sup.event_counts,
        "counts": sup.counts, "epochs": sup.epochs_staged, "paths": {k: str(v) for k, v in paths.items()},
        "has_stager": sup.lanes[0].has_stager, "wall": wall,
    }


def _worker(part: _Part, queue: Any) -> None:
    try:
        res = _run_part(part, lambda done, total: queue.put(("progress", part.index, done)))
        queue.put(("done", part.index, res))
    except BaseException as exc:  # the parent reports it; nothing else may kill the queue
        queue.put(("error", part.index, f"{type(exc).__name__}: {exc}"))


def _run_parts(
    parts: list[_Part], total: float, progress: Callable[[float, float], None] | None
) -> list[dict[str, Any]]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # no fork: the staging worker threads must not be copied
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(p, queue), daemon=True) for p in parts]
    for pr in procs:
        pr.start()
    results: dict[int, dict[str, Any]] = {}
    done = dict.fromkeys(range(len(parts)), 0.0)
    try:
        while len(results) < len(parts):
            try:
                kind, k, payload = queue.get(timeout=5.0)
            except Exception:
                dead = [i for i, pr in enumerate(procs) if not pr.is_alive() and i not in results]
                if dead:
                    raise StateError(f"Simulation worker {dead[0]} died (exit code {procs[dead[0]].exitcode}).") \
                        from None
                continue
            if kind == "progress":
                done[k] = float(payload)
                if progress is not None:
                    progress(min(done.values()), total)
            elif kind == "error":
                raise StateError(f"Simulation worker {k} failed: {payload}")
            else:
                results[k] = payload
    finally:
        for pr in procs:
            pr.join(timeout=30)
            if pr.is_alive():
                pr.terminate()
    return [results[k] for k in range(len(parts))]


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
    workers: int = 1,
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
    workers : int
        Processes sharing the beds (each runs its own supervisor and journal,
        ``journal``, ``journal-1``, …); a bed's night does not depend on how beds are split.
    progress : callable, optional
        Called as ``progress(done_s, total_s)`` after each tick.

    Returns
    -------
    SimulationSummary
    """
    n = int(check_number("clients", clients, ge=1, le=100_000))
    hours = check_number("hours", hours, gt=0, le=24, unit="h")
    tick_s = check_number("tick_s", tick_s, gt=0, le=300, unit="s")
    workers = int(check_number("workers", workers, ge=1, le=64))
    root = Path(out)
    if (root / "journal" / "sessions.jsonl").exists():
        raise InvalidInputError(f"'{root}' already holds a simulation; choose an empty output folder.")
    root.mkdir(parents=True, exist_ok=True)
    names = [f"sim-{k + 1:04d}" for k in range(n)]
    seeds = [seed + k for k in range(n)]
    profs = [profiles] * n if isinstance(profiles, str) else list(profiles)
    if len(profs) != n:
        raise InvalidInputError(f"Got {len(profs)} profiles for {n} clients: give one profile or one per client.")
    store = _open_db(root) if database else None
    if store is not None:
        _start_rows(store, names, seeds, profs)
    edges = np.linspace(0, n, min(workers, n) + 1).round().astype(int)
    parts = [_Part(k, names[a:b], seeds[a:b], profs[a:b], hours, fs, tuple(channels), tick_s, signals, events,
                   str(root)) for k, (a, b) in enumerate(itertools.pairwise(edges))]
    total = hours * 3600.0
    t0 = time.perf_counter()
    results = [_run_part(parts[0], progress)] if len(parts) == 1 else _run_parts(parts, total, progress)
    wall = time.perf_counter() - t0
    stages = _StageLog()
    paths: dict[str, Path] = {}
    glitches: list[dict[str, Any]] = []
    event_counts: dict[str, int] = {}
    counts: dict[str, int] = {}
    for r in results:
        stages.stages.update(r["stages"])
        paths.update({k: Path(v) for k, v in r["paths"].items()})
        glitches += r["glitches"]
        for k, v in r["events"].items():
            event_counts[k] = event_counts.get(k, 0) + v
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + v
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
    for g in glitches:
        glitch_counts[g["description"]] = glitch_counts.get(g["description"], 0) + 1
    if store is not None:
        _end_rows(store, names, paths, stages, n_epochs, glitches)
        store.close()
    notes = [] if all(r["has_stager"] for r in results) else ["no live stager: epochs were not staged"]
    summary = SimulationSummary(
        clients=n, hours=hours, fs=fs, channels=len(tuple(channels)), wall_s=round(wall, 2),
        speedup=round(n * total / max(wall, 1e-9), 1), epochs_staged=sum(r["epochs"] for r in results),
        events=dict(sorted(event_counts.items())), glitches=glitch_counts, samples=counts,
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


def _start_rows(store: Any, names: list[str], seeds: list[int], profiles: list[str]) -> None:
    from nexus.core.lifecycle import SessionState
    from nexus.store.models import Client, NightSession, SessionMode

    with store.session() as s:
        for k, (name, sd) in enumerate(zip(names, seeds, strict=True)):
            prof = profiles[k]
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
              glitches: list[dict[str, Any]]) -> None:
    from nexus.core.lifecycle import SessionState
    from nexus.core.glitches import AlarmPriority, GlitchCategory
    from nexus.store.models import GlitchRow, HypnogramRow, NightSession

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
                s.add(HypnogramRow(session_id=row.id, kind="live", stages=stages.array(name, n_epochs).tolist()))
        for g in glitches:
            s.add(GlitchRow(session_id=g["session"], onset_s=g["onset"], duration_s=g["duration"] or None,
                         category=GlitchCategory(g["category"]), kind=g["description"],
                         priority=AlarmPriority(g["priority"]), channel=g["channel"], message=g["message"]))
