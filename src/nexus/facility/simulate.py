"""A whole facility night in fast-forward: synthetic sleepers through the live engine, in closed loop.

:func:`simulate` runs ``clients`` synthetic sleepers (a
:class:`~nexus.sources.synthetic.fleet.SyntheticFleet`) through the same
:class:`~nexus.facility.supervisor.Supervisor`, batched pipeline and dreamscape loop as a live
night, on a :class:`~nexus.core.clock.ManualClock` that jumps ``tick_s`` seconds per tick (the
lanes step ``step_s`` at a time inside a tick, so each sleeper hears its commands in time).
Each client gets a program — curated from a generated intake (the curator's reasons kept), or
the same ``program`` for every bed — except a share of natural, record-only nights. The sink of
each bed is the sleeper's own response (clicks can deepen slow waves, sounds can arouse), and
optionally a WAV file per bed.

The facility database (``NEXUS_DATABASE_URL``, by default SQLite in ``NEXUS_DATA_DIR``) gets the
clients, programs, sessions (each ends ``ended``, or ``aborted`` with a reason), live
hypnograms with their confidence, glitches, every decision and each night's summary. ``out``
holds files only: the recording journal (raw signals with ``signals=True``, merged into one EDF+
per session), ``hypnograms/<session>.tsv`` and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from nexus.core.checks import check_number, check_option
from nexus.core.clock import ManualClock
from nexus.core.errors import InvalidInputError, SafetyError, StateError, StorageError
from nexus.core.glitches import AlarmPriority, GlitchCategory
from nexus.core.log import logger
from nexus.core.stages import EPOCH_S
from nexus.dreamscape.curator import SENSITIVITIES, Intake, curate
from nexus.dreamscape.schema import GOALS, Program
from nexus.facility.analyzers import default_analyzers
from nexus.facility.records import open_db, start_rows, store_decisions
from nexus.facility.supervisor import Supervisor
from nexus.monitor.glitch import one_per_episode
from nexus.sources.synthetic.faults import EXTRA_FAULT_KINDS, FAULT_KINDS, schedule_faults
from nexus.store.recording import RecordingJournal, line_may_hold

LIVE_TICK_S = 0.1
"""The tick of a live facility, in s: fast-forward nights decide CLAS with the horizon a live tick needs."""

#: Channels of a benchmark bed: the staging montage, heart and movement (8 channels).
SIM_CHANNELS: tuple[str, ...] = ("EEG C4-M1", "EOG E1-M2", "EOG E2-M2", "EMG Chin", "ECG", "Acc X", "Acc Y", "Acc Z")

#: Channels of a simulated bed: :data:`SIM_CHANNELS` and breathing (the distress monitor reads it).
NIGHT_CHANNELS: tuple[str, ...] = (*SIM_CHANNELS, "Resp")


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
    database: str = ""
    programs: int = 0
    natural: int = 0
    commands: dict[str, int] = field(default_factory=dict)
    clicks_late: int = 0
    decisions: int = 0
    so_power_change_pct: float | None = None
    beds: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return asdict(self)


class _StageLog:
    """Collects live stages (and their confidence, the highest stage probability) per session."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[int, int]] = {}
        self.confidence: dict[str, dict[int, float]] = {}

    def __call__(self, kind: str, records: list[dict[str, Any]]) -> None:
        for r in records:
            if r.get("kind") == "stage":
                e = round(r["onset"] / EPOCH_S)
                self.stages.setdefault(r["session"], {})[e] = int(r["stage"])
                if r.get("probs"):
                    self.confidence.setdefault(r["session"], {})[e] = round(max(r["probs"]), 3)

    def confidence_list(self, session: str, n_epochs: int) -> list[float | None]:
        c = self.confidence.get(session, {})
        return [c.get(e) for e in range(n_epochs)]

    def array(self, session: str, n_epochs: int) -> np.ndarray:
        out = np.full(n_epochs, -2, dtype=np.int64)
        for e, s in self.stages.get(session, {}).items():
            if 0 <= e < n_epochs:
                out[e] = s
        return out


@dataclass
class BedPlan:
    """One bed of a simulated night: its session, sleeper and program (None: a natural night)."""

    session: str
    client: str
    seed: int
    profile: str
    program: Program | None
    reasons: list[dict[str, str]] = field(default_factory=list)
    intake: dict[str, Any] = field(default_factory=dict)
    faults: tuple[str, ...] = ()
    scopes: list[str] = field(default_factory=lambda: ["recording"])
    """The client's consent scopes (:mod:`nexus.guard.consent`); the bed's program runs as far as they allow."""


def generated_scopes(consent: Sequence[str] | None, rng: np.random.Generator) -> list[str]:
    """A synthetic client's consent scopes.

    ``recording``, what the intake's ``consent`` grants (None: a client enrolled for a given program, who
    consented to sound, stimulation and incubation), and at random ``psyche_monitoring`` (70 %) and
    ``research`` (30 %).
    """
    from nexus.guard.consent import scopes_from_intake

    given = ["audio", "stimulation", "dream_incubation"] if consent is None else list(consent)
    extra = [sc for sc, p in (("psyche_monitoring", 0.7), ("research", 0.3)) if rng.random() < p]
    return scopes_from_intake(given, extra)


def generated_intake(client: str, rng: np.random.Generator, hours: float) -> Intake:
    """A plausible intake for a synthetic client: goals, consent and sensitivities drawn at random.

    The wake window is the last 30 min of the night (none for nights under an hour).
    """
    goals = [g for g in GOALS if rng.random() < 0.5] or ["deeper_sleep"]
    consent = ["audio"] + [c for c, p in (("stimulation", 0.8), ("smart_wake", 0.7), ("dream_incubation", 0.5),
                                          ("memory_cues", 0.3)) if rng.random() < p]
    sens = [s for s in SENSITIVITIES if rng.random() < 0.1]
    end = 23 * 60 + round(hours * 60)
    window = None
    if hours >= 1.0 and "smart_wake" in consent:
        window = (f"{(end - 30) // 60 % 24:02d}:{(end - 30) % 60:02d}", f"{end // 60 % 24:02d}:{end % 60:02d}")
    theme = "a calm walk by the sea" if "dream_theme" in goals else None
    return Intake(client, goals=goals, consent=consent, sensitivities=sens, dream_theme=theme, lights_out="23:00",
                  wake_window=window)


def plan_beds(n: int, *, seed: int = 0, hours: float = 8.0, profiles: str | Sequence[str] = "typical_adult",
              program: Program | None = None, natural_share: float = 1 / 7, run_id: str = "sim") -> list[BedPlan]:
    """The beds of a simulated night: which sleeper, which program, which nights are natural.

    ``round(n * natural_share)`` beds, chosen at random (seeded), get a natural night; the others
    get ``program``, or a program curated from a generated intake (:func:`generated_intake`).
    """
    check_number("natural_share", natural_share, ge=0, le=1)
    profs = [profiles] * n if isinstance(profiles, str) else list(profiles)
    if len(profs) != n:
        raise InvalidInputError(f"Got {len(profs)} profiles for {n} clients: give one profile or one per client.")
    rng = np.random.default_rng([seed, 7])
    natural = set(rng.permutation(n)[: round(n * natural_share)].tolist())
    beds = []
    for k in range(n):
        name = f"{run_id}-{k + 1:04d}"
        bed = BedPlan(name, f"{name}-client", seed + k, profs[k], None)
        scope_rng = np.random.default_rng([seed + k, 17])
        if k in natural:
            bed.scopes = generated_scopes([], scope_rng)
            beds.append(bed)
            continue
        if program is not None:
            bed.program = program
            bed.scopes = generated_scopes(None, scope_rng)
        else:
            intake = generated_intake(bed.client, np.random.default_rng([seed + k, 11]), hours)
            bed.intake = {kk: v for kk, v in asdict(intake).items() if v not in (None, [], ())}
            bed.scopes = generated_scopes(intake.consent, scope_rng)
            try:
                cur = curate(intake)
            except (SafetyError, InvalidInputError) as exc:
                bed.reasons = [{"choice": "natural night", "why": str(exc)}]
            else:
                bed.program = cur.program
                bed.reasons = [{"choice": r.choice, "why": r.why} for r in cur.reasons]
        beds.append(bed)
    return beds


@dataclass
class _Part:
    """One worker's share of a simulation (picklable, for worker processes)."""

    index: int
    beds: list[BedPlan]
    hours: float
    fs: float
    channels: tuple[str, ...]
    tick_s: float
    step_s: float
    signals: bool
    events: bool
    root: str
    audio: str | None
    distress: int | None = None
    lights_out: dt.datetime | None = None


def _run_part(part: _Part, progress: Callable[[float, float], None] | None = None,
              safety: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run some beds through one supervisor; return what the parent needs to summarise.

    ``safety`` (database URL, run id, parent pid) lets the part carry out extraction orders from
    the database and stop when its parent process dies; on any exception or signal the beds are
    silenced, the sessions closed and the journal flushed before the exception goes on.
    """
    from nexus.facility.beds import SleeperSink, WavBedSink
    from nexus.sinks.bedside import BedSink, TeeSink
    from nexus.sources.synthetic.fleet import SyntheticFleet

    root = Path(part.root)
    names = [b.session for b in part.beds]
    faults = [schedule_faults(b.faults, part.hours, part.channels, b.seed) if b.faults else ()
              for b in part.beds]
    fleet = SyntheticFleet([b.profile for b in part.beds], [b.seed for b in part.beds], hours=part.hours,
                           fs=part.fs, channels=part.channels, faults=faults, distress=part.distress)
    journal = RecordingJournal(root / ("journal" if part.index == 0 else f"journal-{part.index}"),
                               background_sync=True)
    clock = ManualClock()
    sup = Supervisor(clock, journal=journal,
                     analyzers=default_analyzers(events=part.events, block_s=LIVE_TICK_S),
                     buffer_s=2 * part.tick_s + 2.0, record_signals=part.signals, step_s=part.step_s)
    stages = _StageLog()
    sup.listeners.append(stages)
    sinks: list[BedSink | None] = []
    for k, b in enumerate(part.beds):
        if b.program is None:
            sinks.append(None)
            continue
        ears: BedSink = SleeperSink(fleet, k, b.program)
        if part.audio:
            ears = TeeSink([ears, WavBedSink(Path(part.audio) / f"{b.session}.wav", b.program)])
        sinks.append(ears)
    try:
        sup.add_fleet(fleet, names, programs=[b.program for b in part.beds], sinks=sinks,
                      scopes=[b.scopes for b in part.beds])
    except BaseException:  # e.g. the disk is full: the journal is closed before the error goes on
        with contextlib.suppress(Exception):
            sup.close()
        with contextlib.suppress(Exception):
            journal.close()
        raise
    total = part.hours * 3600.0
    t0 = time.perf_counter()
    desk = _safety_hooks(sup, safety)
    from nexus.safety.watchdog import LEASE_S, Watchdog

    dog = Watchdog(LEASE_S)  # dead-man's switch: a loop that stalls leaves its beds silent within 2 s
    dog.watch_supervisor(sup)
    dog.start()
    try:
        sup.run(total, tick_s=part.tick_s, on_tick=(lambda rep: progress(rep.t, total)) if progress else None)
    except BaseException:
        dog.stop()
        try:
            sup.close()  # every bed silent, every session closed, the journal flushed
        except Exception as exc:  # e.g. the disk is still full: the first error is the one reported
            logger.error("While closing the facility after the failure: %s", exc)
        with contextlib.suppress(Exception):
            journal.close()
        if desk is not None:
            desk.store.close()
        raise
    dog.stop()
    loop = sup.lanes[0].analyzer("dreamscape")
    beds = _bed_figures(loop, sinks, names)
    sup.close()
    if desk is not None:
        desk.poll(force=True)  # write back the extractions that ended in the last tick
        desk.store.close()
    wall = time.perf_counter() - t0
    paths = (journal.finalize(root / "recordings", start=part.lights_out,
                              clients={b.session: b.client for b in part.beds}) if part.signals else {})
    journal.close()
    return {
        "stages": stages.stages, "confidence": stages.confidence, "glitches": [g.as_record() for g in sup.glitches],
        "alarms": sup.alarm_book.log(),
        "events": sup.event_counts, "counts": sup.counts, "epochs": sup.epochs_staged,
        "paths": {k: str(v) for k, v in paths.items()}, "has_stager": sup.lanes[0].staged, "wall": wall,
        "beds": beds, "commands": dict(sup.recorder.command_counts), "decisions": sup.recorder.decisions,
        "events_by_bed": _events_by_bed(root / ("journal" if part.index == 0 else f"journal-{part.index}")),
    }


def _bed_figures(loop: Any, sinks: Sequence[Any], names: list[str]) -> list[dict[str, Any]]:
    """Per-bed figures of the dreamscape loop: commands played by kind, late clicks, SO power in N3."""
    out = []
    for k, name in enumerate(names):
        row: dict[str, Any] = {"session": name}
        if loop is not None and hasattr(loop, "counts"):
            row.update({kind: int(v[k]) for kind, v in loop.counts.items()})
            row["clicks_late"] = int(loop.late[k])
            n = int(loop.so_samples[k])
            row["so_power_n3_uv2"] = round(float(loop.so_power[k] / n), 2) if n else None
            row["natural"] = not bool(loop.has_program[k])
        sink = sinks[k] if k < len(sinks) else None
        outcomes = getattr(sink, "outcomes", None)
        if outcomes is None and sink is not None:
            outcomes = next((getattr(s, "outcomes", None) for s in getattr(sink, "sinks", [])), None)
        if outcomes:
            row["responses"] = dict(sorted(outcomes.items()))
        out.append(row)
    return out


def _events_by_bed(journal: Path) -> dict[str, dict[str, int]]:
    """Events per session and kind, read back from a journal's records."""
    counts: dict[str, dict[str, int]] = {}
    path = journal / "records.jsonl"
    if not path.is_file():
        return counts
    with path.open("rb") as fh:
        for line in fh:
            if not line_may_hold(line, kind="event"):
                continue
            try:
                r = orjson.loads(line)
            except orjson.JSONDecodeError:
                try:  # a journal written before 2026-12 may hold a bare NaN (orjson reads strict JSON only)
                    r = json.loads(line)
                except ValueError:
                    continue
            c = counts.setdefault(r["session"], {})
            n = len(r["onset"]) if isinstance(r["onset"], list) else 1
            c[r["description"]] = c.get(r["description"], 0) + n
    return counts


def _safety_hooks(sup: Supervisor, safety: dict[str, Any] | None) -> Any:
    """Extraction orders from the database and the parent watch, checked after every lane step."""
    if not safety:
        return None
    from nexus.facility.shutdown import parent_watch

    if safety.get("parent_pid"):
        sup.between_steps.append(parent_watch(int(safety["parent_pid"])))
    if not safety.get("database_url"):
        return None
    from nexus.core.settings import load_settings
    from nexus.facility.orders import OrderDesk
    from nexus.store.db import open_store

    store = open_store(load_settings(database_url=safety["database_url"]), check=False)
    desk = OrderDesk(store, sup, safety["run_id"])
    sup.between_steps.append(desk.poll)
    from nexus.facility.consent_desk import ConsentDesk

    consent = ConsentDesk(store, sup, list(sup.sessions))  # consent changed mid-night: from the next step
    sup.between_steps.append(consent.poll)
    return desk


def _worker(part: _Part, queue: Any, safety: dict[str, Any] | None = None) -> None:
    import signal

    from nexus.facility.shutdown import die_with_parent, stop_on_signals

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the workers with SIGTERM
    try:
        with stop_on_signals((signal.SIGTERM,)):
            if safety and safety.get("parent_pid"):
                die_with_parent(int(safety["parent_pid"]))  # SIGTERM when the parent is killed, even with -9
            res = _run_part(part, lambda done, total: queue.put(("progress", part.index, done)), safety)
        queue.put(("done", part.index, res))
    except BaseException as exc:  # the parent reports it; nothing else may kill the queue
        queue.put(("error", part.index, f"{type(exc).__name__}: {exc}"))


def _run_parts(
    parts: list[_Part], total: float, progress: Callable[[float, float], None] | None,
    safety: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # no fork: the staging worker threads must not be copied
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(p, queue, safety), daemon=True) for p in parts]
    for pr in procs:
        pr.start()
    results: dict[int, dict[str, Any]] = {}
    done = dict.fromkeys(range(len(parts)), 0.0)
    gone_at: dict[int, float] = {}  # worker -> when it was first seen gone without its result
    try:
        while len(results) < len(parts):
            # a worker killed while the others still report progress is noticed within a second or two (its
            # result may still be in the queue when it has just finished: it gets 5 s to arrive)
            now = time.monotonic()
            for i, pr in enumerate(procs):
                if i not in results and pr.exitcode is not None:
                    gone_at.setdefault(i, now)
                    if now - gone_at[i] > 5.0:
                        raise StateError(f"Simulation worker {i} died (exit code {pr.exitcode}); the other "
                                         "workers were stopped and every session ended as aborted.")
            try:
                kind, k, payload = queue.get(timeout=0.5)
            except Exception:
                continue
            if kind == "progress":
                done[k] = float(payload)
                if progress is not None:
                    progress(min(done.values()), total)
            elif kind == "error":
                raise StateError(f"Simulation worker {k} failed: {payload}")
            else:
                results[k] = payload
    except BaseException:
        for pr in procs:  # SIGTERM: each worker silences its beds, flushes its journal and exits
            if pr.is_alive():
                pr.terminate()
        raise
    finally:
        # a worker exits only once what it put on the queue has gone down the pipe: keep reading (and dropping)
        # while waiting for them, or a stopped run waits for the join's timeout (Python's "joining processes
        # that use queues")
        deadline = time.monotonic() + 30.0
        while any(pr.is_alive() for pr in procs) and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                queue.get(timeout=0.1)
        for pr in procs:
            if pr.is_alive():
                pr.terminate()
            pr.join(timeout=5.0)
    return [results[k] for k in range(len(parts))]


def holds_simulation(folder: str | Path) -> bool:
    """Whether ``folder`` already holds a simulation (its journal's session list)."""
    return (Path(folder) / "journal" / "sessions.jsonl").exists()


def free_run_folder(out: str | Path) -> Path:
    """``out``, or, when it already holds a simulation, the first of ``out-2``, ``out-3``, … that is new or empty.

    A simulation is never written over: its journal folders are registered in the facility
    database with its run, and its sessions' recordings and hypnograms are referenced from there,
    so replacing them would silently lose recorded nights. A numbered sibling (as build and
    experiment tools number their run folders) keeps every run in a folder of its own, so that
    one run's files are never mixed into another's tree. A sibling that exists with other files
    in it (not a run of this tool) is skipped as well.
    """
    root = Path(out)
    if not holds_simulation(root):
        return root
    for k in itertools.count(2):
        cand = root.with_name(f"{root.name}-{k}")
        if not cand.exists() or (cand.is_dir() and not any(cand.iterdir())):
            return cand
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends


def simulate(
    clients: int,
    hours: float,
    out: str | Path,
    *,
    seed: int = 0,
    fs: float = 100.0,
    channels: Sequence[str] = NIGHT_CHANNELS,
    profiles: str | Sequence[str] = "typical_adult",
    tick_s: float = 30.0,
    step_s: float = 1.0,
    signals: bool = False,
    events: bool = True,
    database: bool = True,
    database_url: str | None = None,
    workers: int = 1,
    program: Program | None = None,
    natural_share: float = 1 / 7,
    audio: str | Path | None = None,
    faults: Sequence[str] = (),
    fault_share: float = 1.0,
    distress: int | None = None,
    run_id: str | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> SimulationSummary:
    """Run a facility night of synthetic sleepers in fast-forward, each bed playing its dreamscape.

    Parameters
    ----------
    clients : int
        Number of beds (one synthetic sleeper each).
    hours : float
        Length of the night in hours.
    out : path-like
        Output folder for files (created; must not hold a previous simulation's journal).
    seed : int
        Seed of the first sleeper; sleeper ``k`` uses ``seed + k``.
    fs : float
        Sampling rate of the sleepers, in Hz (≥ 100).
    channels : sequence of str
        Channels of every bed.
    profiles : str or sequence of str
        Sleeper profile(s) (see ``nexus synth --help``), one for all or one per client.
    tick_s : float
        Clock step of the fast-forward, in seconds.
    step_s : float
        Longest lane step inside a tick, in s. The controller decides sample by sample with the horizon
        of a live 0.1-s tick whatever the step; the step bounds how late a sleeper's response to a
        sound can start (and how often stages and arousals reach the controller).
    signals : bool
        Record raw signals and merge them into one EDF+ per session (about 5.5 MB per bed-hour
        at 100 Hz × 8 channels).
    events : bool
        Run the event detectors.
    database : bool
        Write clients, programs, sessions, hypnograms, glitches, decisions and summaries to the
        facility database.
    database_url : str, optional
        SQLAlchemy URL of the facility database (default: the settings', ``NEXUS_DATABASE_URL`` or
        SQLite in ``NEXUS_DATA_DIR``).
    workers : int
        Processes sharing the beds (each runs its own supervisor and journal,
        ``journal``, ``journal-1``, …); a bed's night does not depend on how beds are split.
    program : Program, optional
        One program for every non-natural bed (default: curated per client from a generated intake).
    natural_share : float
        Share of beds that get a natural (record-only) night.
    audio : path-like, optional
        Folder for one WAV file per bed (48 kHz, rendered at the end of the night).
    faults : sequence of str
        Fault kinds to inject (:data:`~nexus.sources.synthetic.faults.FAULT_KINDS`, or ``["all"]``), to
        rehearse the alarms; each affected bed gets them at its own random times.
    fault_share : float
        Share of beds that get the faults (chosen at random, seeded).
    distress : int, optional
        Exact number of distress episodes per bed (default: from the profile).
    run_id : str, optional
        Prefix of the session ids (``<run_id>-0001``, …); default: a new random one, so that nights
        stored in one facility database never clash.
    progress : callable, optional
        Called as ``progress(done_s, total_s)`` after each tick.

    Returns
    -------
    SimulationSummary
    """
    n = int(check_number("clients", clients, ge=1, le=100_000))
    hours = check_number("hours", hours, gt=0, le=24, unit="h")
    tick_s = check_number("tick_s", tick_s, gt=0, le=300, unit="s")
    step_s = check_number("step_s", step_s, gt=0, le=tick_s, unit="s")
    workers = int(check_number("workers", workers, ge=1, le=64))
    root = Path(out)
    if holds_simulation(root):
        raise InvalidInputError(f"'{root}' already holds a simulation; choose an empty output folder "
                                "('nexus simulate' picks a new numbered one itself).")
    for folder in (root, *(() if audio is None else (Path(audio),))):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".nexus-write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"Cannot write to the output folder '{folder}' ({exc.strerror or exc}): choose "
                               "another --out (or fix its permissions).") from None
    run_id = run_id or "n" + uuid.uuid4().hex[:8]
    if not run_id.replace("-", "").isalnum() or len(run_id) > 24:
        raise InvalidInputError(f"Invalid run id '{run_id}': use at most 24 letters, digits or '-'.")
    beds = plan_beds(n, seed=seed, hours=hours, profiles=profiles, program=program, natural_share=natural_share,
                     run_id=run_id)
    kinds = list(FAULT_KINDS) if list(faults) == ["all"] else [k.strip() for k in faults if k.strip()]
    for k in kinds:
        check_option("fault", k, FAULT_KINDS + EXTRA_FAULT_KINDS)
    check_number("fault_share", fault_share, ge=0, le=1)
    if distress is not None:
        check_number("distress", distress, ge=0, le=20)
    if kinds:
        hit = np.random.default_rng([seed, 13]).permutation(n)[: round(n * fault_share)]
        for k in hit.tolist():
            beds[k].faults = tuple(kinds)
    names = [b.session for b in beds]
    store = open_db(database_url) if database else None
    safety: dict[str, Any] = {"parent_pid": os.getpid()} if workers > 1 else {}
    if store is not None:
        start_rows(store, beds)
        from nexus.facility.orders import register_run

        register_run(store, run_id, [root / ("journal" if k == 0 else f"journal-{k}") for k in range(min(workers, n))],
                     names)
        safety |= {"database_url": store.engine.url.render_as_string(hide_password=False), "run_id": run_id}
    edges = np.linspace(0, n, min(workers, n) + 1).round().astype(int)
    # the night's simulated start: lights-out (23:00 UTC) of the day the run starts
    today = dt.datetime.now(dt.UTC)
    lights_out = dt.datetime(today.year, today.month, today.day, 23, 0, tzinfo=dt.UTC)
    parts = [_Part(k, beds[a:b], hours, fs, tuple(channels), tick_s, step_s, signals, events, str(root),
                   None if audio is None else str(audio), distress, lights_out)
             for k, (a, b) in enumerate(itertools.pairwise(edges))]
    total = hours * 3600.0
    t0 = time.perf_counter()
    from nexus.facility.shutdown import FacilityStopped, stop_on_signals

    try:
        with stop_on_signals():
            results = ([_run_part(parts[0], progress, safety)] if len(parts) == 1
                       else _run_parts(parts, total, progress, safety))
    except BaseException as exc:
        if store is not None:
            from nexus.facility.orders import end_run

            why = exc.reason if isinstance(exc, FacilityStopped) else f"simulation failed: {type(exc).__name__}: {exc}"
            _abort_rows(store, names, why)
            end_run(store, run_id, why)
            store.close()
        raise
    wall = time.perf_counter() - t0
    stages = _StageLog()
    paths: dict[str, Path] = {}
    glitches: list[dict[str, Any]] = []
    alarms: list[dict[str, Any]] = []  # the alarm log of every part (high and medium alarms with their times)
    event_counts: dict[str, int] = {}
    counts: dict[str, int] = {}
    commands: dict[str, int] = {}
    bed_rows: list[dict[str, Any]] = []
    by_bed: dict[str, dict[str, int]] = {}
    for r in results:
        stages.stages.update(r["stages"])
        stages.confidence.update(r["confidence"])
        paths.update({k: Path(v) for k, v in r["paths"].items()})
        glitches += r["glitches"]
        alarms += r["alarms"]
        bed_rows += r["beds"]
        by_bed.update(r["events_by_bed"])
        for src, dst in ((r["events"], event_counts), (r["counts"], counts), (r["commands"], commands)):
            for k, v in src.items():
                dst[k] = dst.get(k, 0) + v
    glitches = one_per_episode(glitches)  # an episode is raised when it opens and when it closes: one row
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
    so_change = _so_change(bed_rows)
    for row in bed_rows:
        row["events"] = dict(sorted(by_bed.get(row["session"], {}).items()))
    db_note = ""
    if store is not None:
        journals = [root / ("journal" if p.index == 0 else f"journal-{p.index}") for p in parts]
        _end_rows(store, names, paths, stages, n_epochs, glitches, bed_rows, journals, alarms, run_id)
        from nexus.facility.orders import end_run

        end_run(store, run_id, "night over")
        db_note = store.engine.url.render_as_string(hide_password=True)
        store.close()
    notes = [] if all(r["has_stager"] for r in results) else ["no live stager: epochs were not staged"]
    notes.append("clicks, arousals caused and the slow-oscillation power change come from the synthetic "
                 "sleeper's response model (model-dependent figures, not evidence about people)")
    summary = SimulationSummary(
        clients=n, hours=hours, fs=fs, channels=len(tuple(channels)), wall_s=round(wall, 2),
        speedup=round(n * total / max(wall, 1e-9), 1), epochs_staged=sum(r["epochs"] for r in results),
        events=dict(sorted(event_counts.items())), glitches=glitch_counts, samples=counts,
        stage_minutes={lab: round(float(m) * EPOCH_S / 60 / n, 1)
                       for lab, m in zip(("W", "N1", "N2", "N3", "R"), stage_totals, strict=True)},
        recordings=len(paths), out=str(root), database=db_note,
        programs=sum(b.program is not None for b in beds), natural=sum(b.program is None for b in beds),
        commands=dict(sorted(commands.items())), clicks_late=sum(int(b.get("clicks_late", 0)) for b in bed_rows),
        decisions=sum(int(r["decisions"]) for r in results), so_power_change_pct=so_change, beds=bed_rows,
        notes=notes,
    )
    (root / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    return summary


def _so_change(beds: list[dict[str, Any]]) -> float | None:
    """Mean slow-oscillation power in N3 of stimulated beds against natural beds, in % (None without both)."""
    stim = [b["so_power_n3_uv2"] for b in beds if not b.get("natural") and b.get("so_power_n3_uv2")
            and b.get("click", 0) > 0]
    nat = [b["so_power_n3_uv2"] for b in beds if b.get("natural") and b.get("so_power_n3_uv2")]
    if not stim or not nat:
        return None
    return round(100.0 * (float(np.mean(stim)) / float(np.mean(nat)) - 1.0), 1)


def _abort_rows(store: Any, names: list[str], reason: str) -> None:
    from nexus.core.lifecycle import SessionState
    from nexus.store.models import NightSession

    with store.session() as s:
        for name in names:
            row = s.get(NightSession, name)
            if row is not None and row.state == SessionState.RUNNING:
                row.transition_to(SessionState.EXTRACTING)  # a running session leaves through extraction
            if row is not None and row.state == SessionState.EXTRACTING:
                row.transition_to(SessionState.ABORTED, reason=reason)


def _end_rows(store: Any, names: list[str], paths: dict[str, Path], stages: _StageLog, n_epochs: int,
              glitches: list[dict[str, Any]], beds: list[dict[str, Any]], journals: list[Path],
              alarms: list[dict[str, Any]] | None = None, run_id: str | None = None) -> None:
    from nexus.core.lifecycle import SessionState
    from nexus.core.settings import load_settings
    from nexus.store.audit import append_many, checkpoint
    from nexus.store.models import GlitchRow, HypnogramRow, NightSession

    by_name = {b["session"]: b for b in beds}
    with store.session() as s:
        # every automated decision is stored and audited in the same transaction (tamper-evident chain)
        store_decisions(s, journals, set(names))
        for name in names:
            row = s.get(NightSession, name)
            if row is None:
                logger.warning("No database row for %s.", name)
                continue
            if row.state == SessionState.RUNNING:
                row.transition_to(SessionState.EXTRACTING)
            if row.state == SessionState.EXTRACTING:  # (ended before by an extraction: its end stays)
                row.transition_to(SessionState.ENDED, reason="simulated night over")
            row.summary = {k: v for k, v in by_name.get(name, {}).items() if k != "session"}
            if name in paths:
                row.recording_path = str(paths[name])
            if name in stages.stages:
                s.add(HypnogramRow(session_id=row.id, kind="live", stages=stages.array(name, n_epochs).tolist(),
                                   confidence=stages.confidence_list(name, n_epochs)))
        for g in glitches:
            s.add(GlitchRow(session_id=g["session"], onset_s=g["onset"], duration_s=g["duration"] or None,
                            category=GlitchCategory(g["category"]), kind=g["description"],
                            priority=AlarmPriority(g["priority"]), channel=g["channel"], message=g["message"]))
        from nexus.store.alarms import save_alarms

        save_alarms(s, alarms or [], facility_run_id=run_id, sessions=set(names))  # the alarm log
        append_many(s, [{"actor": "system", "action": "session.ended", "subject": name,
                         "payload": {"reason": "simulated night over"}} for name in names])
        checkpoint(s, load_settings().secret_key)  # the night's signed head: a later rewrite is caught
