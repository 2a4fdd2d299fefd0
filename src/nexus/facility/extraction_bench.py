"""``nexus bench extraction``: time from an extraction order to every bed's safe state, through the loop.

N beds (looped synthetic sleepers, each with a program that plays a scene in every stage and a sink
that stamps the wall time it went silent) run in the facility loop on a thread, in real time or in
fast-forward, with a temporary facility database. The order goes the way ``nexus extract --all``
sends it: one row per session in the order table, which the running loop polls after every lane
step (no API involved, so the figure holds with the API down). Measured: wall seconds from the
order's submission to each bed's sink going silent (``safe_s_*``), the times the facility wrote back
(``db_safe_s_*``), and, before the order, the dead-man's switch: the loop is stopped and the
watchdog (lease :data:`~nexus.safety.watchdog.LEASE_S`) silences every bed (``watchdog_silent_s_*``,
from the loop's last step).
"""

from __future__ import annotations

import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from nexus.core.checks import check_number
from nexus.core.clock import ManualClock, RealClock
from nexus.sinks.bedside import BedSink

CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG")


class _StampSink(BedSink):
    """Counts commands and stamps the first wall time it went silent after :meth:`arm`."""

    def __init__(self) -> None:
        super().__init__()
        self.played = 0
        self.safe_wall: float | None = None
        self.armed = False

    def arm(self) -> None:
        self.safe_wall, self.armed = None, True

    def _play(self, command: Any) -> None:
        self.played += 1

    def _silence(self, t: float) -> None:
        if self.armed and self.safe_wall is None:
            self.safe_wall = time.time()


def _pcts(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p100": None}
    return {"p50": round(float(np.percentile(values, 50)), 4), "p100": round(float(np.max(values)), 4)}


class _LoopThread:
    def __init__(self, sup: Any, tick_s: float, realtime: bool) -> None:
        self.sup, self.tick_s, self.realtime = sup, tick_s, realtime
        self.stop = threading.Event()
        self.last_step_wall = 0.0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="nexus-bench-loop", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                self.sup.run(self.tick_s, tick_s=self.tick_s)
                self.last_step_wall = time.time()
        except BaseException as exc:  # reported by the caller
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def halt(self) -> None:
        self.stop.set()
        self.thread.join()
        if self.error is not None:
            raise self.error


def _wait(cond: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def bench_extraction(sessions: int = 1000, *, realtime: bool = False, mode: str = "immediate", fs: float = 100.0,
                     warm_s: float = 40.0, timeout_s: float = 120.0, watchdog: bool = True,
                     cli: bool = False) -> dict[str, Any]:
    """Run the benchmark; return its figures (see the module notes).

    With ``cli`` the order is given by a fresh ``nexus extract --all`` process (its start-up included
    in the figures); otherwise by the same library calls in this process.
    """
    from sqlalchemy import insert

    from nexus.core.lifecycle import SessionState
    from nexus.core.settings import load_settings
    from nexus.dreamscape.presets import default_clas_program
    from nexus.dreamscape.schema import Scene
    from nexus.facility.analyzers import default_analyzers
    from nexus.facility.benchmark import LoopedFleet, _signals_at
    from nexus.facility.orders import OrderDesk, order_rows, register_run, submit_orders, wait_orders
    from nexus.facility.supervisor import Supervisor
    from nexus.safety.watchdog import LEASE_S, Watchdog
    from nexus.store import upgrade
    from nexus.store.db import open_store
    from nexus.store.models import Client, NightSession

    n = int(check_number("sessions", sessions, ge=1, le=20_000))
    tmp = tempfile.TemporaryDirectory(prefix="nexus-bench-extraction-")
    root = Path(tmp.name)
    store = open_store(load_settings(database_url=f"sqlite:///{root / 'nexus.db'}"), create=True, check=False)
    try:
        upgrade(store.engine, "head")
        names = [f"bx-{k:05d}" for k in range(n)]
        with store.session() as s:
            c = Client(code="bench-extraction")
            s.add(c)
            s.flush()
            s.execute(insert(NightSession), [{"id": name, "client_id": c.id, "state": SessionState.RUNNING,
                                              "mode": "stimulation"} for name in names])
        register_run(store, "bench", [], names)
        p = default_clas_program()
        prog = p.model_copy(update={"scenes": {**p.scenes, "bed": Scene.model_validate(
                                                {"layers": [{"sound": "rain", "level_db": -35}]})},
                                    "rules": {"W": "bed", "N1": "bed", "N2": "bed", "N3": "deep", "R": "bed"}})
        clock = RealClock() if realtime else ManualClock()
        tick_s = 0.1 if realtime else 1.0
        sup = Supervisor(clock, analyzers=default_analyzers(block_s=0.1, events=False), step_s=0.25,
                         buffer_s=8.0)
        sinks = [_StampSink() for _ in range(n)]
        data = _signals_at(n, 40, 1.0, 120.0, fs, CHANNELS)
        sup.add_fleet(LoopedFleet(data, fs, CHANNELS), names, programs=[prog] * n, sinks=list(sinks))
        desk = OrderDesk(store, sup, "bench", poll_s=0.05)
        sup.between_steps.append(desk.poll)
        res: dict[str, Any] = {"sessions": n, "clock": "real time" if realtime else "fast-forward", "mode": mode,
                               "path": "database order table polled by the loop (no API)", "fs": fs,
                               "channels": len(CHANNELS), "events": False}
        loop = _LoopThread(sup, tick_s, realtime)
        t_setup = time.perf_counter()
        loop.start()
        lane = sup.lanes[0]
        _wait(lambda: lane.processed / lane.fs >= warm_s or loop.error is not None,
              timeout_s=max(600.0, 3 * warm_s))
        res["warm_lane_s"] = round(lane.processed / lane.fs, 1)
        res["warm_wall_s"] = round(time.perf_counter() - t_setup, 1)
        res["beds_hearing_a_program"] = int(sum(not s.safe for s in sinks))
        if watchdog:
            dog = Watchdog(LEASE_S, period_s=0.05)
            dog.watch_supervisor(sup)
            for sink in sinks:
                sink.arm()
            with dog:
                loop.halt()  # the loop stops: no more renewals
                stopped = loop.last_step_wall
                ok = _wait(lambda: all(s.safe_wall is not None for s in sinks), 30.0)
            silent = [s.safe_wall - stopped for s in sinks if s.safe_wall is not None]
            res["watchdog_lease_s"] = LEASE_S
            res["watchdog_all_silent"] = ok
            res |= {f"watchdog_silent_s_{k}": v for k, v in _pcts(silent).items()}
            loop = _LoopThread(sup, tick_s, realtime)  # the loop comes back; beds follow their programs again
            loop.start()
            t_back = lane.processed
            _wait(lambda: lane.processed - t_back >= 5 * lane.fs or loop.error is not None, 120.0)
        for sink in sinks:
            sink.arm()
        t_order = time.time()
        if cli:
            import json
            import os
            import subprocess
            import sys

            env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
            env["NEXUS_DATABASE_URL"] = f"sqlite:///{root / 'nexus.db'}"
            proc = subprocess.run([sys.executable, "-c", "import sys; from nexus.cli.main import main; "
                                   "sys.exit(main())", "extract", "--all", "--mode", mode, "--json", "--timeout",
                                   str(timeout_s)], env=env, capture_output=True, text=True, check=False)
            t_submitted = t_reported = time.time()
            ok = proc.returncode == 0
            ids = [r["order"] for r in json.loads(proc.stdout or "[]")]
            res["cli_exit_code"] = proc.returncode
        else:
            ids = submit_orders(store, None, mode, ordered_by="bench")
            t_submitted = time.time()
            _, ok = wait_orders(store, ids, timeout_s=timeout_s, until="safe", poll_s=0.02)
            t_reported = time.time()
        res["path"] += " via `nexus extract --all` (a new process)" if cli else " via the library calls of the CLI"
        loop.halt()
        safe = [s.safe_wall - t_order for s in sinks if s.safe_wall is not None]
        db_safe = []
        for r in order_rows(store, ids):
            if r["safe_at"]:
                db_safe.append((datetime.fromisoformat(r["safe_at"]) - datetime.fromisoformat(r["ordered_at"]))
                               .total_seconds())
        res |= {"all_safe": ok and len(safe) == n, "submit_s": round(t_submitted - t_order, 4),
                "reported_s": round(t_reported - t_order, 4)}
        res |= {f"safe_s_{k}": v for k, v in _pcts(safe).items()}
        res |= {f"db_safe_s_{k}": v for k, v in _pcts(db_safe).items()}
        sup.close()
        return res
    finally:
        store.close()
        tmp.cleanup()
