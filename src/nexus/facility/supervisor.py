"""The session supervisor: runs every live session of the facility on one clock.

One :meth:`Supervisor.step` (a *tick*) pulls what each source delivered, checks it at the edge,
records it, and advances every lane by one batched pipeline step. On a
:class:`~nexus.core.clock.RealClock` :meth:`Supervisor.run` ticks in real time; on a
:class:`~nexus.core.clock.ManualClock` it ticks in fast-forward through the same code (simulation,
tests). Tests call :meth:`step` directly and never sleep.

Bad data stays with its session. Each chunk is checked at the edge — channel count, sampling rate,
NaN/inf samples, sequence numbers (duplicates), timestamps going backwards — and a rejected chunk,
a source that raises, or a stream that vanishes raises a :class:`~nexus.monitor.glitch.Glitch` for
that session only; the lane fills its missing samples so the other sessions go on, and what was
recorded stays recorded. Backpressure: the jitter buffer of a lane is bounded; samples further
ahead (or arriving after their time was processed) are counted as dropped (or late), never queued
without bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.clock import Clock, ManualClock
from nexus.core.errors import InvalidInputError, NexusError, NotFoundError, StateError
from nexus.core.log import logger
from nexus.dreamscape.schema import Program
from nexus.facility.analyzers import AnalyzerFactory, default_analyzers
from nexus.facility.heap import settle_heap
from nexus.facility.pipeline import Lane, merge_counts
from nexus.facility.recorder import Recorder
from nexus.facility.step import StepOutput
from nexus.monitor.alarms import ESCALATE_AFTER_S, AlarmBook
from nexus.monitor.edge import ChunkGate, dropout_changes
from nexus.monitor.glitch import Glitch
from nexus.monitor.preparation import PreparationReport
from nexus.monitor.system import SystemWatch
from nexus.safety.extraction import ExtractionMode, ExtractionReport, parse_mode
from nexus.sinks.bedside import BedSink
from nexus.sources.base import Source
from nexus.store.recording import RecordingJournal


def _night_scopes(session: str, scopes: Sequence[str]) -> list[str]:
    """The consent of a night, refused (StateError) without ``recording``: a night needs live signals."""
    from nexus.guard.consent import Scope, effective_scopes

    sc = list(scopes)
    if Scope.RECORDING not in effective_scopes(sc):
        raise StateError(f"Session '{session}' cannot start: its client has not consented to 'recording', and a "
                         "night needs live signals. Record the consent first ('nexus client consent').")
    return sc


class Fleet(Protocol):
    """Many sessions generated together (e.g. :class:`~nexus.sources.synthetic.fleet.SyntheticFleet`)."""

    fs: float
    channels: tuple[str, ...]

    def next_chunk(self, n_samples: int) -> npt.NDArray[np.floating]:
        """The next ``n_samples`` of every session, shape (sessions, channels, samples)."""
        ...


@dataclass
class SessionRuntime:
    """The supervisor's view of one running session."""

    session: str
    lane: Lane
    slot: int
    source: Source | None = None
    started: bool = False
    state: str = "running"  # running, lost, ended
    retry_at: float = 0.0
    rejected: int = 0
    glitch_at: dict[str, float] = field(default_factory=dict)
    suppressed: int = 0
    gate: ChunkGate | None = None  # the edge checks of a sourced session's chunks (monitor layer)
    program: Program | None = None
    sink: BedSink | None = None
    scopes: list[str] | None = None
    withheld: int = 0  # psyche glitches not recorded for want of 'psyche_monitoring' consent
    backlog: list[tuple[Any, float]] = field(default_factory=list)  # (samples, t0) while its lane is built
    waiting_duplicates: int = 0  # duplicate chunks while it waited for its lane (counted once it joins)


@dataclass
class _FleetFeed:
    fleet: Fleet
    lane: Lane
    slots: slice
    sessions: list[str]
    start_index: int
    generated: int = 0


@dataclass
class TickReport:
    """What one tick did."""

    t: float
    samples: int = 0
    epochs: int = 0
    events: int = 0
    glitches: int = 0
    latency_s: float = 0.0


class Supervisor:
    """Runs live sessions on a clock, batched per layout, recording everything.

    Parameters
    ----------
    clock : Clock
        Real time (:class:`RealClock`) or fast-forward (:class:`ManualClock`).
    journal : RecordingJournal, optional
        Where raw signals, stages, events, glitches and decisions go (nothing is recorded without).
    analyzers : sequence of factories, optional
        The analyzers of each lane (default :func:`~nexus.facility.analyzers.default_analyzers`).
    delay_s : float
        How long a lane waits for late samples before processing them, in seconds (0 for
        generated sources that are always on time; ~0.2 s for network devices).
    buffer_s : float
        Jitter buffer per lane, in seconds (backpressure bound).
    dropout_s : float
        A session without samples for this long raises a ``dropout`` glitch.
    retry_s : float
        Time between attempts to reopen a failed source, in seconds.
    lane_capacity : int
        Session slots of a lane created for individual sources.
    record_signals : bool
        Record raw signals (stages, events and glitches are always recorded when a journal is given).
    step_s : float, optional
        Longest block of one lane step, in seconds (default: everything due). Fast-forward runs with
        a closed loop set it short, so that the sleepers hear each command before the signal it
        answers has moved on: generated sources are pulled step by step.
    deterministic : bool, optional
        Collect background work on a fixed schedule (see :attr:`deterministic`); default: on a
        :class:`~nexus.core.clock.ManualClock`.
    escalate_after_s : float
        A ``medium`` alarm left unacknowledged this long becomes ``high``, in seconds of the clock
        (:class:`~nexus.monitor.alarms.AlarmBook`; default 120 s).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        journal: RecordingJournal | None = None,
        analyzers: Sequence[AnalyzerFactory] | None = None,
        delay_s: float = 0.0,
        buffer_s: float = 8.0,
        dropout_s: float = 2.0,
        retry_s: float = 5.0,
        lane_capacity: int = 16,
        record_signals: bool = True,
        step_s: float | None = None,
        deterministic: bool | None = None,
        escalate_after_s: float = ESCALATE_AFTER_S,
    ) -> None:
        self.clock = clock
        self.deterministic = isinstance(clock, ManualClock) if deterministic is None else bool(deterministic)
        self._heap_settled = False  # the first run() settles the heap (callers stepping by hand do it themselves)
        """Lanes collect background work (live staging) on a fixed schedule, so a run repeats exactly (default:
        on a :class:`~nexus.core.clock.ManualClock`). A loop paced in real time by a manual clock (the facility
        service) turns it off: a tick then never waits for the stager, it takes the freshest result."""
        self.journal = journal
        self.analyzers = list(default_analyzers() if analyzers is None else analyzers)
        self.delay_s = check_number("delay_s", delay_s, ge=0, unit="s")
        self.buffer_s = check_number("buffer_s", buffer_s, gt=0, unit="s")
        self.dropout_s = check_number("dropout_s", dropout_s, gt=0, unit="s")
        self.retry_s = check_number("retry_s", retry_s, gt=0, unit="s")
        self.lane_capacity = int(lane_capacity)
        self.record_signals = record_signals
        self.step_s = None if step_s is None else check_number("step_s", step_s, gt=0, unit="s")
        self.recorder = Recorder(journal)
        self.lanes: list[Lane] = []
        self._lane_t0: dict[int, float] = {}
        self._system: dict[int, SystemWatch] = {}  # the monitor's system kinds, per lane
        self.sessions: dict[str, SessionRuntime] = {}
        self._sourced: list[SessionRuntime] = []  # sessions with their own source (fleets excluded)
        self._fleets: list[_FleetFeed] = []
        self.glitches: list[Glitch] = []
        self.alarm_book = AlarmBook(escalate_after_s)
        """Every glitch raised becomes an alarm (times on this clock); its ``log()`` is the night's alarm log."""
        self.latencies: list[float] = []
        self.ticks = 0
        self._finished_counts: dict[str, int] = {}
        self.extractions: dict[str, ExtractionReport] = {}
        """Every extraction ordered, by session (see :meth:`extract`)."""
        self.between_steps: list[Callable[[], object]] = []
        """Called after every lane step (e.g. the extraction-order desk: orders reach a long tick in time)."""
        self.listeners = self.recorder.listeners
        self.background_lanes = not isinstance(clock, ManualClock)
        """Build the lanes of new layouts on a background thread (real clock): their warm-up never stalls a tick."""
        self._joining: dict[str, SessionRuntime] = {}
        self._left_waiting: dict[str, SessionRuntime] = {}  # ended (extracted) while waiting for their lane
        self._building: dict[tuple[tuple[str, ...], float], Any] = {}
        self._builder: Any = None
        """Called with (kind, records) for stages, events, decisions and glitches (console feed, summaries)."""

    @property
    def event_counts(self) -> dict[str, int]:
        """Events found so far, by kind."""
        return self.recorder.event_counts

    @property
    def epochs_staged(self) -> int:
        """Epochs staged so far (all sessions)."""
        return self.recorder.epochs_staged

    # -- adding sessions -------------------------------------------------------------------------
    def _build_lane(self, channels: Sequence[str], fs: float, capacity: int) -> Lane:
        # a Lane with analyzers warms up every kernel of its layout (seconds): the background builder calls this
        return Lane(
            channels,
            fs,
            capacity,
            buffer_s=self.buffer_s,
            analyzers=self.analyzers,
            deterministic=self.deterministic,
        )

    def _new_lane(self, channels: Sequence[str], fs: float, capacity: int) -> Lane:
        return self._install_lane(self._build_lane(channels, fs, capacity))

    def _install_lane(self, lane: Lane) -> Lane:
        self.lanes.append(lane)
        self._lane_t0[id(lane)] = self.clock.now()
        self._system[id(lane)] = SystemWatch(lane.capacity, lane.fs)
        return lane

    def _due_index(self, lane: Lane, now: float | None = None) -> int:
        t = (self.clock.now() if now is None else now) - self._lane_t0[id(lane)] - self.delay_s
        return max(0, int(np.floor(t * lane.fs + 1e-9)))

    def _check_new(self, sessions: Iterable[str]) -> list[str]:
        names = list(sessions)
        dup = [s for s in names if s in self.sessions or s in self._joining]
        if dup or len(set(names)) != len(names):
            raise StateError(f"Session(s) {', '.join(dup or names)} already running; give each session a new id.")
        return names

    def add_fleet(self, fleet: Fleet, sessions: Sequence[str], *, programs: Sequence[Program | None] | None = None,
                  sinks: Sequence[BedSink | None] | None = None,
                  scopes: Sequence[Sequence[str] | None] | None = None) -> None:
        """Run many generated sessions (one lane, their own slots), e.g. a ``SyntheticFleet``.

        Parameters
        ----------
        fleet : Fleet
            Generates (sessions, channels, samples) blocks on demand.
        sessions : sequence of str
            Session ids, one per fleet row.
        programs : sequence of Program or None, optional
            Each bed's dreamscape (None: a natural, record-only night; default: all natural).
        sinks : sequence of BedSink or None, optional
            Each bed's sound output (None: no speaker; commands are still decided and journaled).
        scopes : sequence of consent scopes or None, optional
            Each bed's client's consent (see :mod:`nexus.guard.consent`); a program runs only as far as it
            allows. None: every scope (a dry run without clients).
        """
        names = self._check_new(sessions)
        for what, seq in (("programs", programs), ("sinks", sinks), ("scopes", scopes)):
            if seq is not None and len(seq) != len(names):
                raise InvalidInputError(f"Got {len(seq)} {what} for {len(names)} sessions: give one per session.")
        if self.journal is not None:
            for s in names:
                self.journal.add_session(s, fleet.channels, fleet.fs, sync=False)
            self.journal.flush(force=True)
        lane = self._new_lane(fleet.channels, fleet.fs, len(names))
        from nexus.sources.synthetic.fleet import SyntheticFleet

        if isinstance(fleet, SyntheticFleet) and self.analyzers:  # sleepers rendered inside the ticks: their
            from nexus.facility.warmup import warm_up_synthetic  # kernels too are compiled before the first one

            warm_up_synthetic(fleet.fs, fleet.channels, len(names))
        lane.attach(np.arange(len(names)), 0, sessions=names)
        for k, s in enumerate(names):
            given = None if scopes is None else scopes[k]
            sc = None if given is None else _night_scopes(s, given)
            self.sessions[s] = SessionRuntime(s, lane, k, started=True, scopes=sc)
            self._assign(lane, k, None if programs is None else programs[k], None if sinks is None else sinks[k], 0,
                         sc)
        self._lane_t0[id(lane)] = self.clock.now()  # its clock starts once the beds are set up, not before
        self._fleets.append(_FleetFeed(fleet, lane, slice(0, len(names)), names, 0))

    @staticmethod
    def _assign(lane: Lane, slot: int, program: Program | None, sink: BedSink | None, start_index: int,
                scopes: list[str] | None = None) -> None:
        loop = lane.analyzer("dreamscape")
        if loop is None or not hasattr(loop, "assign"):
            if program is not None:
                raise StateError("This facility runs no dreamscape loop (no EEG channel, or built without one); "
                                 "start the session without a program, as a natural night.")
            return
        loop.assign(slot, program, sink, t_start=start_index / lane.fs, scopes=scopes)

    def add_session(self, session: str, source: Source, *, preparation: PreparationReport | None = None,
                    override: bool = False, program: Program | None = None, sink: BedSink | None = None,
                    scopes: Sequence[str] | None = None) -> None:
        """Run one session fed by its own source (device, LSL, EDF replay).

        Parameters
        ----------
        session : str
            A new session id.
        source : Source
            Where its signals come from.
        preparation : PreparationReport, optional
            The session's pre-flight (:func:`nexus.facility.preflight.preflight`); a session that is
            not ready is refused unless ``override``.
        override : bool
            Start even though the pre-flight is not ready (the technician takes responsibility).
        program : Program, optional
            The session's dreamscape (default: a natural, record-only night).
        sink : BedSink, optional
            The bed's sound output.
        scopes : sequence of str, optional
            The client's consent scopes (default: every scope, for sessions without a client).
        """
        self._check_new([session])
        sc = None if scopes is None else _night_scopes(session, scopes)
        if preparation is not None and not preparation.ready and not override:
            raise StateError(
                f"Session '{session}' is not ready to start: {preparation.summary()}. Fix the electrodes and "
                "run the pre-flight again, or override it."
            )
        try:
            source.open()
        except NexusError:
            raise
        except Exception as exc:
            raise InvalidInputError(f"Cannot open the source of session '{session}': {exc}.") from None
        channels, fs = tuple(source.channels), float(source.fs)
        fleet_lanes = {id(f.lane) for f in self._fleets}
        lane, slot = None, None
        for ln in self.lanes:  # a lane of the same layout with a free slot, else a new lane
            if ln.channels == channels and ln.fs == fs and id(ln) not in fleet_lanes:
                slot = self._free_slot(ln)
                if slot is not None:
                    lane = ln
                    break
        if lane is None and self.background_lanes and self.analyzers:
            # a new layout (or every lane of it full): its lane is built and warmed up on a background thread,
            # never inside a tick; the bed joins when it is ready, and everything it sends meanwhile is journaled
            rt = SessionRuntime(session, None, -1, source=source)  # type: ignore[arg-type]
            rt.program, rt.sink, rt.scopes = program, sink, sc
            self._joining[session] = rt
            if self.journal is not None:
                self.journal.add_session(session, channels, fs)
            self._build_for((channels, fs))
            return
        if lane is None:
            lane = self._new_lane(channels, fs, self.lane_capacity)
            slot = 0
        assert slot is not None
        self.sessions[session] = rt = SessionRuntime(session, lane, slot, source=source)
        rt.program, rt.sink, rt.scopes = program, sink, sc
        self._sourced.append(rt)
        if self.journal is not None:
            self.journal.add_session(session, channels, fs)

    # -- lanes built in the background -----------------------------------------------------------
    def _build_for(self, layout: tuple[tuple[str, ...], float]) -> None:
        """Start building a lane of ``layout`` on the builder thread (once per layout at a time)."""
        if layout in self._building:
            return
        if self._builder is None:
            from concurrent.futures import ThreadPoolExecutor

            self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexus-lane-build")
        channels, fs = layout
        logger.info("Building a lane for %d channels at %g Hz in the background.", len(channels), fs)
        self._building[layout] = self._builder.submit(self._build_lane, channels, fs, self.lane_capacity)

    @property
    def joining(self) -> list[str]:
        """Sessions waiting for their lane (a new layout being built and warmed up); they record meanwhile."""
        return list(self._joining)

    def runtime(self, session: str) -> SessionRuntime | None:
        """A session of this supervisor: running, ended, or waiting for its lane (None: not one of its beds)."""
        return self.sessions.get(session) or self._joining.get(session) or self._left_waiting.get(session)

    def waiting_s(self, session: str) -> float | None:
        """Seconds (session time) a bed waiting for its lane has recorded so far; None when it is not waiting."""
        rt = self._joining.get(session)
        return None if rt is None else self._session_now(rt)

    def _install_built(self, wait: bool = False) -> None:
        """Install the lanes built meanwhile and start the sessions waiting for them (``wait``: all of them)."""
        for layout, fut in list(self._building.items()):
            if not wait and not fut.done():
                continue
            del self._building[layout]
            try:
                lane = self._install_lane(fut.result())
            except Exception as exc:  # the beds of this layout cannot be analysed: they stay out, said once
                for rt in [r for r in self._joining.values() if _layout(r) == layout]:
                    del self._joining[rt.session]
                    rt.state = "ended"
                    logger.error("Session %s cannot join: building its lane failed (%s).", rt.session, exc)
                    if rt.source is not None:
                        rt.source.close()
                continue
            free = iter(range(lane.capacity))
            for rt in [r for r in self._joining.values() if _layout(r) == layout]:
                slot = next(free, None)
                if slot is None:  # more beds than one lane holds: the next lane is built for them
                    self._build_for(layout)
                    if wait:
                        self._install_built(wait=True)
                    break
                del self._joining[rt.session]
                rt.lane, rt.slot = lane, slot
                self.sessions[rt.session] = rt
                self._sourced.append(rt)
                self._start_backlog(rt)

    def _start_backlog(self, rt: SessionRuntime) -> None:
        """Start a bed on its lane with its first samples (already journaled): they end now, ``delay_s`` ahead.

        Later samples may then arrive up to ``delay_s`` later than these did and still be in time. On a
        real clock, first samples older than that (a device's buffer, a bed that waited for its lane) are
        in the recording only, not analysed: the bed's analysis keeps up with the clock instead of
        lagging by them for the whole night (and overflowing the jitter buffer). In fast-forward every
        sample is analysed (the session starts where the lane is).
        """
        lane, chunks = rt.lane, rt.backlog
        rt.backlog = []
        lane.counts["duplicate"][rt.slot] += rt.waiting_duplicates
        rt.waiting_duplicates = 0
        if not chunks:
            return
        x_last, t_last = chunks[-1]
        end = round(t_last * lane.fs) + x_last.shape[1]  # session index after the last sample so far
        start = self._due_index(lane) + round(self.delay_s * lane.fs) - end
        if isinstance(self.clock, ManualClock):
            start = max(start, lane.processed - round(chunks[0][1] * lane.fs))
        lane.attach([rt.slot], start, sessions=[rt.session])
        self._assign(lane, rt.slot, rt.program, rt.sink, start, rt.scopes)
        rt.started = True
        for x, t0 in chunks:
            i0 = round(t0 * lane.fs)
            skip = min(x.shape[1], max(0, lane.processed - (start + i0)))  # already past: recorded, not analysed
            if skip < x.shape[1]:
                lane.put([rt.slot], [i0 + skip], x[None, :, skip:])

    def settle(self, timeout: float | None = None) -> None:
        """Wait until every lane being built is ready and its beds have joined (start-up, before the first tick)."""
        for fut in list(self._building.values()):
            fut.result(timeout=timeout)
        self._install_built(wait=True)

    def _free_slot(self, lane: Lane) -> int | None:
        used = {r.slot for r in self._sourced if r.lane is lane and r.state != "ended"}
        return next((i for i in range(lane.capacity) if i not in used), None)

    def end_session(self, session: str) -> None:
        """Stop one session: close its source, free its slot (its recording stays).

        A bed still waiting for its lane ends too: what it sent so far is journaled, it never joins its lane.
        """
        waiting = self._joining.get(session)
        if waiting is not None:
            self._pull_source(waiting, self.clock.now())  # what has arrived until now is recorded
            self._take_held(waiting)
            del self._joining[session]
            self._left_waiting[session] = waiting
            waiting.state, waiting.backlog = "ended", []
            self._close_source(waiting)
            return
        rt = self.sessions.get(session) or self._left_waiting.get(session)
        if rt is None:
            raise InvalidInputError(f"No running session '{session}'.")
        if rt.state == "ended":
            return
        self._take_held(rt)
        for k, v in rt.lane.counts.items():
            self._finished_counts[k] = self._finished_counts.get(k, 0) + int(v[rt.slot])
            v[rt.slot] = 0
        loop = rt.lane.analyzer("dreamscape")
        if loop is not None and hasattr(loop, "release"):
            loop.release(rt.slot, rt.lane.processed / rt.lane.fs)
        rt.lane.detach([rt.slot])
        rt.state = "ended"
        self._close_source(rt)

    def _take_held(self, rt: SessionRuntime) -> None:
        """Record the samples a closing source still holds (an LSL stream deciding a gap: ``flush``)."""
        flush = getattr(rt.source, "flush", None)
        if flush is None or rt.state == "lost":
            return
        try:
            for chunk in flush():
                self._accept(rt, chunk)
        except Exception as exc:  # a broken device must not stop the others from ending
            logger.warning("Session %s: samples held by its source at the end were lost: %s", rt.session, exc)

    @staticmethod
    def _close_source(rt: SessionRuntime) -> None:
        if rt.source is not None:
            try:
                rt.source.close()
            except Exception as exc:  # closing a broken device must not stop the facility
                logger.warning("Closing the source of %s failed: %s", rt.session, exc)

    def update_program(self, session: str, text: str, *, fmt: str = "yaml") -> Any:
        """Replace a running session's program with ``text`` if, and only if, it passes every check.

        A refused text leaves the bed on its last valid program; the refusal is journaled as a decision.
        Returns the :class:`~nexus.dreamscape.check.CheckReport`.
        """
        if session in self._joining:
            raise StateError(f"Session '{session}' is waiting for its lane (it records meanwhile); change its "
                             "program once it runs.")
        rt = self.sessions.get(session)
        if rt is None or rt.state == "ended":
            raise InvalidInputError(f"No running session '{session}'.")
        loop = rt.lane.analyzer("dreamscape")
        if loop is None or not hasattr(loop, "update_program"):
            raise StateError("This facility runs no dreamscape loop; programs cannot be changed.")
        report = loop.update_program(rt.slot, text, fmt=fmt, t=rt.lane.processed / rt.lane.fs)
        if report.ok:
            rt.program = report.program
        return report

    def set_consent(self, session: str, scopes: Sequence[str]) -> list[str]:
        """A client's consent changed: the running session follows it from its next step.

        A bed that may no longer hear anything is silenced now. Journaled as a ``consent_changed`` decision;
        returns what the new consent took out of the program. A client who withdraws ``recording`` ends the
        night now: the bed is released to natural sleep (silent), the session ends and nothing more is recorded
        (what was recorded before stays until the client asks for erasure).
        """
        from nexus.guard.consent import Scope, effective_scopes

        rt = self.sessions.get(session) or self._joining.get(session)
        if rt is None or rt.state == "ended":
            raise InvalidInputError(f"No running session '{session}'.")
        rt.scopes = list(scopes)
        if Scope.RECORDING not in effective_scopes(rt.scopes):
            self._decide(rt, "consent_withdrawn", {"scopes": rt.scopes},
                         "The client withdrew consent to recording: the night ends now, silent.")
            # stimulation stops at once; a bed not started yet (waiting for its lane) is safe at once, and its
            # extraction report tells the facility that it ended
            self.extract(session, ExtractionMode.RELEASE)
            self._end_extracted(session)
            return ["recording"]
        loop = rt.lane.analyzer("dreamscape") if rt.started else None
        if loop is None or not hasattr(loop, "set_consent"):  # nothing plays here (yet): journaled by the supervisor
            self._decide(rt, "consent_changed", {"scopes": rt.scopes, "removed": []},
                         "Consent changed; nothing plays at this bed, its recording and glitches follow it.")
            return []  # a bed not started yet runs under it from its start
        return list(loop.set_consent(rt.slot, rt.scopes, rt.lane.processed / rt.lane.fs))

    def _decide(self, rt: SessionRuntime, kind: str, inputs: dict[str, Any], reason: str) -> None:
        """Journal a decision of the supervisor itself (no dreamscape loop took it) and hand it to the listeners."""
        if self.journal is None and not self.listeners:
            return
        rec = {"session": rt.session, "kind": "decision", "onset": self._session_now(rt), "duration": 0.0,
               "description": kind, "command": None, "inputs": inputs, "reason": reason}
        if self.journal is not None:
            self.journal.write_records([rec])
        for cb in self.listeners:
            cb("records", [rec])

    # -- extraction ------------------------------------------------------------------------------
    def extract(self, session: str | Sequence[str] | None, mode: str | ExtractionMode = ExtractionMode.GENTLE
                ) -> list[ExtractionReport]:
        """Extract a session, a list of them, or (``None``) every session still running.

        Stimulation stops before this returns: every bed not yet under extraction is silenced
        first, then each order is carried out.

        Then a gentle wake, an immediate wake, or release to natural sleep (see
        :mod:`nexus.safety.extraction`); orders are idempotent and conflicting orders resolve to
        the safest. A woken session ends by itself once its wake is over (:meth:`step`). Each
        order and what it did are journaled as decisions at once.

        Raises
        ------
        NotFoundError
            A session is not in this facility (nothing is done).
        StateError
            A session has already ended (nothing is done).
        """
        m = parse_mode(mode)
        if session is None:
            targets = [rt for rt in self.sessions.values() if rt.state != "ended"] + list(self._joining.values())
        else:
            targets = []
            for name in [session] if isinstance(session, str) else list(session):
                # a bed waiting for its lane is extracted as one without a sound path (nothing plays there yet)
                found = self.runtime(name)
                if found is None:
                    raise NotFoundError(f"No session '{name}' in this facility; check the id ('nexus sessions').")
                if found.state == "ended":
                    raise StateError(f"Session '{name}' has already ended; there is nothing to extract.")
                targets.append(found)
        wall = time.time()
        silent_at: dict[str, float] = {}
        for rt in targets:  # silence first, all at once: the bookkeeping of a thousand beds can wait
            loop = rt.lane.analyzer("dreamscape") if rt.started else None
            if loop is not None and hasattr(loop, "silence_now"):
                loop.silence_now(rt.slot, rt.lane.processed / rt.lane.fs)
                silent_at[rt.session] = time.time()
        reports, records, to_end = [], [], []
        for rt in targets:
            lane, loop = rt.lane, (rt.lane.analyzer("dreamscape") if rt.started else None)
            if rt.started and loop is not None and hasattr(loop, "extract"):
                t = rt.lane.processed / rt.lane.fs
                outcome, decisions = loop.extract(rt.slot, m, t)
                t_s = float(lane.session_time([rt.slot], [t])[0])
                for d in decisions:
                    rec = d.to_dict()
                    if rec["command"] is not None:
                        rec["command"]["t"] = t_s
                    records.append({"session": rt.session, "kind": "decision", "onset": t_s, "duration": 0.0,
                                    "description": d.kind, "command": rec["command"], "inputs": rec["inputs"],
                                    "reason": d.reason})
                rep = ExtractionReport(rt.session, m.value, outcome.mode.value, outcome.outcome, outcome.reason,
                                       t_s, wall, safe_wall=silent_at.get(rt.session, time.time()))
            else:  # nothing plays at this bed (not started yet, or no sound path): safe already
                t_s = self._session_now(rt)
                rt.program = None
                rep = ExtractionReport(rt.session, m.value, m.value, "started", "No sound path at this bed: "
                                       "safe at once" + ("." if m is ExtractionMode.RELEASE else
                                                         "; the session ends (wake the sleeper in person)."),
                                       t_s, wall, safe_wall=wall)
                records.append({"session": rt.session, "kind": "decision", "onset": t_s, "duration": 0.0,
                                "description": "extraction_order", "command": None,
                                "inputs": {"requested": m.value, "speaker": False}, "reason": rep.reason})
                if m is not ExtractionMode.RELEASE:
                    to_end.append(rt.session)
            prev = self.extractions.get(rt.session)
            if prev is not None:  # keep when the first order came and when the bed was first safe
                rep.ordered_wall, rep.safe_wall = prev.ordered_wall, prev.safe_wall or rep.safe_wall
            self.extractions[rt.session] = rep
            reports.append(rep)
        if self.journal is not None and records:
            self.journal.write_records(records)
            self.journal.flush(force=True)
        for cb in self.listeners:
            if records:
                cb("records", records)
        for name in to_end:
            self._end_extracted(name)
        return reports

    def _end_extracted(self, name: str) -> None:
        rep = self.extractions.get(name)
        self.end_session(name)
        if rep is not None:
            rep.done_wall, rep.ended = time.time(), True
            for cb in self.listeners:
                cb("extraction", [rep.as_dict()])

    def _finish_extractions(self) -> None:
        """End the sessions whose extraction is done (woken, silent again)."""
        for lane in self.lanes:
            machine = getattr(lane.analyzer("dreamscape"), "extraction", None)
            if machine is None:
                continue
            for slot in machine.take_done():
                name = lane.sessions[slot]
                machine.clear(slot)
                if name is not None and self.sessions[name].state != "ended":
                    self._end_extracted(name)

    # -- the tick --------------------------------------------------------------------------------
    def step(self, due_at: float | None = None) -> TickReport:
        """One tick: pull from every source, check and record at the edge, advance every lane.

        ``due_at`` is the clock time the tick was scheduled for (default: now); on a real clock
        the tick's latency is measured from it.
        """
        t_tick = self.clock.now()
        wall0 = time.perf_counter()
        rep = TickReport(t=t_tick)
        n_glitch = len(self.glitches)
        if self._building:
            self._install_built()
        for rt in self._sourced:
            if rt.state != "ended":
                self._pull_source(rt, t_tick)
        for rt in list(self._joining.values()):  # waiting for their lane: recorded now, analysed once it is built
            self._pull_source(rt, t_tick)
        stepped = False
        for lane in self.lanes:
            due = self._due_index(lane, t_tick)
            feeds = [f for f in self._fleets if f.lane is lane]
            block = lane.size if self.step_s is None else max(1, round(self.step_s * lane.fs))
            while lane.processed < due:
                upto = min(due, lane.processed + block)
                for feed in feeds:
                    self._pull_fleet(feed, upto)
                lane.glitch[:] = lane.in_dropout
                out = lane.step(upto, arrived_at=wall0)
                rep.samples += out.n_samples
                self._collect(lane, out, rep)
                stepped = True
                for cb in self.between_steps:
                    cb()
            self._watch_dropouts(lane)
            self._watch_system(lane, self._system[id(lane)].counters(lane.counts, lane.active))
        if not stepped:  # no lane stepped (none yet: every bed waits for its lane): the desks are read all the same
            for cb in self.between_steps:
                cb()
        self._finish_extractions()
        self.alarm_book.tick(self.clock.now())  # medium alarms left unacknowledged become high
        if self.journal is not None:
            self.journal.flush()
        rep.glitches = len(self.glitches) - n_glitch
        # latency: from the moment the tick's data were due until their results were out
        if isinstance(self.clock, ManualClock):
            rep.latency_s = time.perf_counter() - wall0
        else:
            # in wall seconds: a replay on a clock running X times faster misses its deadline in real time too
            speed = float(getattr(self.clock, "speed", 1.0))
            rep.latency_s = (self.clock.now() - (t_tick if due_at is None else due_at)) / speed
        self.latencies.append(rep.latency_s)
        if not isinstance(self.clock, ManualClock):  # fast-forward has no deadline to miss
            for lane in self.lanes:
                self._watch_system(lane, self._system[id(lane)].latency(rep.latency_s, lane.active))
        self.ticks += 1
        return rep

    def _pull_fleet(self, feed: _FleetFeed, upto: int) -> None:
        lane = feed.lane
        due = upto - feed.start_index
        n = due - feed.generated
        if n <= 0:
            return
        n = min(n, lane.size)  # never generate more than the lane can hold; the rest follows next tick
        data = feed.fleet.next_chunk(n)
        bad_before = lane.counts["bad"][feed.slots].copy()
        lane.put(feed.slots, feed.generated, data)
        if self.journal is not None and self.record_signals:
            self.journal.write_signals(feed.sessions, np.full(len(feed.sessions), feed.generated / lane.fs), data)
        bad = np.flatnonzero(lane.counts["bad"][feed.slots] > bad_before)
        for k in bad:  # rare: only sessions with bad samples get Python work
            self._glitch(self.sessions[feed.sessions[k]], feed.generated / lane.fs, "bad_samples",
                         "NaN or infinite samples were replaced by the last good value.")
        feed.generated += n

    def _pull_source(self, rt: SessionRuntime, now: float) -> None:
        if rt.state == "lost":
            if now < rt.retry_at:
                return
            try:
                rt.source.close()  # type: ignore[union-attr]
                rt.source.open()  # type: ignore[union-attr]
                rt.state = "running"
            except Exception as exc:
                rt.retry_at = now + self.retry_s
                logger.info("Session %s: source still unavailable (%s).", rt.session, exc)
                return
        for _ in range(64):  # bounded: a source cannot keep one tick busy forever
            try:
                chunk = rt.source.read()  # type: ignore[union-attr]
            except Exception as exc:
                rt.state, rt.retry_at = "lost", now + self.retry_s
                self._glitch(rt, self._session_now(rt), "source_error",
                             f"The source failed: {exc}. Retrying every {self.retry_s:g} s.")
                break
            if chunk is None:
                break
            self._accept(rt, chunk)
        if not rt.started and rt.backlog and rt.session not in self._joining:
            self._start_backlog(rt)  # everything it had so far, in one go: its last sample ends now

    def _session_now(self, rt: SessionRuntime) -> float:
        if not rt.started:  # waiting for its lane: the end of what it recorded so far
            if not rt.backlog:
                return 0.0
            x, t0 = rt.backlog[-1]
            return float(t0 + x.shape[1] / float(rt.source.fs))  # type: ignore[union-attr]
        lane = rt.lane
        return (lane.processed - lane.origin[rt.slot]) / lane.fs

    def _accept(self, rt: SessionRuntime, chunk: Any) -> None:
        lane = rt.lane
        if rt.gate is None:
            rt.gate = ChunkGate(len(rt.source.channels), float(rt.source.fs))  # type: ignore[union-attr]
        # the monitor's edge checks (a waiting bed's chunks must follow on from its first, too)
        v = rt.gate.check(chunk.data, chunk.fs, chunk.seq, chunk.t0, started=rt.started or bool(rt.backlog))
        rt.rejected += v.rejected
        if rt.session in self._joining:
            rt.waiting_duplicates += v.duplicate
        else:
            lane.counts["duplicate"][rt.slot] += v.duplicate
        for kind, onset, message in v.issues:
            self._glitch(rt, onset, kind, message)
        if v.data is None:
            return
        x, t0 = v.data, v.t0
        if rt.session in self._joining or not rt.started:  # journaled now, kept for the lane (_start_backlog)
            rt.backlog.append((x, t0))
            keep = self.buffer_s * float(chunk.fs)  # the lane needs only its last delay_s; its buffer is plenty
            while len(rt.backlog) > 1 and sum(b[0].shape[1] for b in rt.backlog[1:]) >= keep:
                rt.backlog.pop(0)
            if self.journal is not None and self.record_signals:
                self.journal.write_signals([rt.session], [t0], x[None])
            return
        if self.journal is not None and self.record_signals:
            self.journal.write_signals([rt.session], [t0], x[None])
        lane.put([rt.slot], [round(t0 * lane.fs)], x[None])

    def _watch_dropouts(self, lane: Lane) -> None:
        # vectorised over the lane; Python work only for the sessions whose state changes
        gone, back = dropout_changes(lane.missing_run, lane.active, lane.in_dropout, int(self.dropout_s * lane.fs))
        if not gone.size and not back.size:
            return
        names = lane.sessions
        for s in gone:
            lane.in_dropout[s] = True
            rt = self.sessions[names[int(s)]]  # type: ignore[index]
            self._glitch(rt, self._session_now(rt) - lane.missing_run[s] / lane.fs, "dropout",
                         f"No samples for {self.dropout_s:g} s; the stream vanished.", force=True)
        if back.size:
            for a in lane.analyzers:  # the history before the gap no longer matches
                a.reset(back)
        for s in back:
            lane.in_dropout[s] = False
            rt = self.sessions[names[int(s)]]  # type: ignore[index]
            self._glitch(rt, self._session_now(rt), "stream_returned", "Samples arrive again.", force=True)

    def _watch_system(self, lane: Lane, issues: list[Any]) -> None:
        # queue_backlog, late and controller_late from the loop's counters and latency (nexus.monitor.system)
        raised: dict[str, list[tuple[str, str]]] = {}
        for iss in issues:
            name = lane.sessions[iss.slot]
            rt = self.sessions.get(name) if name is not None else None
            if rt is not None and rt.state != "ended" and self._glitch(
                    rt, self._session_now(rt), iss.kind, iss.message, evidence=iss.evidence, log=False):
                raised.setdefault(iss.kind, []).append((rt.session, iss.message))
        # a late loop is late for every bed of the lane: one log line per kind, not one per bed (a thousand
        # lines written in a late tick made the next one late too)
        for kind, beds in raised.items():
            if len(beds) == 1:
                logger.warning("Session %s: %s — %s", beds[0][0], kind, beds[0][1])
            else:
                logger.warning("%d beds (%s … %s): %s — %s", len(beds), beds[0][0], beds[-1][0], kind, beds[0][1])

    def _glitch(self, rt: SessionRuntime, onset: float, kind: str, message: str, *, force: bool = False,
                channel: str | None = None, duration: float | None = None,
                evidence: dict[str, Any] | None = None, log: bool = True) -> bool:
        """Raise a glitch of a session (alarm, journal, listeners); False when it was not raised.

        ``log=False`` leaves the log line to the caller (one line for many beds).
        """
        # the same kind of glitch is raised at most once a minute per session (the counters keep the rest)
        last = rt.glitch_at.get(kind)
        now = self.clock.now()
        if not force and last is not None and now - last < 60.0:
            rt.suppressed += 1
            return False
        rt.glitch_at[kind] = now
        g = Glitch(rt.session, float(onset), kind, message, channel, duration, evidence or {})
        if g.category == "psyche" and rt.scopes is not None and "psyche_monitoring" not in rt.scopes:
            # no psyche consent: the controller still silences the bed at once, but the episode is neither
            # journaled, stored nor shown (guard.consent: psyche glitches only with 'psyche_monitoring')
            rt.withheld += 1
            logger.info("Session %s: a psyche glitch was withheld (no 'psyche_monitoring' consent).", rt.session)
            return False
        self.glitches.append(g)
        self.alarm_book.raise_glitch(g, now)
        if log:
            logger.warning("Session %s: %s — %s", rt.session, kind, message)
        rec = g.as_record()
        if self.journal is not None:
            self.journal.write_records([rec])
        for cb in self.listeners:
            cb("glitch", [rec])
        return True

    def _collect(self, lane: Lane, out: StepOutput, rep: TickReport) -> None:
        epochs, events = self.recorder.write(lane, out)
        rep.epochs += epochs
        rep.events += events
        for g in out.glitches:  # raised by analyzers (monitor, controller, sinks): named here
            name = lane.sessions[g.slot]
            if name is not None:
                rt = self.sessions[name]
                self._glitch(rt, float(lane.session_time([g.slot], [g.onset])[0]), g.kind, g.message, force=True,
                             channel=g.channel, duration=g.duration, evidence=g.evidence)

    # -- running ---------------------------------------------------------------------------------
    def run(self, seconds: float, tick_s: float = 0.1,
            on_tick: Callable[[TickReport], None] | None = None) -> list[TickReport]:
        """Tick every ``tick_s`` seconds for ``seconds`` of clock time.

        On a real clock the loop sleeps until each tick is due (a late tick is not repeated: the
        next one processes everything due); on a :class:`ManualClock` it advances the clock.
        """
        check_number("tick_s", tick_s, gt=0, unit="s")
        if not self._heap_settled:  # no full garbage collection of the set-up's objects inside a tick (heap.py)
            settle_heap()
            self._heap_settled = True
        reports = []
        t_end = self.clock.now() + seconds
        nxt = self.clock.now()
        while True:
            nxt = min(nxt + tick_s, t_end)
            if isinstance(self.clock, ManualClock):
                self.clock.advance(max(0.0, nxt - self.clock.now()))
            else:
                self.clock.sleep_until(nxt)
            rep = self.step(due_at=nxt)
            reports.append(rep)
            if on_tick is not None:
                on_tick(rep)
            if nxt >= t_end - 1e-9:
                break
        return reports

    @property
    def counts(self) -> dict[str, int]:
        """Sample counters over all sessions: received, missing, late, duplicate, dropped, bad, rejected."""
        tot = merge_counts(self.lanes)
        for k, v in self._finished_counts.items():
            tot[k] = tot.get(k, 0) + v
        tot["rejected"] = sum(rt.rejected for rt in self.sessions.values())
        return tot

    def session_counts(self, session: str) -> dict[str, int]:
        """Sample counters of one running session."""
        rt = self.sessions[session]
        c = {k: int(v[rt.slot]) for k, v in rt.lane.counts.items()}
        c["rejected"] = rt.rejected
        return c

    def lag_s(self) -> float:
        """How far the slowest lane is behind the clock, in seconds."""
        return max((max(0, self._due_index(ln) - ln.processed) / ln.fs for ln in self.lanes), default=0.0)

    def close(self) -> None:
        """End every session (sources closed) and flush the journal; the journal stays open to finalize.

        Results still held by analyzers (background staging) are collected and recorded first. Beds
        waiting for their lane join first (their lane's build is waited for), so that they end as the others.
        """
        try:
            self.settle(timeout=120.0)
        except Exception as exc:  # a build that fails or hangs: those beds end with what they journaled
            logger.error("Lanes still being built at the end could not be installed: %s", exc)
        for rt in list(self._joining.values()):
            self._pull_source(rt, self.clock.now())
            self._take_held(rt)
            rt.state = "ended"
            if rt.source is not None:
                rt.source.close()
        self._joining.clear()
        if self._builder is not None:
            self._builder.shutdown(wait=False, cancel_futures=True)
        for lane in self.lanes:
            self._collect(lane, lane.finish(), TickReport(t=self.clock.now()))
        for name in list(self.sessions):
            self.end_session(name)
        for lane in self.lanes:
            lane.close()
        if self.journal is not None:
            self.journal.flush(force=True)


def _layout(rt: SessionRuntime) -> tuple[tuple[str, ...], float]:
    src = rt.source
    assert src is not None
    return tuple(src.channels), float(src.fs)
