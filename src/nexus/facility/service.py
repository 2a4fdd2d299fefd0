"""The facility as a service: a live supervisor of synthetic beds, snapshots for the API, a feed for consoles.

:class:`FacilityService` owns one :class:`~nexus.facility.supervisor.Supervisor` whose clock a
background thread advances in bounded ticks, paced by a :class:`~nexus.core.clock.ScaledClock`
(real time × ``speed``), with ``clients`` synthetic sleepers
planned by :func:`~nexus.facility.simulate.plan_beds` (curated programs, a share of natural nights)
and a :class:`~nexus.facility.beds.SleeperSink` per stimulated bed. :meth:`start` writes clients,
programs and sessions to the facility database and starts the tick loop in a background thread;
glitches are written as they are raised; at :meth:`stop` (or when a bed is extracted) the bed's
decisions (read back from the journal), live hypnogram and summary are written and the session ends.

Every read is a copy taken under one lock (:meth:`beds`, :meth:`bed`, :meth:`hypnogram`, …), so the
API never sees a half-updated bed. Consoles :meth:`subscribe` to a fan-out of JSON messages (bed
updates, stages, alarms); each subscriber has a bounded queue, and one that falls behind is dropped
— the loop never waits for a browser.

Without the thread (``start(background=False)``) nothing moves until :meth:`advance`: tests step the night.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from nexus.core.checks import check_number
from nexus.core.clock import ManualClock, ScaledClock
from nexus.core.errors import InvalidInputError, NotFoundError, StateError
from nexus.core.glitches import AlarmPriority, GlitchCategory
from nexus.core.log import logger
from nexus.core.stages import EPOCH_S
from nexus.facility.analyzers import default_analyzers
from nexus.facility.epochlog import EpochTable
from nexus.facility.recorder import round_rows
from nexus.facility.records import start_rows, store_decisions
from nexus.facility.simulate import SIM_CHANNELS, BedPlan, plan_beds
from nexus.facility.supervisor import Supervisor
from nexus.monitor.alarms import ESCALATE_AFTER_S
from nexus.monitor.glitch import Glitch
from nexus.safety.extraction import Phase
from nexus.store.db import Store
from nexus.store.recording import RecordingJournal

STAGE_LABELS = {-2: "unscored", -1: "artefact", 0: "W", 1: "N1", 2: "N2", 3: "N3", 4: "R"}
QUIET_EVENTS = frozenset({"r_peak"})
PRIORITY_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}


#: Beds viewed per hold of the service's lock in a snapshot (about 1 ms a hold; see FacilityService.beds).
VIEW_CHUNK = 32

#: Seconds (wall) for which consoles joining share one snapshot (see FacilityService.join).
SNAPSHOT_SHARE_S = 2.0

#: orjson's options for feed messages: NumPy scalars and arrays as numbers, non-string keys as json.dumps writes them.
_FEED_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def feed_text(msg: dict[str, Any]) -> str:
    """A feed message (or snapshot) as compact JSON text, the same values as ``json.dumps`` gives.

    orjson writes it: both hold the interpreter for the whole message, and a tick running beside the feed thread
    or a snapshot waited that long (500-bed snapshot 12.4 -> 1.6 ms, a 128-bed ``beds`` message 2.4 -> 0.14 ms,
    loaded). A float that is not finite is written as ``null`` (``json.dumps`` wrote ``NaN``, which a browser's
    ``JSON.parse`` refuses); what orjson cannot write (an integer beyond 64 bits) goes the standard library's way.
    """
    try:
        return orjson.dumps(msg, option=_FEED_JSON).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(msg, separators=(",", ":"))


#: Changed beds viewed for the feed per tick: after an epoch close every bed has changed, and viewing 500 beds in one
#: tick took it 5-6 ms (loaded); the rest follow in the next ticks.
BEDS_PER_TICK = 128


@dataclass
class _Bed:
    """What the service knows about one bed (guarded by the service lock)."""

    index: int
    plan: BedPlan
    client_id: str = ""
    state: str = "running"  # running, ended
    stage: int = -2
    probs: list[float] | None = None  # the last epoch's hypnodensity (every closed epoch's: the service's table)
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50))
    event_counts: dict[str, int] = field(default_factory=dict)
    # flat tuples (t_s, kind, reason, None) or (t_s, kind, reason, key, value, key, value, ...) with the command's
    # items: of atomic values, the garbage collector stops tracking them at its first look (a dict holding the
    # command dict stayed tracked: 100,000 of them at 500 beds once these are full); decisions() makes the dicts
    decisions: deque[tuple[Any, ...]] = field(default_factory=lambda: deque(maxlen=200))
    end_reason: str | None = None
    final_commands: dict[str, int] = field(default_factory=dict)
    version: int = 0


class Subscriber:
    """One console's feed: a bounded queue of JSON texts. ``dropped`` is set when it fell behind.

    ``notify``, when set, is called (from the thread that sends) after a message was queued and when the feed is
    dropped: the WebSocket route wakes on it instead of polling the queue.
    """

    def __init__(self, maxsize: int) -> None:
        self.queue: queue.Queue[str] = queue.Queue(maxsize=maxsize)
        self.dropped = False
        self.notify: Callable[[], None] | None = None

    def _wake(self) -> None:
        if self.notify is not None:
            self.notify()

    def get(self, timeout: float | None = None) -> str | None:
        """The next message, or None when none came within ``timeout`` seconds (0: do not wait)."""
        try:
            return self.queue.get(block=bool(timeout), timeout=timeout or None)
        except queue.Empty:
            return None


class _FaultyFleet:
    """A fleet that turns short stretches of chosen beds into NaN (the supervisor raises ``bad_samples``).

    Demonstrations and tests of the alarm path only; the signals stay those of the wrapped fleet.
    """

    def __init__(self, fleet: Any, faults: Sequence[tuple[int, float]]) -> None:
        self.fleet = fleet
        self.fs = fleet.fs
        self.channels = fleet.channels
        self.faults = sorted((int(r), float(t)) for r, t in faults)
        self.done = 0

    def next_chunk(self, n_samples: int) -> Any:
        x = self.fleet.next_chunk(n_samples)
        a, b = self.done, self.done + n_samples
        for row, t in self.faults:
            k = round(t * self.fs)
            if a <= k < b:
                x[row, :, k - a: min(b, k + 10) - a] = np.nan
        self.done = b
        return x

    def play(self, *args: Any, **kwargs: Any) -> Any:
        return self.fleet.play(*args, **kwargs)


class FacilityService:
    """A running facility of synthetic beds.

    Parameters
    ----------
    store : Store
        The facility database (at the migration head).
    clients : int
        Number of beds.
    clock : ManualClock, optional
        The night's clock (default: a new one). The loop thread advances it one tick at a time, paced by a
        :class:`ScaledClock` at ``speed``; without the thread, :meth:`advance` moves it.
    speed : float
        How much faster than real time the night runs (1 = real time).
    hours : float
        Length of the night, in hours; every bed ends when it is over.
    data_dir : path-like
        Where the run's journal goes (``<data_dir>/runs/<run id>/journal``).
    seed : int
        Seed of the first sleeper.
    fs : float
        Sampling rate of the sleepers, in Hz.
    events : bool
        Run the event detectors.
    faults : sequence of (bed index, time in s)
        Stretches of NaN samples to inject (each raises a low-priority ``bad_samples`` alarm).
    queue_size : int
        Messages a console may fall behind before it is dropped.
    run_id : str, optional
        Prefix of the session ids (default: a new random one).
    escalate_after_s : float
        A ``medium`` alarm left unacknowledged this long becomes ``high``, in seconds of the night's
        clock (default 120 s, :data:`~nexus.monitor.alarms.ESCALATE_AFTER_S`).
    """

    def __init__(self, store: Store, *, clients: int = 24, clock: ManualClock | None = None, speed: float = 1.0,
                 hours: float = 8.0, data_dir: str | Path = "nexus-data", seed: int = 0, fs: float = 100.0,
                 events: bool = True, faults: Sequence[tuple[int, float]] = (), queue_size: int = 1024,
                 run_id: str | None = None, escalate_after_s: float = ESCALATE_AFTER_S) -> None:
        self.n = int(check_number("clients", clients, ge=1, le=2000))
        self.escalate_after_s = check_number("escalate_after_s", escalate_after_s, gt=0, unit="s")
        self.speed = check_number("speed", speed, gt=0, le=10_000)
        self.hours = check_number("hours", hours, gt=0, le=24, unit="h")
        self.store = store
        self.clock = clock if clock is not None else ManualClock()
        self.wall = ScaledClock(self.speed)  # paces the loop thread (reset at start)
        self.run_id = run_id or "r" + uuid.uuid4().hex[:8]
        self.root = Path(data_dir) / "runs" / self.run_id
        self.seed, self.fs, self.detect_events = int(seed), float(fs), bool(events)
        self.faults = list(faults)
        self.queue_size = int(check_number("queue_size", queue_size, ge=1))
        # lane steps of 0.1 s (the analyzers' default): CLAS predicts the phase over a step plus the sound latency;
        # a tick of the loop thread covers ~0.25 s of real time
        self.step_s = 0.1
        self.tick_s = max(0.25, 0.25 * self.speed)
        self.beds_every_s = max(self.tick_s, self.speed)
        self._last_beds = -np.inf
        self._lock = threading.RLock()
        self._subs_lock = threading.Lock()
        self._subs: list[Subscriber] = []
        # with the loop thread: its feed messages wait here and are serialised and sent by the feed thread after
        # the tick (at 500 beds an epoch close's 'stages' and the next 'beds' took a tick 1.5-5 ms of JSON)
        self._outbox: deque[dict[str, Any]] = deque()
        self._feed_wake = threading.Event()
        self._feed_thread: threading.Thread | None = None
        self._loop_tid: int | None = None
        # consoles joining at once share one snapshot: (wall time it began, its JSON text), the messages sent since
        # it began (kept while it is shared), and one console building it at a time
        self._snapshot: tuple[float, str] | None = None
        self._since_snapshot: list[str] | None = None
        self._join_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beds: list[_Bed] = []
        self._by_session: dict[str, _Bed] = {}
        self._alarms: dict[int, dict[str, Any]] = {}
        # the console's alarms (ids of their glitch rows) ↔ the supervisor's AlarmBook (the night's alarm log)
        self._book_of: dict[int, int] = {}
        self._alarm_of: dict[int, int] = {}
        self._pending_glitches: list[dict[str, Any]] = []
        self._tick_ms: deque[float] = deque(maxlen=240)  # wall time of the last ticks' supervisor steps, ms
        self._tick_at: deque[float] = deque(maxlen=240)  # and the night's clock at their end, s
        self._tick_cpu_ms: deque[float] = deque(maxlen=240)  # and the loop thread's CPU time in them, ms
        self._changed: set[str] = set()
        # every bed's closed epochs (stage, confidence, hypnodensity): arrays, not ~1,000 tracked lists a bed a night
        # that every full garbage collection late in the night scanned (see facility/epochlog.py)
        # sized for the planned night from the start: a floor of real beds (FloorService) keeps this table and its
        # beds join while it runs (rows grow by doubling); doubling the epochs too meant ~11 copies of it a night
        self._log = EpochTable(0, int(np.ceil(self.hours * 3600.0 / EPOCH_S)) + 1)
        self._to_view: list[str] = []  # changed beds of the last flush not viewed yet (BEDS_PER_TICK a tick)
        self.sup: Supervisor | None = None
        self.journal: RecordingJournal | None = None
        self.desk: Any = None  # the extraction order desk (orders from 'nexus extract' through the database)
        self.consent: Any = None  # follows the beds' clients' consent in the database (see facility.consent_desk)
        self.watchdog: Any = None  # the dead-man's switch over the sinks' leases (with the loop thread)
        self._extracted: list[dict[str, Any]] = []  # extractions whose wake is over: rows to write
        self._unwritten: list[tuple[Any, ...]] = []  # ended beds whose rows wait for the database
        self._db_log_at = 0.0
        self.started = False
        self.stopped = False

    # -- life cycle ------------------------------------------------------------------------------
    def start(self, *, background: bool = False) -> None:
        """Plan the beds, write them to the database, start every session; ``background``: start the loop thread.

        Without the thread nothing moves until :meth:`advance` (tests, fast-forward).
        """
        from nexus.facility.beds import SleeperSink
        from nexus.sinks.bedside import BedSink
        from nexus.sources.synthetic.fleet import SyntheticFleet

        if self.started:
            raise StateError("The facility is already running.")
        from nexus.facility.orders import OrderDesk, register_run

        plans = plan_beds(self.n, seed=self.seed, hours=self.hours, run_id=self.run_id)
        start_rows(self.store, plans)
        # the run owns its sessions: 'nexus recover' (and the next 'nexus run') ends them if this process dies
        register_run(self.store, self.run_id, [self.root / "journal"], [p.session for p in plans])
        from sqlalchemy import select

        from nexus.store.models import NightSession

        with self.store.session() as s:
            owners = dict(s.execute(select(NightSession.id, NightSession.client_id)
                                    .where(NightSession.id.in_([p.session for p in plans]))).all())
        self._beds = [_Bed(k, p, client_id=owners.get(p.session, "")) for k, p in enumerate(plans)]
        self._by_session = {b.plan.session: b for b in self._beds}
        self._log = EpochTable(len(self._beds), int(np.ceil(self.hours * 3600.0 / EPOCH_S)) + 1)
        base = SyntheticFleet([p.profile for p in plans], [p.seed for p in plans], hours=self.hours, fs=self.fs,
                              channels=SIM_CHANNELS)
        fleet: Any = _FaultyFleet(base, self.faults) if self.faults else base
        if self.faults:  # the wrapper hides the renderer from Supervisor.add_fleet's warm-up: without this, the
            # first tick of 'nexus run' (3 faults by default) compiled or loaded the renderer (2.7 s CPU at 500
            # beds, loaded) and the watchdog put every bed in the safe state before the night had begun
            from nexus.facility.warmup import warm_up_synthetic

            warm_up_synthetic(base.fs, base.channels, self.n)
        self.journal = RecordingJournal(self.root / "journal", background_sync=True)
        self.sup = Supervisor(self.clock, journal=self.journal,
                              analyzers=default_analyzers(events=self.detect_events, block_s=self.step_s),
                              buffer_s=2 * self.tick_s + 2.0, record_signals=False, step_s=self.step_s,
                              # paced in real time by the loop thread: a tick never waits for the stager (a
                              # fixed collection schedule made every 5th second's tick wait for it)
                              deterministic=not background, escalate_after_s=self.escalate_after_s)
        self.sup.listeners.append(self._on_records)
        sinks: list[BedSink | None] = [None if p.program is None else SleeperSink(base, k, p.program)
                                       for k, p in enumerate(plans)]
        self.sup.add_fleet(fleet, [p.session for p in plans], programs=[p.program for p in plans], sinks=sinks,
                           scopes=[p.scopes for p in plans])
        # 'nexus extract' from another process: orders in the database, polled after every lane step
        self.desk = OrderDesk(self.store, self.sup, self.run_id, background=background)  # the live loop: the
        # database is read on the desks' own threads, and a step only applies what they read
        self.sup.between_steps.append(self.desk.poll)
        # consent changed through the API or 'nexus client consent': followed from the next step
        from nexus.facility.consent_desk import ConsentDesk

        self.consent = ConsentDesk(self.store, self.sup, [p.session for p in plans], background=background)
        self.sup.between_steps.append(self.consent.poll)
        self.started = True
        logger.info("Facility %s: %d beds running at %gx real time.", self.run_id, self.n, self.speed)
        if background:
            from nexus.safety.watchdog import LEASE_S, Watchdog

            # dead-man's switch on the wall clock: a loop that stalls leaves every bed silent within 2 s
            self.watchdog = Watchdog(LEASE_S)
            self.watchdog.watch_supervisor(self.sup)
            self.watchdog.start()
            self.wall = ScaledClock(self.speed)
            self._thread = threading.Thread(target=self._loop, name="nexus-facility", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        # the night's clock is advanced here, one bounded tick at a time, paced by the scaled wall clock: a
        # facility that cannot keep up falls behind (status() says by how much) instead of taking the lock for
        # one huge catch-up tick while consoles and extractions wait
        end = self.hours * 3600.0
        from nexus.facility.heap import settle_heap

        settle_heap()  # no full garbage collection of the set-up's objects inside a tick (see facility/heap.py)
        self._loop_tid = threading.get_ident()
        self._feed_thread = threading.Thread(target=self._feed, name="nexus-feed", daemon=True)
        self._feed_thread.start()
        try:
            while not self._stop.is_set() and self.clock.now() < end - 1e-9:
                target = min(self.clock.now() + self.tick_s, end)
                delay = self.wall.wall_delay(target)
                if delay > 0 and self._stop.wait(delay):
                    break
                self._tick(target)
                if self._outbox:
                    self._feed_wake.set()  # the tick's messages go out now, while the loop waits for the next
            if not self._stop.is_set():
                self.end_all("night over")
        except Exception:  # the service must say why its loop stopped; beds are ended by stop()
            logger.exception("The facility loop stopped.")

    def _tick(self, target: float) -> None:
        assert self.sup is not None
        t0, c0 = time.perf_counter(), time.thread_time()
        with self._lock:
            self.clock.advance(max(0.0, target - self.clock.now()))
            self.sup.step()
            self._tick_ms.append(1e3 * (time.perf_counter() - t0))  # the live loop's step, lock included
            self._tick_cpu_ms.append(1e3 * (time.thread_time() - c0))  # without waiting (for the CPU, the lock)
            self._tick_at.append(self.clock.now())
            escalated = self._escalated()
            pending, self._pending_glitches = self._pending_glitches, []
            beds = []
            # changed beds go out about once a second of real time (stages and alarms go out at once), at most
            # BEDS_PER_TICK a tick: the others of that flush in the next ticks, viewed when they go
            if self._changed and self.clock.now() - self._last_beds >= self.beds_every_s - 1e-9:
                changed, self._changed = self._changed, set()
                self._last_beds = self.clock.now()
                waiting = set(self._to_view)
                self._to_view += sorted(changed - waiting)
            if self._to_view:
                take, self._to_view = self._to_view[:BEDS_PER_TICK], self._to_view[BEDS_PER_TICK:]
                beds = [self._bed_view(self._by_session[s]) for s in take if s in self._by_session]
        for alarm in escalated:
            self._publish({"type": "alarm", "alarm": alarm})
        if beds:  # before the beds that end below: their 'ended' view must be the last a console gets
            self._publish({"type": "beds", "t": self.clock.now(), "beds": beds})
        done, self._extracted = self._extracted, []
        if done:  # beds whose extraction (wake) is over: end them here, rows written
            for mode, group in _by_mode(done).items():
                self._end([self._by_session[s] for s in group if s in self._by_session], f"extracted ({mode} wake)")
        if self.consent is not None:
            self.consent.kick()  # its read runs now, while the loop waits for the next tick
        self._retry_unwritten()
        for k, rec in enumerate(pending):
            try:
                self._store_glitch(rec)
            except Exception as exc:  # the database is down: the beds run on, the alarms wait for it
                self._database_down(exc)
                with self._lock:
                    self._pending_glitches = pending[k:] + self._pending_glitches
                break

    def advance(self, seconds: float, *, step_s: float | None = None) -> None:
        """Run the night for ``seconds`` of its clock, tick by tick, now (tests, fast-forward; no thread).

        ``step_s`` (s) fast-forwards: for this call the lanes step ``step_s`` at a time, in ticks of as much, as
        ``nexus simulate`` steps its lanes (1 s), instead of the live loop's 0.1-s steps in 0.25-s ticks; the
        verdicts per epoch and window are the same, stimulation is timed to the step. A set-up that only needs
        the night to have run a while takes ~5x less time with ``step_s=1.0`` (most of a step of a few beds is
        per-step work that does not grow with its length). The live step and tick are back after the call.
        """
        if not self.started:
            raise StateError("Start the facility first.")
        if self._thread is not None:
            raise StateError("advance() is for a facility without its loop thread (start(background=False)).")
        end = self.clock.now() + check_number("seconds", seconds, ge=0, unit="s")
        assert self.sup is not None
        live_step = self.sup.step_s
        tick = self.tick_s
        if step_s is not None:
            self.sup.step_s = check_number("step_s", step_s, gt=0, le=10, unit="s")
            tick = max(tick, self.sup.step_s)
        try:
            while self.clock.now() < end - 1e-9:
                self._tick(min(self.clock.now() + tick, end))
        finally:
            self.sup.step_s = live_step

    def stop(self) -> None:
        """Stop the loop, end every running bed (stimulation stops, rows written), close the journal."""
        if self.stopped or not self.started:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._loop_stopped()
        if self.desk is not None:
            self.desk.poll(force=True)  # orders that came since the last step, extractions that ended in it
            self.desk.close()
        if self.consent is not None:
            self.consent.close()
        self.end_all("facility stopped")
        self._retry_unwritten()
        if self._unwritten:
            logger.error("%d ended session(s) of run %s could not be written to the database; their journal is "
                         "in %s.", sum(len(u[0]) for u in self._unwritten), self.run_id, self.root)
        if self.watchdog is not None:
            self.watchdog.stop()
        with self._lock:
            if self.sup is not None:
                self.sup.close()
            if self.journal is not None:
                self.journal.flush(force=True)
                self.journal.close()
            log = [] if self.sup is None else self.sup.alarm_book.log()
        from sqlalchemy import select

        from nexus.core.settings import load_settings
        from nexus.store.alarms import save_alarms
        from nexus.store.audit import checkpoint

        try:  # the night's alarm log (beds that have a session row: a floor's unassigned beds may have none)
            from nexus.store.models import NightSession

            with self.store.session() as s:
                rows = set(s.scalars(select(NightSession.id).where(NightSession.id.in_(list(self._by_session)))))
                save_alarms(s, log, facility_run_id=self.run_id, sessions=rows)
        except Exception as exc:  # a database that is down: the alarms stay in the journal's glitch records
            logger.error("The alarm log of run %s could not be written (%s).", self.run_id, exc)
        with self.store.session() as s:
            checkpoint(s, load_settings().secret_key)  # the night's signed head: a later rewrite is caught
        self.stopped = True
        self._stop_feed()
        with self._subs_lock:
            for sub in self._subs:
                sub.dropped = True
                sub._wake()
            self._subs.clear()
        from nexus.facility.orders import end_run

        try:
            end_run(self.store, self.run_id, "facility stopped")
        except Exception as exc:  # a database that is down: 'nexus recover' ends the run later
            logger.error("The run %s could not be marked as ended (%s).", self.run_id, exc)

    def _loop_stopped(self) -> None:
        """Called by :meth:`stop` once the loop has stopped, before every bed ends (a floor of devices closes)."""

    # -- listeners (called inside sup.step, under the lock) --------------------------------------
    def _on_records(self, kind: str, records: list[dict[str, Any]]) -> None:
        if kind == "glitch":
            self._pending_glitches += records
            return
        if kind == "extraction":  # a bed's extraction ended in the supervisor (woken): written after the step
            self._extracted += records
            return
        stages: list[dict[str, Any]] = []
        staged: tuple[list[int], list[int], list[int]] = ([], [], [])  # bed, epoch, stage code: written at once
        dense: tuple[list[int], list[int], list[list[float]]] = ([], [], [])  # and with probs
        by_session = self._by_session
        for r in records:
            bed = by_session.get(r["session"])
            if bed is None:
                continue
            k = r["kind"]
            if k == "stage":  # an epoch close of every bed: 500 of these in one step
                e = round(r["onset"] / EPOCH_S)
                bed.stage = code = int(r["stage"])
                bed.probs = probs = r.get("probs")
                staged[0].append(bed.index)
                staged[1].append(e)
                staged[2].append(code)
                if probs:
                    dense[0].append(bed.index)
                    dense[1].append(e)
                    dense[2].append(probs)
                stages.append({"session": bed.plan.session, "epoch": e, "stage": code, "probs": probs})
            elif k == "event":
                onsets = r["onset"] if isinstance(r["onset"], list) else [r["onset"]]
                bed.event_counts[r["description"]] = bed.event_counts.get(r["description"], 0) + len(onsets)
                if r["description"] in QUIET_EVENTS:  # counted, not listed: one per heart beat
                    continue
                for o in onsets[-5:]:
                    bed.events.append({"t_s": round(float(o), 2), "kind": r["description"],
                                       "channel": r.get("channel")})
            elif k == "decision":
                cmd = r.get("command")
                head = (round(float(r["onset"]), 3), r["description"], r.get("reason", ""))
                bed.decisions.append((*head, None) if cmd is None else (*head, *(x for kv in cmd.items() for x in kv)))
            else:
                continue
            bed.version += 1
            self._changed.add(bed.plan.session)
        self._log.put_stages(*staged)
        if dense[0]:  # one rounding of every closed epoch's hypnodensity (an epoch close of 500 beds: ~1 ms less)
            density = np.array(dense[2], dtype=np.float64)
            # confidence: round(max(probs), 3) of each epoch, as Python's round gives it (round_rows), in one pass
            confidence = round_rows(density.max(axis=1, keepdims=True), 3)
            self._log.put_probs(dense[0], dense[1], [c for (c,) in confidence], np.round(density, 3))
        if stages:  # one message for the step's closed epochs: at 500 beds, one serialisation and one send per
            # console instead of 500 (inside the tick, and in the server's thread that sends them)
            self._publish({"type": "stages", "stages": stages})

    def _store_glitch(self, rec: dict[str, Any]) -> dict[str, Any]:
        from nexus.store.models import GlitchRow

        # the monitor raises an episode twice: when it opens and, with its duration, when it closes
        key = (rec["session"], rec["description"], float(rec["onset"]), rec.get("channel"))
        with self._lock:
            same = next((a for a in self._alarms.values()
                         if (a["session"], a["kind"], a["onset_s"], a["channel"]) == key), None)
        if same is not None and rec.get("duration"):
            with self.store.session() as s:
                row = s.get(GlitchRow, same["id"])
                if row is not None:
                    row.duration_s = float(rec["duration"])
            return dict(same)
        with self.store.session() as s:
            row = GlitchRow(session_id=rec["session"], onset_s=float(rec["onset"]),
                            duration_s=rec.get("duration") or None, category=GlitchCategory(rec["category"]),
                            kind=rec["description"], priority=AlarmPriority(rec["priority"]),
                            channel=rec.get("channel"), message=rec.get("message", ""))
            s.add(row)
            s.flush()
            gid = row.id
        alarm = {"id": gid, "session": rec["session"], "onset_s": float(rec["onset"]), "kind": rec["description"],
                 "category": rec["category"], "priority": rec["priority"], "channel": rec.get("channel"),
                 "message": rec.get("message", ""), "acknowledged": False, "acknowledged_by": None}
        with self._lock:
            self._alarms[gid] = alarm
            book = None if self.sup is None else self.sup.alarm_book.find(
                rec["session"], rec["description"], rec.get("channel"), float(rec["onset"]))
            if book is not None:
                self._book_of[gid], self._alarm_of[book.id] = book.id, gid
            bed = self._by_session.get(rec["session"])
            view = self._bed_view(bed) if bed is not None else None
        self._publish({"type": "alarm", "alarm": alarm})
        if view is not None:
            self._publish({"type": "beds", "t": self.clock.now(), "beds": [view]})
        return alarm

    def raise_glitch(self, glitch: Glitch) -> dict[str, Any]:
        """Raise a glitch found outside the supervisor (a monitor, a technician): journaled, stored, alarmed."""
        if glitch.session not in self._by_session:
            raise NotFoundError(f"No bed runs session '{glitch.session}'.")
        rec = glitch.as_record()
        with self._lock:
            if self.journal is not None:
                self.journal.write_records([rec])
            if self.sup is not None:
                self.sup.alarm_book.raise_glitch(glitch, self.clock.now())
        return self._store_glitch(rec)

    def _escalated(self) -> list[dict[str, Any]]:
        """Alarms the AlarmBook escalated (medium → high, unacknowledged too long) in the last step (under the lock)."""
        out = []
        for a in self.sup.alarm_book.take_escalated() if self.sup is not None else []:
            alarm = self._alarms.get(self._alarm_of.get(a.id, -1))
            if alarm is not None and not alarm["acknowledged"]:
                alarm["priority"] = a.priority
                out.append(dict(alarm))
                bed = self._by_session.get(alarm["session"])
                if bed is not None:
                    bed.version += 1
                    self._changed.add(alarm["session"])
        return out

    # -- commands --------------------------------------------------------------------------------
    def acknowledge(self, alarm_id: int, *, user_id: str | None, by: str) -> dict[str, Any]:
        """Acknowledge an alarm (it stays in the record; the bed's tile stops signalling it)."""
        from nexus.store.models import GlitchRow, utcnow

        with self.store.session() as s:
            row = s.get(GlitchRow, alarm_id)
            if row is None:
                raise NotFoundError(f"No alarm {alarm_id}. List them with GET /api/glitches.")
            if row.acknowledged_at is None:
                row.acknowledged_at = utcnow()
                row.acknowledged_by = user_id
        with self._lock:
            alarm = self._alarms.get(alarm_id)
            if alarm is not None:
                alarm["acknowledged"] = True
                alarm["acknowledged_by"] = alarm["acknowledged_by"] or by
                book = self._book_of.get(alarm_id)
                if book is not None and self.sup is not None:  # into the night's alarm log (a resolved one stays)
                    with contextlib.suppress(InvalidInputError):
                        self.sup.alarm_book.acknowledge(book, self.clock.now(), by)
                out = dict(alarm)
                bed = self._by_session.get(alarm["session"])
                view = self._bed_view(bed) if bed is not None else None
            else:  # an alarm of an earlier run: stored only
                out = {"id": alarm_id, "acknowledged": True, "acknowledged_by": by}
                view = None
        self._publish({"type": "alarm", "alarm": out})
        if view is not None:
            self._publish({"type": "beds", "t": self.clock.now(), "beds": [view]})
        return out

    def extract(self, session: str, reason: str = "extracted by staff", *, mode: str | None = None
                ) -> dict[str, Any]:
        """Extract one bed: stimulation stops at once (its sink goes safe).

        Without ``mode`` the session ends now and its rows are written; with a mode (``gentle``,
        ``immediate``, ``release``) the supervisor's extraction carries it out (see
        :meth:`Supervisor.extract <nexus.facility.supervisor.Supervisor.extract>`) and the bed ends
        when its wake is over (release: it records on, silent).
        """
        bed = self._get(session)
        if bed.state != "running":
            raise StateError(f"Session '{session}' is not running (it is {bed.state}).")
        if mode is None:
            self._end([bed], reason)
        else:
            assert self.sup is not None
            with self._lock:
                self.sup.extract(session, mode)
                view = self._bed_view(bed)
            self._publish({"type": "beds", "t": self.clock.now(), "beds": [view]})  # consoles see it at once
        return self.bed(session)

    def extract_all(self, reason: str, *, mode: str | None = None) -> int:
        """Facility-wide extraction: every running bed, as :meth:`extract` does one; return how many were ordered.

        Without ``mode`` every running bed ends now; with one, a single supervisor order silences every bed
        first, then wakes (or releases) each.
        """
        if mode is None:
            return self.end_all(reason)
        assert self.sup is not None
        with self._lock:
            names = [b.plan.session for b in self._beds if b.state == "running"]
            if names:
                self.sup.extract(names, mode)
            views = [self._bed_view(self._by_session[n]) for n in names]
        if views:
            self._publish({"type": "beds", "t": self.clock.now(), "beds": views})  # consoles see it at once
        return len(names)

    def end_all(self, reason: str) -> int:
        """End every running bed (facility-wide extraction); return how many were ended."""
        with self._lock:
            beds = [b for b in self._beds if b.state == "running"]
        self._end(beds, reason)
        return len(beds)

    def _end(self, beds: list[_Bed], reason: str) -> None:
        if not beds or self.sup is None:
            return
        with self._lock:
            loop = self.sup.lanes[0].analyzer("dreamscape") if self.sup.lanes else None  # none yet: beds still wait
            summaries = {}
            for b in beds:
                name = b.plan.session
                if b.state != "running":
                    continue
                summary: dict[str, Any] = {"events": dict(sorted(b.event_counts.items()))}
                if loop is not None and hasattr(loop, "counts"):
                    summary.update({k: int(v[b.index]) for k, v in loop.counts.items()})
                b.final_commands = {k: v for k, v in summary.items() if k != "events"}
                self.sup.end_session(name)
                b.state, b.end_reason = "ended", reason
                b.version += 1
                summaries[name] = summary
            if self.journal is not None:
                self.journal.flush(force=True)
            hyp = {b.plan.session: (self._stage_list(b), self._confidence_list(b)) for b in beds}
            views = [self._bed_view(b) for b in beds]
        names = set(summaries)
        try:
            self._write_ended(names, summaries, hyp, reason)
        except Exception as exc:  # the database is down: the beds are ended; their rows are written when it is back
            self._database_down(exc)
            self._unwritten.append((names, summaries, hyp, reason))
        self._publish({"type": "beds", "t": self.clock.now(), "beds": views})

    def _database_down(self, exc: Exception) -> None:
        """Log a database outage once a minute (the loop goes on; what is to be written waits)."""
        import time

        now = time.monotonic()
        if now >= self._db_log_at:
            self._db_log_at = now + 60.0
            logger.error("The facility database cannot be written (%s); the beds run on, alarms and ended "
                         "sessions are written when it is back.", " ".join(str(exc).split())[:200])

    def _retry_unwritten(self) -> None:
        while self._unwritten:
            try:
                self._write_ended(*self._unwritten[0])
            except Exception as exc:
                self._database_down(exc)
                return
            self._unwritten.pop(0)

    def _write_ended(self, names: set[str], summaries: dict[str, Any],
                     hyp: dict[str, tuple[list[int], list[float | None]]], reason: str) -> None:
        """The rows of ended beds: decisions (audited), end state, summary, live hypnogram."""
        from nexus.core.lifecycle import SessionState
        from nexus.store.audit import append_many
        from nexus.store.models import HypnogramRow, NightSession

        with self.store.session() as s:
            # every automated decision is stored and audited in one transaction (the tamper-evident chain)
            store_decisions(s, [self.root / "journal"], names)
            append_many(s, [{"actor": "system", "action": "session.ended", "subject": name,
                             "payload": {"reason": reason}} for name in sorted(names)])
            for name in names:
                row = s.get(NightSession, name)
                if row is None:
                    continue
                if row.state == SessionState.RUNNING:
                    row.transition_to(SessionState.EXTRACTING)
                if row.state == SessionState.EXTRACTING:  # the order desk may have moved it here already
                    row.transition_to(SessionState.ENDED, reason=reason)
                elif row.state != SessionState.ENDED:
                    continue
                row.summary = summaries[name]
                stages, conf = hyp[name]
                if stages:
                    s.add(HypnogramRow(session_id=name, kind="live", stages=stages, confidence=conf))

    def update_program(self, session: str, text: str, *, fmt: str = "yaml") -> Any:
        """Replace a running bed's program if it passes every check (the check report is returned)."""
        bed = self._get(session)
        if bed.state != "running" or self.sup is None:
            raise StateError(f"Session '{session}' is not running.")
        with self._lock:
            return self.sup.update_program(session, text, fmt=fmt)

    # -- reads -----------------------------------------------------------------------------------
    def _get(self, session: str) -> _Bed:
        bed = self._by_session.get(session)
        if bed is None:
            raise NotFoundError(f"No bed runs session '{session}'. List them with GET /api/beds.")
        return bed

    def has_session(self, session: str) -> bool:
        """Whether ``session`` is one of this facility's beds."""
        return session in self._by_session

    def client_of(self, session: str) -> str:
        """The client id of a bed's session."""
        return self._get(session).client_id

    def _stage_list(self, b: _Bed) -> list[int]:
        return self._log.stages(b.index)

    def _confidence_list(self, b: _Bed) -> list[float | None]:
        return self._log.confidence(b.index)

    def _bed_view(self, b: _Bed) -> dict[str, Any]:
        name = b.plan.session
        alarms = [a for a in self._alarms.values() if a["session"] == name and not a["acknowledged"]]
        level = max((a["priority"] for a in alarms), key=PRIORITY_RANK.__getitem__, default="none")
        commands: dict[str, int] = dict(b.final_commands)
        lease = "none"
        t_s = 0.0
        if self.sup is not None and name in self.sup.sessions:
            rt = self.sup.sessions[name]
            lane = rt.lane
            t_s = max(0.0, (lane.processed - lane.origin[rt.slot]) / lane.fs) if b.state == "running" else 0.0
            loop = lane.analyzer("dreamscape")
            if loop is not None and hasattr(loop, "counts") and b.state == "running":
                commands = {k: int(v[rt.slot]) for k, v in loop.counts.items()}
                bank = loop.bank  # type: ignore[attr-defined]
                machine = getattr(loop, "extraction", None)
                if b.state != "running" or bank.sinks[rt.slot] is None:
                    lease = "safe" if b.plan.program is not None else "none"
                # silenced; a wake ramp may play (the slot's phase alone: .extracting compares every slot of the
                # lane, for each bed of a snapshot: ~3.8 -> 0.5 us a bed at 500, loaded)
                elif machine is not None and int(machine.phase[rt.slot]) != Phase.NONE:
                    lease = "safe" if bank.sinks[rt.slot].safe else "waking"
                elif bank.lapsed[rt.slot]:
                    lease = "lapsed"
                elif np.isfinite(bank.lease_until[rt.slot]):
                    lease = "held"
                else:
                    lease = "waiting"
            elif b.plan.program is not None:
                lease = "safe"
        return {
            "session": name, "bed": f"bed-{b.index + 1}", "client_id": b.client_id, "client_code": b.plan.client,
            "program": None if b.plan.program is None else b.plan.program.name, "natural": b.plan.program is None,
            "state": b.state, "end_reason": b.end_reason, "t_s": round(float(t_s), 1),
            "stage": b.stage, "stage_label": STAGE_LABELS.get(b.stage, "?"), "probs": b.probs,
            "epochs": self._log.count(b.index), "alarm": level, "alarms": [dict(a) for a in alarms],
            "events": list(b.events)[-5:], "event_counts": dict(b.event_counts), "commands": commands,
            "lease": lease, "version": b.version, "extraction": self._extraction_view(name),
        }

    def _extraction_view(self, name: str) -> dict[str, Any] | None:
        rep = None if self.sup is None else self.sup.extractions.get(name)
        if rep is None:
            return None
        return {"requested": rep.requested, "mode": rep.mode, "outcome": rep.outcome, "reason": rep.reason,
                "t_s": round(float(rep.t_s), 2), "safe": rep.safe_wall is not None, "ended": bool(rep.ended)}

    def beds(self) -> list[dict[str, Any]]:
        """A snapshot of every bed (a copy).

        The lock is held for :data:`VIEW_CHUNK` beds at a time, and let go in between: ten consoles opening at
        once asked for ten snapshots of 500 beds back to back, and the live loop's tick waited for them. Each
        bed's view is whole; two beds may be a tick apart (the feed's next ``beds`` message brings them level).
        """
        with self._lock:
            beds = list(self._beds)
        out: list[dict[str, Any]] = []
        for i in range(0, len(beds), VIEW_CHUNK):
            if i:
                time.sleep(0)  # a tick waiting for the lock takes it now
            with self._lock:
                out += [self._bed_view(b) for b in beds[i:i + VIEW_CHUNK]]
        return out

    def bed(self, session: str) -> dict[str, Any]:
        """A snapshot of one bed."""
        with self._lock:
            return self._bed_view(self._get(session))

    def hypnogram(self, session: str) -> dict[str, Any]:
        """The live hypnogram so far: one stage code per 30-s epoch (-2 unscored), confidence, hypnodensity."""
        with self._lock:
            b = self._get(session)
            stages = self._stage_list(b)
            return {"session": session, "epoch_s": EPOCH_S, "stages": stages,
                    "confidence": self._confidence_list(b), "probs": b.probs,
                    "hypnodensity": self._log.density(b.index)}

    def events(self, session: str) -> list[dict[str, Any]]:
        """The bed's latest events (newest last)."""
        with self._lock:
            return list(self._get(session).events)

    def decisions(self, session: str) -> list[dict[str, Any]]:
        """The bed's latest dreamscape decisions (newest last)."""
        with self._lock:
            kept = list(self._get(session).decisions)
        return [{"t_s": d[0], "kind": d[1], "command": None if len(d) % 2 == 0 else
                 dict(zip(d[3::2], d[4::2], strict=True)), "reason": d[2]} for d in kept]

    def alarms(self, *, open_only: bool = False) -> list[dict[str, Any]]:
        """Alarms of this run, newest first (``open_only``: not acknowledged)."""
        with self._lock:
            out = [dict(a) for a in self._alarms.values() if not (open_only and a["acknowledged"])]
        return sorted(out, key=lambda a: -a["id"])

    def status(self) -> dict[str, Any]:
        """Facility figures: clock, beds running, ticks, lag."""
        with self._lock:
            sup = self.sup
            return {"run_id": self.run_id, "clients": self.n, "speed": self.speed,
                    "clock_s": round(self.clock.now(), 2), "hours": self.hours,
                    "running": sum(b.state == "running" for b in self._beds),
                    "ticks": 0 if sup is None else sup.ticks,
                    "lag_s": round(max(0.0, self.wall.now() - self.clock.now()), 2) if self._thread else 0.0,
                    "consoles": len(self._subs),
                    "tick_ms_p99": (round(float(np.percentile(self._tick_ms, 99)), 1) if self._tick_ms else None),
                    "tick_cpu_ms_p99": (round(float(np.percentile(self._tick_cpu_ms, 99)), 1)
                                        if self._tick_cpu_ms else None),
                    "slowest_ticks": [{"t_s": round(t, 2), "ms": round(ms, 1)} for ms, t in
                                      sorted(zip(self._tick_ms, self._tick_at, strict=True), reverse=True)[:5]]}

    # -- the feed --------------------------------------------------------------------------------
    def subscribe(self) -> Subscriber:
        """A new console feed (bounded; dropped when it falls ``queue_size`` messages behind)."""
        sub = Subscriber(self.queue_size)
        with self._subs_lock:
            if self.stopped:
                sub.dropped = True
            else:
                self._subs.append(sub)
        return sub

    def join(self) -> tuple[Subscriber, str]:
        """A console joining the floor: its feed, and its first message (the snapshot, as JSON text).

        Consoles that join within :data:`SNAPSHOT_SHARE_S` of each other share one snapshot instead of each
        building its own (ten consoles opening at once asked for ten snapshots of 500 beds, 5 ms of views and
        JSON each, that competed with the live loop's ticks for the interpreter). Each console's feed starts
        with the messages sent since its snapshot began, then goes on live, so it misses nothing.
        """
        began = time.monotonic()
        with self._join_lock:  # consoles joining at once: one builds the snapshot, the others wait and share it
            with self._subs_lock:
                snap, since = self._snapshot, self._since_snapshot
                sub = Subscriber(self.queue_size)
                if self.stopped:
                    sub.dropped = True
                    shared = False
                else:
                    shared = (snap is not None and since is not None and len(since) < self.queue_size
                              and time.monotonic() - snap[0] < SNAPSHOT_SHARE_S)
                    if shared:
                        for text in since:  # type: ignore[union-attr]
                            sub.queue.put_nowait(text)
                    else:  # a new snapshot: the messages sent from now on are kept for the consoles sharing it
                        self._snapshot, self._since_snapshot = None, []
                    self._subs.append(sub)
            if shared:
                assert snap is not None
                return sub, snap[1]
            try:
                text = feed_text({"type": "snapshot", "status": self.status(), "beds": self.beds(),
                                  "alarms": self.alarms(open_only=True)})
            except BaseException:
                with self._subs_lock:
                    self._snapshot = self._since_snapshot = None
                raise
            with self._subs_lock:
                if self._since_snapshot is not None and not self.stopped:
                    self._snapshot = (began, text)
            return sub, text

    def unsubscribe(self, sub: Subscriber) -> None:
        """Stop feeding ``sub``."""
        with self._subs_lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def _publish(self, msg: dict[str, Any]) -> None:
        if not self._subs:
            return
        if self._feed_thread is not None:  # the feed thread serialises and sends it, in order
            self._outbox.append(msg)
            if threading.get_ident() != self._loop_tid:
                self._feed_wake.set()  # a technician's command: at once (the loop's wait for the end of its tick)
            return
        self._send(msg)

    def _feed(self) -> None:
        """The feed thread: sends the messages of the outbox, in order, whenever woken (after each tick)."""
        while True:
            self._feed_wake.wait()
            self._feed_wake.clear()
            self._drain_outbox()
            if self._stop.is_set() and not self._outbox:
                return

    def _drain_outbox(self) -> None:
        while self._outbox:
            try:
                msg = self._outbox.popleft()
            except IndexError:  # taken by the other drainer (stop)
                return
            try:
                self._send(msg)
            except Exception:  # a message that cannot be sent must not stop the feed
                logger.exception("A feed message could not be sent.")

    def _stop_feed(self) -> None:
        """Send what the outbox holds and stop the feed thread (at stop)."""
        if self._feed_thread is None:
            return
        self._feed_wake.set()
        self._feed_thread.join(timeout=10)
        self._drain_outbox()

    def _send(self, msg: dict[str, Any]) -> None:
        text = feed_text(msg)  # serialised once for every console
        slow = []
        with self._subs_lock:
            if self._since_snapshot is not None:  # kept for the consoles that will share the last snapshot
                if self._snapshot is not None and time.monotonic() - self._snapshot[0] >= SNAPSHOT_SHARE_S:
                    self._snapshot = self._since_snapshot = None  # no longer shared
                else:
                    self._since_snapshot.append(text)
            for sub in self._subs:
                try:
                    sub.queue.put_nowait(text)
                except queue.Full:
                    slow.append(sub)
            for sub in slow:
                sub.dropped = True
                self._subs.remove(sub)
            for sub in self._subs + slow:
                sub._wake()
        for _ in slow:
            logger.warning("A console fell %d messages behind and was dropped.", self.queue_size)


def _by_mode(reports: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Sessions of extraction reports, grouped by the mode carried out."""
    out: dict[str, list[str]] = {}
    for r in reports:
        out.setdefault(str(r.get("mode", "immediate")), []).append(r["session"])
    return out


def parse_faults(clients: int, count: int, *, seed: int = 0, within_s: float = 600.0) -> list[tuple[int, float]]:
    """``count`` NaN stretches on random beds in the first ``within_s`` seconds (demonstration alarms)."""
    if count < 0:
        raise InvalidInputError(f"Invalid value for 'faults': expected >= 0, got {count}.")
    rng = np.random.default_rng([seed, 13])
    return [(int(rng.integers(clients)), float(rng.uniform(30.0, within_s))) for _ in range(count)]
