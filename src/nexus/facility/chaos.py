"""Fault injection on a real facility floor: what each fault does, how fast beds are safe, what is lost.

Every scenario builds the same floor — a :class:`~nexus.facility.supervisor.Supervisor` with the
default analyzers and dreamscape loop, ``beds`` synthetic sleepers each with a program that plays
a scene in every stage, a sink per bed that notes what it played and when it went silent, and a
recording journal — injects one fault at the boundary where it happens in a facility (a device
that raises, a database connection refused, the kernel's ``ENOSPC``, a controller method that
raises, a sink that never returns, the clock moving in one jump) and compares the night with the
same night without the fault (fast-forward is deterministic, so every difference is the fault's).

Each scenario returns a :class:`ChaosResult`: the expected behaviour, what was observed, the time
to the safe state (wall seconds from the fault to the last affected bed silent; 0 when no bed was
ever unsafe), the data lost (seconds of signal missing from the journal), and how many other beds
heard anything different. ``bench/chaos.py`` prints them as a table; ``tests/safety`` run them
with short durations. The process-level faults (``kill -9`` at peak load, a worker killed) drive
``nexus simulate`` in a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nexus.core.clock import ManualClock
from nexus.sinks.bedside import BedSink
from nexus.sources.base import Source

CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG")
FS = 100.0


@dataclass
class ChaosResult:
    """One fault: what should happen, what did, how fast, at what cost."""

    fault: str
    expected: str
    observed: str
    ok: bool
    safe_s: float | None = None
    """Wall seconds from the fault to the last affected bed in the safe state (0: never unsafe)."""
    data_lost_s: float = 0.0
    """Seconds of signal missing from the journal, summed over beds (what the fault itself takes away)."""
    others_affected: int = 0
    """Beds not hit by the fault that heard anything different from the night without it."""
    beds: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class StampSink(BedSink):
    """A bed's sink that keeps what it played (lane time, kind) and the wall time it last went silent."""

    def __init__(self) -> None:
        super().__init__()
        self.played: list[tuple[float, str]] = []
        self.silent_wall: float | None = None
        self.hang: threading.Event | None = None  # set: _play blocks until it is cleared (a stuck device)
        self._release = threading.Event()
        self.armed = False

    def arm(self) -> None:
        """From now on keep the first time the bed went silent (a wake sound after it does not reset it)."""
        self.silent_wall, self.armed = None, True

    def _play(self, command: Any) -> None:
        if self.hang is not None and self.hang.is_set():
            self._release.wait()
        self.played.append((round(float(command.t), 3), str(command.kind)))
        if command.kind != "silence":
            if not self.armed:
                self.silent_wall = None
        elif self.silent_wall is None:
            self.silent_wall = time.time()

    def _silence(self, t: float) -> None:
        if self.silent_wall is None:
            self.silent_wall = time.time()

    def unstick(self) -> None:
        """Let a hanging :meth:`_play` return."""
        self._release.set()


def _program() -> Any:
    from nexus.dreamscape.presets import default_clas_program
    from nexus.dreamscape.schema import Scene

    p = default_clas_program()
    return p.model_copy(update={"scenes": {**p.scenes, "bed": Scene.model_validate(
        {"layers": [{"sound": "rain", "level_db": -35}]})},
        "rules": {"W": "bed", "N1": "bed", "N2": "bed", "N3": "deep", "R": "bed"}})


@dataclass
class Floor:
    """A supervisor with ``beds`` looped synthetic sleepers, programs, stamp sinks and a journal."""

    sup: Any
    clock: ManualClock
    names: list[str]
    sinks: list[StampSink]
    journal_dir: Path

    @property
    def loop(self) -> Any:
        """The dreamscape loop of the floor's lane."""
        return self.sup.lanes[0].analyzer("dreamscape")

    def close(self) -> None:
        """Close the floor: sessions, lanes (their worker threads) and the journal."""
        with contextlib.suppress(Exception):
            self.sup.close()
        with contextlib.suppress(Exception):
            self.sup.journal.close()

    def recorded_s(self) -> dict[str, float]:
        """Seconds of signal in the journal per bed."""
        from nexus.store.recording import recover_journal

        self.sup.journal.flush(force=True)
        rec = recover_journal(self.journal_dir)
        out = {}
        for name in self.names:
            idx = rec.index.get(name)
            out[name] = 0.0 if idx is None else float(np.sum(idx.n)) / FS
        return out


def build_floor(beds: int, root: Path, *, sourced: bool = False, seed: int = 40) -> Floor:
    """A floor of ``beds`` beds; ``sourced``: each bed fed by its own device-like source (see :class:`FlakySource`)."""
    from nexus.facility.analyzers import default_analyzers
    from nexus.facility.benchmark import LoopedFleet, _signals_at
    from nexus.facility.supervisor import Supervisor
    from nexus.store.recording import RecordingJournal

    clock = ManualClock()
    journal = RecordingJournal(root / "journal", background_sync=True)
    sup = Supervisor(clock, journal=journal, analyzers=default_analyzers(block_s=0.1, events=False), step_s=0.25,
                     buffer_s=8.0, lane_capacity=max(16, beds))
    names = [f"bed-{k:03d}" for k in range(beds)]
    sinks = [StampSink() for _ in names]
    prog = _program()
    data = _signals_at(beds, seed, 1.0, 120.0, FS, CHANNELS)
    if sourced:
        feed = _LoopFeed(data, clock)
        for k, name in enumerate(names):
            sup.add_session(name, FlakySource(feed, k, name), program=prog, sink=sinks[k])
    else:
        sup.add_fleet(LoopedFleet(data, FS, CHANNELS), names, programs=[prog] * beds, sinks=list(sinks))
    floor = Floor(sup, clock, names, sinks, root / "journal")
    _OPEN.append(floor)
    return floor


_OPEN: list[Floor] = []  # floors built inside the current scenario (closed when it ends)


class _LoopFeed:
    """Looped samples of many beds handed out as the clock advances (a room of devices on one clock)."""

    def __init__(self, data: Any, clock: ManualClock) -> None:
        self.data, self.clock = data, clock
        self.sent = np.zeros(data.shape[0], dtype=np.int64)

    def take(self, k: int) -> tuple[int, Any] | None:
        due = int(np.floor(self.clock.now() * FS + 1e-6))
        a = int(self.sent[k])
        if due <= a:
            return None
        b = min(due, a + int(10 * FS))
        idx = np.arange(a, b) % self.data.shape[-1]
        self.sent[k] = b
        return a, self.data[k][:, idx]


class FlakySource(Source):
    """One bed's device: delivers its samples in time; while ``down`` it is unplugged (reads raise, samples lost)."""

    def __init__(self, feed: _LoopFeed, k: int, session: str) -> None:
        self.feed, self.k, self.session = feed, k, session
        self.fs, self.channels = FS, CHANNELS
        self.down = False
        self.seq = 0
        self.shift_s = 0.0  # added to every timestamp from now on (the device's clock jumped)

    def open(self) -> None:
        """Plug in (fails while unplugged)."""
        if self.down:
            raise OSError("device not found")

    def close(self) -> None:
        """Nothing to release."""

    def read(self) -> Any:
        """The samples due since the last read (raises while unplugged)."""
        from nexus.core.types import Chunk

        if self.down:
            self.feed.take(self.k)  # what the device measured meanwhile never arrives
            raise OSError("device disconnected")
        got = self.feed.take(self.k)
        if got is None:
            return None
        a, x = got
        self.seq += 1
        return Chunk(self.session, a / FS + self.shift_s, FS, x, CHANNELS, self.seq)


def _run(floor: Floor, until_s: float, tick_s: float = 1.0, on_tick: Callable[[float], None] | None = None) -> None:
    while floor.clock.now() < until_s - 1e-9:
        floor.clock.advance(min(tick_s, until_s - floor.clock.now()))
        floor.sup.step()
        if on_tick is not None:
            on_tick(floor.clock.now())


def _differs(a: StampSink, b: StampSink) -> bool:
    return a.played != b.played


def _since(sinks: list[StampSink], t0: float) -> list[float]:
    """Wall seconds from ``t0`` to each sink's silence (sinks that never went silent are left out)."""
    return [s.silent_wall - t0 for s in sinks if s.silent_wall is not None]


def _first_difference(base: StampSink, fault: StampSink) -> str:
    """The first command that differs, as 'baseline -> with the fault' (lane time, kind)."""
    for x, y in zip(base.played, fault.played, strict=False):
        if x != y:
            return f"{x} -> {y}"
    return f"{len(base.played)} -> {len(fault.played)} commands"


def _baseline(beds: int, seconds: float, root: Path, *, sourced: bool = False) -> Floor:
    floor = build_floor(beds, root / "baseline", sourced=sourced)
    _run(floor, seconds)
    return floor


@contextlib.contextmanager
def _tmp(root: str | Path | None) -> Iterator[Path]:
    """The scenario's folder (``root``, or a temporary one); every floor built meanwhile is closed after."""
    try:
        if root is not None:
            Path(root).mkdir(parents=True, exist_ok=True)
            yield Path(root)
            return
        with tempfile.TemporaryDirectory(prefix="nexus-chaos-", ignore_cleanup_errors=True) as d:
            yield Path(d)
    finally:
        while _OPEN:
            _OPEN.pop().close()


# -- in-process faults ------------------------------------------------------------------------------
def controller_exception(beds: int = 8, seconds: float = 120.0, root: str | Path | None = None) -> ChaosResult:
    """An exception inside bed 0's part of the dreamscape controller, from 60 s on."""
    with _tmp(root) as tmp:
        base = _baseline(beds, seconds, tmp)
        floor = build_floor(beds, tmp / "fault")
        ctrl = floor.loop.ctrl
        real = ctrl._issue
        raised: list[float] = []

        def issue(out: Any, t: float, s: int, kind: str, *args: Any, **kwargs: Any) -> Any:
            if s == 0 and t >= 60.0 and kind != "silence":
                raised.append(time.time())
                raise KeyError("scene 'rain' lost")  # the fault, inside bed 0's part of the step
            return real(out, t, s, kind, *args, **kwargs)

        ctrl._issue = issue
        _run(floor, 60.0)
        floor.sinks[0].arm()
        ctrl._set_scene(0, "\0")  # the program restarts its scene at the next step (as after a glitch)
        _run(floor, seconds)
        sink = floor.sinks[0]
        kinds = [g.kind for g in floor.sup.glitches if g.session == floor.names[0]]
        safe = None if not raised or sink.silent_wall is None else max(0.0, sink.silent_wall - raised[0])
        others = sum(_differs(floor.sinks[k], base.sinks[k]) for k in range(1, beds))
        lost = _lost(base, floor)
        ok = bool(raised) and sink.safe and "controller_error" in kinds and others == 0 and lost == 0
        return ChaosResult("exception in one bed's controller", "that bed silent at once (controller_error, high "
                           "alarm), recording goes on; the other beds hear exactly the same",
                           f"{len(raised)} exception(s) from 60 s; bed {'silent' if sink.safe else 'NOT silent'}, "
                           f"glitches {sorted(set(kinds))}",
                           ok, safe, lost, others, beds)


def _lost(base: Floor, floor: Floor) -> float:
    a, b = base.recorded_s(), floor.recorded_s()
    return round(sum(max(0.0, a[n] - b.get(n, 0.0)) for n in a), 2)


def malformed_program(beds: int = 8, seconds: float = 120.0, root: str | Path | None = None) -> ChaosResult:
    """A malformed program hot-loaded into bed 1 at 60 s (YAML that does not parse, then one that fails a check)."""
    with _tmp(root) as tmp:
        base = _baseline(beds, seconds, tmp)
        floor = build_floor(beds, tmp / "fault")
        _run(floor, 60.0)
        bad = ("name: [unclosed\n  rules: {", "name: loud\nversion: 1\nscenes: {}\nrules: {W: nowhere}\n")
        reports = [floor.sup.update_program(floor.names[1], text) for text in bad]
        _run(floor, seconds)
        refused = all(not r.ok for r in reports)
        others = sum(_differs(floor.sinks[k], base.sinks[k]) for k in range(beds))
        lost = _lost(base, floor)
        return ChaosResult("malformed program hot-loaded", "refused with the check's errors; the bed keeps its last "
                           "valid program (it hears the same as without the update); nothing else changes",
                           f"{sum(not r.ok for r in reports)}/2 refused: "
                           f"{reports[0].errors[0] if reports[0].errors else ''}",
                           refused and others == 0 and lost == 0, 0.0, lost, others, beds)


def clock_jump(beds: int = 8, seconds: float = 120.0, jump_s: float = 60.0,
               root: str | Path | None = None) -> ChaosResult:
    """The facility clock jumps ``jump_s`` ahead in one tick at 40 s (a suspended VM, a stalled process resuming)."""
    with _tmp(root) as tmp:
        base = _baseline(beds, seconds, tmp)
        floor = build_floor(beds, tmp / "fault")
        _run(floor, 40.0)
        t0 = time.perf_counter()
        floor.clock.advance(jump_s)
        floor.sup.step()
        catch_up = time.perf_counter() - t0
        _run(floor, seconds)
        lapsed = [g for g in floor.sup.glitches if g.kind == "lease_lapsed"]
        others = sum(_differs(floor.sinks[k], base.sinks[k]) for k in range(beds))
        lost = _lost(base, floor)
        return ChaosResult(f"clock jump (+{jump_s:g} s in one tick)", "the loop catches up in bounded steps (each "
                           "renews the leases); every bed hears what it would have heard; nothing lost (the watchdog "
                           "runs on the monotonic clock, so a wall-clock jump does not reach it)",
                           f"caught up {jump_s:g} s in {catch_up:.2f} s wall; {len(lapsed)} lease lapses",
                           others == 0 and lost == 0 and not lapsed, 0.0, lost, others, beds,
                           {"catch_up_wall_s": round(catch_up, 3)})


def half_sources_disconnect(beds: int = 8, seconds: float = 150.0, down_s: float = 20.0,
                            root: str | Path | None = None) -> ChaosResult:
    """Half the beds' devices unplugged at once at 60 s, back ``down_s`` later."""
    with _tmp(root) as tmp:
        base = _baseline(beds, seconds, tmp, sourced=True)
        floor = build_floor(beds, tmp / "fault", sourced=True)
        sources = [rt.source for rt in floor.sup.sessions.values()]
        hit = list(range(0, beds, 2))
        _run(floor, 60.0)
        for k in hit:
            floor.sinks[k].arm()
            sources[k].down = True
        t_fault = time.time()
        safe_lane: dict[int, float] = {}

        def watch(t: float) -> None:
            for k in hit:
                if k not in safe_lane and floor.sinks[k].safe:
                    safe_lane[k] = t - 60.0
            if t >= 60.0 + down_s:
                for k in hit:
                    sources[k].down = False

        _run(floor, seconds, on_tick=watch)
        wall = _since([floor.sinks[k] for k in hit], t_fault)
        others = sum(_differs(floor.sinks[k], base.sinks[k]) for k in range(beds) if k not in hit)
        how = [_first_difference(base.sinks[k], floor.sinks[k]) for k in range(beds)
               if k not in hit and _differs(floor.sinks[k], base.sinks[k])]
        rec_b, rec_f = base.recorded_s(), floor.recorded_s()
        lost = round(sum(max(0.0, rec_b[n] - rec_f[n]) for n in floor.names), 2)
        kinds = sorted({g.kind for g in floor.sup.glitches if g.session in {floor.names[k] for k in hit}})
        all_safe = len(safe_lane) == len(hit)
        silenced_others = [k for k in range(beds) if k not in hit and any(
            kind == "silence" and t >= 60.0 for t, kind in floor.sinks[k].played)]
        ok = all_safe and not silenced_others and lost <= len(hit) * (down_s + 6.0)
        return ChaosResult("half the sources disconnect at once", "each unplugged bed raises source_error/dropout "
                           "and goes silent (no stimulation without its EEG) until its device is back; the other "
                           "half go on (their stimulation never stops); at most the unplugged time is missing (a "
                           "device that buffers hands its backlog to the journal when it is back)",
                           f"{len(safe_lane)}/{len(hit)} unplugged beds silent within "
                           f"{max(safe_lane.values(), default=float('nan')):.1f} s of night; glitches {kinds}",
                           ok, round(max(wall), 3) if wall else None, lost, others, beds,
                           {"safe_night_s_max": max(safe_lane.values(), default=None),
                            "unplugged_s_total": len(hit) * down_s, "other_differences": how})


def stuck_sink(beds: int = 8, root: str | Path | None = None) -> ChaosResult:
    """Bed 0's sink never returns from a command (a hung audio device): the loop stalls in it."""
    from nexus.facility.extraction_bench import _LoopThread
    from nexus.safety.watchdog import LEASE_S, Watchdog

    with _tmp(root) as tmp:
        floor = build_floor(beds, tmp / "fault")
        _run(floor, 45.0)
        playing = [k for k, s in enumerate(floor.sinks) if not s.safe]
        for s in floor.sinks:
            s.arm()
        dog = Watchdog(LEASE_S, period_s=0.05)
        dog.watch_supervisor(floor.sup)
        hang = threading.Event()
        floor.sinks[0].hang = hang
        loop = _LoopThread(floor.sup, 0.25, False)
        with dog:
            loop.start()
            time.sleep(0.2)
            hang.set()
            t_stuck = time.time()
            deadline = time.monotonic() + 4 * LEASE_S + 5.0
            while time.monotonic() < deadline and not all(floor.sinks[k].silent_wall for k in range(1, beds)):
                time.sleep(0.02)
            silent = _since([floor.sinks[k] for k in range(1, beds)], t_stuck)
            floor.sinks[0].unstick()
            loop.halt()
        ok = len(silent) == beds - 1
        return ChaosResult("stuck sink", "the loop stalls inside the hung device; the watchdog (not the loop) "
                           f"silences every other bed within the {LEASE_S:g}-s lease plus its check, passing over "
                           "the hung one; recording pauses with the loop (device samples wait in the jitter buffer)",
                           f"{len(silent)}/{beds - 1} other beds silenced by the watchdog; {len(playing)} were playing",
                           ok, round(max(silent), 3) if silent else None, 0.0, beds - 1, beds,
                           {"lease_s": LEASE_S})


class _Outage:
    """Refuses every new connection of an engine while ``down`` (the database server is unreachable)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.engine = engine
        self.down = False
        event.listen(engine, "do_connect", self._connect)

    def _connect(self, *args: Any, **kwargs: Any) -> None:
        if self.down:
            import sqlite3

            raise sqlite3.OperationalError("unable to open database file (server unreachable)")

    def start(self) -> None:
        self.down = True
        self.engine.dispose()  # pooled connections go with the server

    def end(self) -> None:
        self.down = False


def database_down(beds: int = 8, down_s: float = 30.0, root: str | Path | None = None) -> ChaosResult:
    """The facility database refuses connections for ``down_s`` wall seconds while the floor runs; then an order."""
    from sqlalchemy import insert

    from nexus.core.lifecycle import SessionState
    from nexus.core.settings import load_settings
    from nexus.facility.extraction_bench import _LoopThread
    from nexus.facility.orders import OrderDesk, register_run, submit_orders, wait_orders
    from nexus.store import upgrade
    from nexus.store.db import open_store
    from nexus.store.models import Client, NightSession

    with _tmp(root) as tmp:
        floor = build_floor(beds, tmp / "fault")
        store = open_store(load_settings(database_url=f"sqlite:///{tmp / 'nexus.db'}"), create=True, check=False)
        try:
            upgrade(store.engine, "head")
            with store.session() as s:
                c = Client(code="chaos")
                s.add(c)
                s.flush()
                s.execute(insert(NightSession), [{"id": n, "client_id": c.id, "state": SessionState.RUNNING,
                                                  "mode": "stimulation"} for n in floor.names])
            register_run(store, "chaos", [floor.journal_dir], floor.names)
            desk = OrderDesk(store, floor.sup, "chaos", poll_s=0.1)
            floor.sup.between_steps.append(desk.poll)
            outage = _Outage(store.engine)
            loop = _LoopThread(floor.sup, 0.5, False)
            loop.start()
            lane = floor.sup.lanes[0]
            while lane.processed / FS < 45.0:
                time.sleep(0.05)
            outage.start()
            before = lane.processed
            refused = ""
            try:
                submit_orders(store, None, "immediate")
            except Exception as exc:  # what 'nexus extract' meets meanwhile (it prints one line)
                refused = type(exc).__name__
            time.sleep(down_s)
            ran_s = (lane.processed - before) / FS
            outage.end()
            for sink in floor.sinks:
                sink.arm()
            t_order = time.time()
            ids = submit_orders(store, None, "immediate")
            _, done = wait_orders(store, ids, timeout_s=30.0, poll_s=0.02)
            loop.halt()
            wall = _since(floor.sinks, t_order)
            rec = floor.recorded_s()
            lost = round(sum(max(0.0, lane.processed / FS - v) for v in rec.values()), 2)
            ok = done and ran_s > 0 and desk.errors > 0 and len(wall) == beds and lost == 0
            return ChaosResult(f"database unavailable for {down_s:g} s", "the beds run on and record (the journal "
                               "is local); the order desk logs the outage and retries; 'nexus extract' meanwhile "
                               "fails with one line; the first order after the outage is carried out at once",
                               f"{ran_s:.0f} s of night ran during the outage, {desk.errors} failed polls, an order "
                               f"during it refused ({refused or 'not refused'}); after it all beds safe: {done}",
                               ok, round(max(wall), 3) if wall else None, lost, 0, beds,
                               {"night_s_during_outage": round(ran_s, 1), "failed_polls": desk.errors})
        finally:
            store.close()


def disk_full(beds: int = 8, root: str | Path | None = None) -> ChaosResult:
    """The journal's signal file hits ``ENOSPC`` (it is opened on ``/dev/full``) at 60 s."""
    with _tmp(root) as tmp:
        floor = build_floor(beds, tmp / "fault")
        _run(floor, 60.0)
        j = floor.sup.journal
        j.flush(force=True)
        lay = next(iter(j._layouts.values()))
        kept = (floor.journal_dir / f"signals-{lay.number}.seg").stat().st_size
        lay.file.close()
        lay.file = open("/dev/full", "ab")  # noqa: SIM115 - the fault: every write now fails with ENOSPC
        for s in floor.sinks:
            s.arm()
        t_fault = time.time()
        error = ""
        try:
            _run(floor, 90.0)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        stopped_at = floor.clock.now()
        with contextlib.suppress(Exception):
            floor.sup.close()  # what a facility does when its loop fails: every bed silent, sessions closed
        wall = _since(floor.sinks, t_fault)
        one_line = bool(error) and "\n" not in error and "disk is full" in error
        ok = bool(error) and len(wall) == beds and one_line
        return ChaosResult("disk full (journal)", "the journal's write fails with a clear StorageError; the loop "
                           "stops and every bed is silenced and its session ended; what was written before stays "
                           "readable (up to the last flush, <= 1 s)",
                           f"loop stopped at {stopped_at:.1f} s of night: {error[:240] or 'no error'}; "
                           f"{kept} bytes kept", ok, round(max(wall), 3) if wall else None,
                           round(max(0.0, stopped_at - 60.0) * beds, 1), 0, beds)


# -- process faults -------------------------------------------------------------------------------
NEXUS = [sys.executable, "-c", "import sys; from nexus.cli.main import main; sys.exit(main())"]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env["NEXUS_DATA_DIR"] = str(tmp / "data")
    return env


def _start_simulate(tmp: Path, env: dict[str, str], beds: int, workers: int) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp / "night"
    with open(tmp / "simulate.err", "wb") as err:
        proc = subprocess.Popen([*NEXUS, "simulate", "--clients", str(beds), "--hours", "2", "--tick", "5",
                                 "--signals", "--no-events", "--no-progress", "--workers", str(workers),
                                 "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=err)
    journals = [out / "journal"] + [out / f"journal-{k}" for k in range(1, workers)]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if all((j / "signals-0.seg").exists() and (j / "signals-0.seg").stat().st_size > 400_000 for j in journals):
            break
        time.sleep(0.2)
    return proc, out


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids += [int(x) for x in (task / "children").read_text().split()]
    return kids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _sessions(env: dict[str, str], state: str | None = None) -> list[dict[str, Any]]:
    import json

    r = subprocess.run([*NEXUS, "sessions", "--json", *(["--state", state] if state else [])], env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    return list(json.loads(r.stdout or "[]"))


def process_kill(beds: int = 4, root: str | Path | None = None) -> ChaosResult:
    """``kill -9`` of a ``nexus simulate`` process in full flight, then ``nexus recover``."""
    import json

    from nexus.store.recording import recover_journal

    with _tmp(root) as tmp:
        env = _env(tmp)
        proc, out = _start_simulate(tmp, env, beds, 1)
        if proc.poll() is not None:
            return ChaosResult("process kill (kill -9) at peak load", "", "simulate did not start: "
                               + (tmp / "simulate.err").read_text()[-200:], False, beds=beds)
        t_kill = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        gone_s = time.time() - t_kill  # its sinks (in-process) stop with it
        journal = out / "journal"
        before = recover_journal(journal)
        t0 = time.time()
        r = subprocess.run([*NEXUS, "recover", "--json"], env=env, capture_output=True, text=True, timeout=600,
                           check=False)
        recover_s = time.time() - t0
        rep = json.loads(r.stdout or "{}")
        running = _sessions(env, "running")
        rows = _sessions(env)
        # signal lost: what the journal held at the kill against what the night had reached (its frames' end)
        reached = {n: max((t + k / info.fs for t, k in zip(before.index[n].t0, before.index[n].n, strict=True)),
                          default=0.0) for n, info in before.sessions.items() if n in before.index}
        recovered = rep.get("recorded_s", {})
        lost = max((reached[n] - recovered.get(n, 0.0) for n in reached), default=0.0)
        ok = r.returncode == 0 and not running and len(rep.get("sessions", [])) == beds
        return ChaosResult("process kill (kill -9) at peak load", "sinks stop with the process; 'nexus recover' "
                           "(also at the next start) ends every session as aborted (crash) and merges each journal "
                           "into an EDF+ up to <= 1 s before the kill",
                           f"{len(rep.get('sessions', []))}/{beds} sessions recovered in {recover_s:.1f} s "
                           f"(recovery itself {rep.get('wall_s')} s); running after: {len(running)}; "
                           f"{len(rep.get('recordings', {}))} EDF+",
                           ok, round(gone_s, 3), round(lost, 3), 0, beds,
                           {"sessions_lost": beds - len(rep.get("sessions", [])), "recover_s": round(recover_s, 2),
                            "states": sorted({x.get("state", "?") for x in rows})})


def worker_killed(beds: int = 4, root: str | Path | None = None) -> ChaosResult:
    """``kill -9`` of one of two ``nexus simulate --workers 2`` worker processes."""
    with _tmp(root) as tmp:
        env = _env(tmp)
        proc, _ = _start_simulate(tmp, env, beds, 2)
        kids = [p for p in _children(proc.pid) if _alive(p)]
        workers = [p for p in kids if "multiprocessing" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
                   and "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]
        if proc.poll() is not None or len(workers) < 2:
            proc.kill()
            return ChaosResult("worker killed", "", f"could not find two workers ({kids})", False, beds=beds)
        t_kill = time.time()
        os.kill(workers[0], signal.SIGKILL)
        try:
            rc = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = None
        stopped = time.time() - t_kill
        err = (tmp / "simulate.err").read_text()
        left = [p for p in workers if _alive(p)]
        running = _sessions(env, "running")
        rows = _sessions(env)
        last = [ln for ln in err.splitlines() if ln.startswith("Error")]
        ok = rc not in (None, 0) and not left and not running and len(last) == 1
        return ChaosResult("worker killed", "the parent notices within ~5 s, stops the other worker with "
                           "SIGTERM (its beds silenced, journal flushed), ends every session as aborted with the "
                           "reason and exits non-zero with one line; no worker outlives it",
                           f"exit {rc} after {stopped:.1f} s: {last[0][:110] if last else err[-110:]}; "
                           f"workers left {len(left)}; states {sorted({x.get('state', '?') for x in rows})}",
                           ok, round(stopped, 2), None or 0.0, beds // 2, beds)


SCENARIOS: dict[str, Callable[..., ChaosResult]] = {
    "process_kill": process_kill,
    "database_down": database_down,
    "disk_full": disk_full,
    "half_sources": half_sources_disconnect,
    "clock_jump": clock_jump,
    "controller_exception": controller_exception,
    "malformed_program": malformed_program,
    "stuck_sink": stuck_sink,
    "worker_killed": worker_killed,
}


def markdown(results: list[ChaosResult]) -> str:
    """The results as a markdown table (for the issue's note)."""
    rows = ["| fault | expected | observed | ok | time to safe (s) | data lost (bed-s) | other beds affected |",
            "|---|---|---|---|---|---|---|"]
    for r in results:
        safe = "—" if r.safe_s is None else f"{r.safe_s:.3g}"
        rows.append(f"| {r.fault} | {r.expected} | {r.observed} | {'yes' if r.ok else 'NO'} | {safe} | "
                    f"{r.data_lost_s:g} | {r.others_affected}/{max(0, r.beds - 1)} |")
    return "\n".join(rows)
