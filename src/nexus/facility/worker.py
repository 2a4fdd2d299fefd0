"""``nexus worker``: one process of a multi-host facility, running its share of the floor's beds.

Workers on one or many hosts share one facility database (PostgreSQL; SQLite for one host). Each
:class:`Worker` registers itself, then, on a helper thread, beats every ``heartbeat_s``
(:func:`~nexus.facility.leases.heartbeat`) and claims beds (:func:`~nexus.facility.leases.claim`)
up to an even share of the open beds; its main thread runs the beds it holds through its own
:class:`~nexus.facility.supervisor.Supervisor` in real time (tick ``tick_s``), journals them
(``<data dir>/workers/<id>/journal``) and carries out their extraction orders
(:class:`~nexus.facility.orders.OrderDesk`).

When a worker dies (``kill -9``, a host that goes down) its heartbeat stops; ``lease_s`` later the
other workers take its beds over. A bed taken over goes on at the session's own time (its clock is
the session's start in the database): the new worker opens the bed's source at that time,
journals a ``takeover`` record naming the earlier parts, and the night's recording, hypnogram and
decisions are merged from every part when the session ends. Signal between the last sample the
dead worker wrote and the first the new one reads is lost (a gap in the EDF+).

No bed is run twice: claims are compare-and-set, a worker whose run was closed by the others (taken
for dead) silences every bed at its next beat and stops, and a worker that cannot beat for
``lease_s`` (database unreachable, loop stalled) silences its beds before anyone may take them. The
wall-clock watchdog silences every bed within 1.5 s when the loop itself hangs.

Beds are synthetic sleepers (profile and seed in the lease's plan): the source replays the same
sleeper from any time of its night. A bed with a device would open the device instead.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nexus.core.checks import check_number
from nexus.core.clock import RealClock
from nexus.core.errors import InvalidInputError, NexusError, StateError
from nexus.core.log import logger
from nexus.facility.beds import SleeperSink
from nexus.facility.leases import HEARTBEAT_S, LEASE_S, Beat, Claim, claim, fair_share, heartbeat, register_worker
from nexus.facility.supervisor import Supervisor
from nexus.store.recording import line_may_hold

WORKER_CHANNELS: tuple[str, ...] = ("EEG C4-M1", "EOG E1-M2", "EOG E2-M2", "EMG Chin", "ECG", "Acc X", "Acc Y",
                                    "Acc Z")
"""Channels of a floor bed (the staging montage, heart and movement)."""

LANE_BEDS = 16
"""Beds per lane of a worker (a lane steps all its slots, so a worker with few beds keeps its lanes small)."""

CLAIM_BATCH = 16
"""Most beds claimed in one heartbeat cycle."""


def new_worker_id() -> str:
    """A new worker id (``w-`` and 12 hex digits; the floor knows its workers by the prefix)."""
    return "w-" + uuid.uuid4().hex[:12]


class WorkerLost(NexusError):
    """Raised when the other workers took this one for dead (its beds are theirs now); it stopped its beds."""

    exit_code = 75


class _SessionClock:
    """Seconds since a session's start, on this host's wall clock corrected to the database's."""

    def __init__(self, started: datetime, offset: Callable[[], float]) -> None:
        self.t0 = started.timestamp()
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset() - self.t0

    def sleep_until(self, t: float) -> None:  # the worker's loop paces itself; sources never sleep
        return None


class _BedSleeper(SleeperSink):
    """A synthetic sleeper's ears on a worker: command times are lane times, the sleeper's are session times."""

    def __init__(self, fleet: Any, program: Any, origin: Callable[[], float]) -> None:
        super().__init__(fleet, 0, program)
        self._origin = origin

    def _hear(self, t: float, kind: str, level_dbfs: float) -> None:
        self.t0_s = self._origin()
        super()._hear(t, kind, level_dbfs)


class _WorkerSupervisor(Supervisor):
    def reserve_lane(self, channels: tuple[str, ...], fs: float, capacity: int) -> Any:
        """Build a lane now, so that beds taken over later start without building analyzers inside a tick."""
        return self._new_lane(channels, fs, capacity)


@dataclass
class _Held:
    claim: Claim
    hours: float
    source: Any
    resumed_at: float


@dataclass
class WorkerReport:
    """What a worker did (JSON-ready with :meth:`as_dict`)."""

    worker: str
    journal: str
    claimed: int = 0
    taken_over: int = 0
    ended: int = 0
    handed_back: int = 0
    dropped: int = 0
    beats: int = 0
    beat_errors: int = 0
    ticks: int = 0
    takeovers: list[dict[str, Any]] = field(default_factory=list)
    rejoined: list[str] = field(default_factory=list)
    """New ids this worker took after the others had taken it for dead."""
    stop_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


class Worker:
    """One worker of the multi-host floor.

    Parameters
    ----------
    store : Store
        The facility database (shared by every worker).
    data_dir : path-like
        Where this worker's journal goes (``workers/<id>/journal``); merged recordings go to
        ``recordings/`` beside it.
    capacity : int
        Most beds this worker holds at once.
    lease_s : float
        A worker's beds are taken over this long after its last heartbeat, in s (the same on every worker).
    heartbeat_s : float
        Time between two heartbeats (and claims), in s.
    tick_s : float
        Period of the real-time loop, in s.
    events : bool
        Run the event detectors.
    worker_id : str, optional
        This worker's id (default: a new ``w-…`` id).
    """

    def __init__(self, store: Any, *, data_dir: str | Path = "nexus-data", capacity: int = 100,
                 lease_s: float = LEASE_S, heartbeat_s: float = HEARTBEAT_S, tick_s: float = 0.1,
                 events: bool = False, worker_id: str | None = None) -> None:
        from nexus.facility.analyzers import default_analyzers
        from nexus.store.recording import RecordingJournal

        self.store = store
        self.capacity = int(check_number("capacity", capacity, ge=1, le=5000))
        self.lease_s = check_number("lease_s", lease_s, gt=0, unit="s")
        self.heartbeat_s = check_number("heartbeat_s", heartbeat_s, gt=0, unit="s")
        if self.heartbeat_s * 2 > self.lease_s:
            raise InvalidInputError(f"Invalid heartbeat {heartbeat_s:g} s for a lease of {lease_s:g} s: beat at least "
                             "twice per lease (e.g. --heartbeat 0.5 --lease 2.5).")
        self.tick_s = check_number("tick_s", tick_s, gt=0, le=1.0, unit="s")
        self.id = worker_id or new_worker_id()
        self.root = Path(data_dir) / "workers" / self.id
        self.journal = RecordingJournal(self.root / "journal", background_sync=True)
        self.clock = RealClock()
        self.sup = _WorkerSupervisor(self.clock, journal=self.journal, delay_s=0.1,
                                     lane_capacity=min(LANE_BEDS, self.capacity), step_s=0.1,
                                     analyzers=default_analyzers(events=events, block_s=0.1))
        self.events = events
        self.report = WorkerReport(self.id, str(self.journal.folder))
        self.held: dict[str, _Held] = {}
        self.offset_s = 0.0
        """Database clock minus this host's clock, in s (from the heartbeats)."""
        self._offsets: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._inbox: list[tuple[str, str, Any]] = []
        self._stop = threading.Event()
        self._loop_alive = time.monotonic()
        self._last_ok = time.monotonic()
        self._fenced = False
        self._desk: Any = None
        self._dog: Any = None
        self._beater: threading.Thread | None = None

    # -- start and stop ----------------------------------------------------------------------------
    def start(self) -> None:
        """Warm the kernels up, build the lane, register, start the heartbeat thread and the watchdog."""
        from nexus.facility.orders import OrderDesk
        from nexus.facility.warmup import warm_up
        from nexus.safety.watchdog import LEASE_S as DOG_LEASE_S
        from nexus.safety.watchdog import Watchdog

        fs = 100.0
        lane = min(LANE_BEDS, self.capacity)
        warm_up(fs, WORKER_CHANNELS, lane, events=self.events, synthetic=True)
        self.sup.reserve_lane(WORKER_CHANNELS, fs, lane)
        register_worker(self.store, self.id, self.journal.folder)
        self._last_ok = self._loop_alive = time.monotonic()
        self._desk = OrderDesk(self.store, self.sup, self.id, poll_s=0.1, heartbeat_s=1e9)
        self.sup.between_steps.append(self._desk.poll)
        self.sup.between_steps.append(self._progress)  # a loop that catches up in many steps is still alive
        self._dog = Watchdog(DOG_LEASE_S)
        self._dog.watch_supervisor(self.sup)
        self._dog.start()
        self._beater = threading.Thread(target=self._beat_loop, name=f"nexus-beat-{self.id}", daemon=True)
        self._beater.start()
        logger.info("Worker %s started (capacity %d beds, lease %.1f s).", self.id, self.capacity, self.lease_s)

    def _progress(self) -> None:
        self._loop_alive = time.monotonic()

    def run(self, seconds: float | None = None) -> WorkerReport:
        """Run until :meth:`stop` (or ``seconds`` of wall time); then stop cleanly."""
        if self._beater is None:
            self.start()
        end = None if seconds is None else time.monotonic() + float(seconds)
        from nexus.facility.heap import settle_heap

        settle_heap()  # no full garbage collection of the set-up's objects inside a tick (see facility/heap.py)
        nxt = self.clock.now()
        try:
            while not self._stop.is_set() and (end is None or time.monotonic() < end):
                self._loop_alive = time.monotonic()
                self._fence_if_stale()  # before anything else: a bed whose lease may have run out is silenced
                self._apply_inbox()
                self.sup.step()
                self.report.ticks += 1
                self._end_finished()
                nxt = max(nxt + self.tick_s, self.clock.now() - self.tick_s)
                self.clock.sleep_until(nxt)
        finally:
            self.shutdown(self.report.stop_reason or "worker stopped")
        return self.report

    def stop(self, reason: str = "worker stopped") -> None:
        """Ask the loop to stop (from a signal handler or another thread)."""
        self.report.stop_reason = self.report.stop_reason or reason
        self._stop.set()

    def shutdown(self, reason: str) -> None:
        """Hand the beds to the other workers when there are any (else end them), close the journal and the run."""
        from nexus.facility.leases import end_worker, release

        self._stop.set()
        if self._beater is not None:
            self._beater.join(timeout=10)
        if self._dog is not None:
            self._dog.stop()
        others = 0
        try:
            beat = heartbeat(self.store, self.id, lease_s=self.lease_s) if not self._fenced else None
            others = 0 if beat is None or not beat.alive else beat.workers - 1
        except Exception as exc:  # no database: the beds can only be silenced here
            logger.error("Worker %s: the database is unreachable at stop (%s); its beds are silenced.", self.id, exc)
        names = list(self.held)
        if others and names:
            for name in names:
                self._drop(name, "handed over")
            try:
                self.report.handed_back = release(self.store, self.id, names)
            except Exception as exc:
                logger.error("Worker %s: could not hand its beds back (%s); they are taken over when its lease "
                             "runs out.", self.id, exc)
        elif names and not self._fenced:
            for name in names:
                self._finish(name, f"{reason}; no other worker to take the bed")
        for name in list(self.held):
            self._drop(name, reason)
        self.sup.close()
        self.journal.close()
        try:
            end_worker(self.store, self.id, reason)
        except Exception as exc:
            logger.error("Worker %s: could not close its run (%s).", self.id, exc)
        logger.info("Worker %s stopped: %s.", self.id, reason)

    # -- the heartbeat thread ------------------------------------------------------------------------
    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if time.monotonic() - self._loop_alive > self.lease_s - self.heartbeat_s:
                continue  # a stalled loop must lose its lease, not keep it through this thread
            sent = time.monotonic()
            wid = self.id  # one id for the whole cycle (a worker that rejoins gets a new one)
            try:
                beat = heartbeat(self.store, wid, lease_s=self.lease_s)
                self.report.beats += 1
                claims: list[Claim] = []
                if beat.alive:
                    with self._lock:
                        n = len(self.held) + sum(1 for k, _, _ in self._inbox if k == "claim")
                    want = min(self.capacity, fair_share(beat.open_beds, beat.workers, self.capacity)) - n
                    want = min(want, CLAIM_BATCH)  # short cycles: the next beat is never held up for long
                    if want > 0:
                        claims = claim(self.store, wid, self.journal.folder, want=want, lease_s=self.lease_s)
            except Exception as exc:  # the database is down or slow: the beds go on until the lease runs out
                self.report.beat_errors += 1
                if self.report.beat_errors == 1 or self.report.beat_errors % 20 == 0:
                    logger.error("Worker %s cannot reach the database (%s); its beds run on for %.1f s at most.",
                                 self.id, str(exc).splitlines()[0], self.lease_s)
                continue
            assert beat.now is not None
            self._offsets.append((beat.rtt_s, beat.now.timestamp() - beat.local_s))
            self.offset_s = min(self._offsets[-20:])[1]  # the quickest of the last 20 reads is the most exact
            del self._offsets[:-20]
            self._last_ok = sent
            with self._lock:
                self._inbox.append(("beat", wid, beat))
                self._inbox += [("claim", wid, c) for c in claims]

    # -- applied on the loop thread, between ticks ---------------------------------------------------
    def _apply_inbox(self) -> None:
        with self._lock:
            inbox, self._inbox = self._inbox, []
        for kind, wid, item in inbox:
            if wid != self.id:
                continue  # from before this worker rejoined under a new id
            if kind == "beat":
                self._on_beat(item)
            else:
                self._adopt(item)

    def _on_beat(self, beat: Beat) -> None:
        if not beat.alive:
            self._fenced = True
            for name in list(self.held):
                self._drop(name, "this worker was taken for dead")
            self._rejoin()
            return
        self._fenced = False
        for name, h in list(self.held.items()):
            if beat.held.get(name) != h.claim.generation and self.sup.sessions[name].state != "ended":
                self._drop(name, "lease lost")  # another worker holds it now: never two controllers
        stray = [n for n in beat.held if n not in self.held]
        if stray:  # beds still ours in the database that this worker let go (a fence): hand them back
            from nexus.facility.leases import release

            release(self.store, self.id, stray)

    def _rejoin(self) -> None:
        """Taken for dead (its beds are others' now): join the floor again under a new id, holding nothing."""
        old = self.id
        try:
            new = new_worker_id()
            register_worker(self.store, new, self.journal.folder)
        except Exception as exc:
            self.report.stop_reason = (f"taken for dead by the other workers (heartbeat lost) and could not rejoin "
                                       f"({str(exc).splitlines()[0]})")
            self._stop.set()
            return
        self.id = new
        if self._desk is not None:
            self._desk.run_id = new
        self._last_ok = time.monotonic()
        self.report.rejoined.append(new)
        logger.warning("Worker %s was taken for dead (its beds went to the other workers); it joins again as %s.",
                       old, new)

    def _fence_if_stale(self) -> None:
        if self.held and time.monotonic() - self._last_ok > self.lease_s - 2 * self.tick_s:
            self._fenced = True
            n = len(self.held)
            for name in list(self.held):
                self._drop(name, "no heartbeat for the lease time")
            logger.error("Worker %s: no heartbeat for %.1f s; its %d bed(s) were silenced and are left to the other "
                         "workers.", self.id, self.lease_s, n)

    def _adopt(self, c: Claim) -> None:
        from nexus.dreamscape.schema import Program
        from nexus.sources.synthetic.stream import SyntheticSource

        if c.session in self.held or c.started_at is None:
            return
        hours, fs = float(c.plan["hours"]), float(c.plan["fs"])
        clock = _SessionClock(c.started_at, lambda: self.offset_s)
        t_now = max(0.0, clock.now())
        source = SyntheticSource(c.session, clock, str(c.plan["profile"]), int(c.plan["seed"]), hours=hours, fs=fs,
                                 channels=WORKER_CHANNELS, max_chunk_s=2.0)
        fleet = source.fleet
        target = min(round(t_now * fs), fleet.n_total)
        while fleet.n_done < target:  # the sleeper has slept on meanwhile: go to the session's present
            fleet.next_chunk(min(target - fleet.n_done, round(600 * fs)))
        program = None if c.program is None else Program.model_validate(c.program)
        sup = self.sup
        name = c.session

        def origin() -> float:
            rt = sup.sessions[name]
            return float(rt.lane.origin[rt.slot]) / rt.lane.fs

        sink = None if program is None else _BedSleeper(fleet, program, origin)
        self.journal.add_session(name, WORKER_CHANNELS, fs, start=c.started_at, client=c.client or None, sync=False)
        rec = {"session": name, "kind": "takeover" if c.previous else "claim", "onset": round(t_now, 3),
               "duration": 0.0, "worker": self.id, "generation": c.generation, "from": c.previous,
               "parts": c.journals[:-1], "wall": time.time()}
        if c.lapsed_at is not None:
            rec["lease_lapsed_wall"] = c.lapsed_at.timestamp() - self.offset_s
        self.journal.write_records([rec])
        old = sup.sessions.pop(name, None)  # a bed this worker had let go and holds again
        if old is not None and old.state != "ended":
            sup.end_session(name)
        try:
            sup.add_session(name, source, program=program, sink=sink)
        except (NexusError, StateError) as exc:
            logger.error("Worker %s could not start bed %s (%s); handing it back.", self.id, name, exc)
            from nexus.facility.leases import release

            release(self.store, self.id, [name])
            return
        self.held[name] = _Held(c, hours, source, time.time())
        if self._dog is not None:
            self._dog.watch_supervisor(self.sup)  # a lane built for this bed is watched too
        self.report.claimed += 1
        if c.previous:
            self.report.taken_over += 1
            self.report.takeovers.append({"session": name, "from": c.previous, "at_s": round(t_now, 3),
                                          "wall": rec["wall"]})
            logger.warning("Worker %s took over bed %s from %s at %.1f s of its night.", self.id, name, c.previous,
                           t_now)

    def _drop(self, name: str, why: str) -> None:
        """Stop running a bed here (its sink silenced, its source closed); its database row is left as it is."""
        h = self.held.pop(name, None)
        if h is None:
            return
        rt = self.sup.sessions.get(name)
        if rt is not None and rt.state != "ended":
            self.sup.end_session(name)
        self.journal.write_records([{"session": name, "kind": "release", "onset": 0.0, "duration": 0.0,
                                     "worker": self.id, "reason": why, "wall": time.time()}])
        self.journal.flush(force=True)
        self.report.dropped += 1
        logger.warning("Worker %s let bed %s go: %s.", self.id, name, why)

    def _end_finished(self) -> None:
        for name, h in list(self.held.items()):
            rt = self.sup.sessions[name]
            if rt.state == "ended":  # an extraction ended it: the order desk writes the session's end first
                if self._desk is not None:
                    self._desk.poll(force=True)
                self._finish(name, None)
            elif rt.started and self._session_t(rt) >= h.hours * 3600.0:
                self._finish(name, "night over")

    @staticmethod
    def _session_t(rt: Any) -> float:
        return float(rt.lane.processed - rt.lane.origin[rt.slot]) / rt.lane.fs

    def _finish(self, name: str, reason: str | None) -> None:
        """End a bed here and for good: database rows from every part of its night, one EDF+ merged from them."""
        h = self.held.pop(name, None)
        if h is None:
            return
        rt = self.sup.sessions.get(name)
        if rt is not None and rt.state != "ended":
            self.sup.end_session(name)
        self.journal.flush(force=True)
        try:
            write_night(self.store, name, [*h.claim.journals[:-1], str(self.journal.folder.absolute())],
                        reason, worker=self.id, generation=h.claim.generation, client=h.claim.client or None)
        except Exception as exc:  # the bed is silent already; `nexus recover` finishes the rows
            logger.error("Worker %s: the end of bed %s could not be written (%s).", self.id, name, exc)
        self.report.ended += 1


def _session_records(journals: list[str], name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for j in journals:
        path = Path(j) / "records.jsonl"
        if not path.is_file():
            continue
        with path.open("rb") as fh:
            for line in fh:
                if not line_may_hold(line, session=name):
                    continue
                try:
                    r = json.loads(line)
                except ValueError:
                    continue  # a torn last line of a worker that died
                if r.get("session") == name:
                    out.append(r)
    return out


def write_night(store: Any, name: str, journals: list[str], reason: str | None, *, worker: str,
                generation: int, client: str | None = None) -> Path | None:
    """Write a finished bed's night from all its parts: hypnogram, glitches, decisions, summary, one EDF+.

    The session row ends (``reason``; None when an extraction already ended it) only while this
    worker still holds the bed at ``generation``; otherwise nothing is written.
    """
    from sqlalchemy import insert

    from nexus.core.glitches import AlarmPriority, GlitchCategory
    from nexus.core.lifecycle import SessionState
    from nexus.core.stages import EPOCH_S
    from nexus.store.models import BedLease, DecisionRow, GlitchRow, HypnogramRow, NightSession
    from nexus.store.recording import merge_session_parts

    recs = _session_records(journals, name)
    stages: dict[int, tuple[int, float | None]] = {}
    decisions: list[dict[str, Any]] = []
    glitches: list[dict[str, Any]] = []
    events: dict[str, int] = {}
    for r in recs:
        k = r.get("kind")
        if k == "stage":
            probs = r.get("probs")
            stages[round(r["onset"] / EPOCH_S)] = (int(r["stage"]), round(max(probs), 3) if probs else None)
        elif k == "decision":
            decisions.append({"session_id": name, "t_s": r["onset"], "kind": str(r["description"])[:32],
                              "command": r.get("command") or {}, "inputs": r.get("inputs") or {},
                              "reason": r.get("reason", "")})
        elif k == "glitch":
            glitches.append(r)
        elif k == "event":
            n = len(r["onset"]) if isinstance(r["onset"], list) else 1
            events[r["description"]] = events.get(r["description"], 0) + n
    n_ep = max(stages) + 1 if stages else 0
    hyp = [stages.get(e, (-2, None))[0] for e in range(n_ep)]
    conf = [stages.get(e, (-2, None))[1] for e in range(n_ep)]
    parts = sum(1 for r in recs if r.get("kind") in ("claim", "takeover"))
    with store.session() as s:
        lease = s.get(BedLease, name)
        if lease is None or lease.worker_id != worker or lease.generation != generation:
            logger.warning("Bed %s is no longer this worker's; its end is left to its holder.", name)
            return None
        row = s.get(NightSession, name)
        if row is None:
            return None
        if reason is not None and row.state == SessionState.RUNNING:
            row.transition_to(SessionState.EXTRACTING)
        if reason is not None and row.state == SessionState.EXTRACTING:
            row.transition_to(SessionState.ENDED, reason=reason)
        row.summary = {"events": dict(sorted(events.items())), "decisions": len(decisions), "parts": parts,
                       "takeovers": lease.takeovers}
        if hyp:
            s.add(HypnogramRow(session_id=name, kind="live", stages=hyp, confidence=conf))
        for k in range(0, len(decisions), 5000):
            s.execute(insert(DecisionRow), decisions[k:k + 5000])
        for g in glitches:
            s.add(GlitchRow(session_id=name, onset_s=float(g["onset"]), duration_s=g.get("duration") or None,
                            category=GlitchCategory(g["category"]), kind=str(g["description"])[:32],
                            priority=AlarmPriority(g["priority"]), channel=g.get("channel"),
                            message=g.get("message", "")))
        s.flush()
        start = row.started_at
    out = Path(journals[-1]).parent.parent.parent / "recordings"
    path = merge_session_parts(journals, name, out, start=start, client=client)
    if path is not None:
        with store.session() as s:
            row = s.get(NightSession, name)
            if row is not None:
                row.recording_path = str(path)
    return path


def handover_gaps(journals: list[str], name: str) -> list[dict[str, float]]:
    """Signal lost at each change of worker of one session: the last sample of a part and the first of the next, in s.

    Parts are the journals in the order the workers held the bed.
    """
    from nexus.store.recording import recover_journal

    spans = []
    for j in journals:
        rec = recover_journal(j)
        idx = rec.index.get(name)
        if idx is None or not idx.n:
            continue
        fs = rec.sessions[name].fs
        spans.append((min(idx.t0), max(t + n / fs for t, n in zip(idx.t0, idx.n, strict=True))))
    return [{"last_s": round(a[1], 3), "first_s": round(b[0], 3), "lost_s": round(max(0.0, b[0] - a[1]), 3)}
            for a, b in itertools.pairwise(spans)]
