"""Where a tick of ``nexus run``'s live loop goes: CPU time per phase, for the slowest ticks.

Runs the facility of ``nexus run`` in this process (N synthetic beds, 3 demonstration faults, the loop thread
paced in real time) with ``--consoles`` feed subscribers drained by a thread as consoles would be, for
``--seconds`` of night. Each phase of a tick is timed in CPU time of the loop's thread (``time.thread_time``:
on a shared, loaded host the wall time mostly measures the wait for a core): every analyzer's step, the
synthetic signals (``_pull_fleet``), the order and consent desks' polls, the recorder (with the service's
listener inside it), the journal flush. Prints the median of each phase and the ``--top`` slowest ticks with
the phases over twice their median; an epoch closes at every 30 s of night.

Example: ``python bench/tick_phases.py --clients 500 --seconds 100``. The first ticks (set-up) are listed
apart: ``--skip`` of them (default 8).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _timed(name: str, fn: Callable[..., Any], cur: dict[str, float], loop: dict[str, int | None]) -> Callable[..., Any]:
    def wrapped(*a: Any, **k: Any) -> Any:
        if threading.get_ident() != loop["tid"]:
            return fn(*a, **k)
        c0 = time.thread_time()
        try:
            return fn(*a, **k)
        finally:
            cur[name] += 1e3 * (time.thread_time() - c0)
    return wrapped


def _instrument(svc: Any, cur: dict[str, float], loop: dict[str, int | None]) -> None:
    sup = svc.sup
    for lane in sup.lanes:
        for a in lane.analyzers:
            a.step = _timed(type(a).__name__, a.step, cur, loop)
    sup.between_steps[:] = [_timed(getattr(cb, "__qualname__", "between"), cb, cur, loop) for cb in sup.between_steps]
    sup.recorder.write = _timed("recorder.write", sup.recorder.write, cur, loop)
    sup.journal.flush = _timed("journal.flush", sup.journal.flush, cur, loop)
    for m in ("_pull_fleet", "_watch_system", "_watch_dropouts", "_finish_extractions"):
        setattr(sup, m, _timed(m, getattr(sup, m), cur, loop))


def _quantiles(a: np.ndarray) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(a, q)), 1) for q in (50, 95, 99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=100.0, help="seconds of night (real time)")
    ap.add_argument("--consoles", type=int, default=11)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--skip", type=int, default=8, help="first ticks reported apart (set-up)")
    args = ap.parse_args()
    from nexus.core.settings import load_settings
    from nexus.facility.service import FacilityService, parse_faults
    from nexus.store import open_store, upgrade

    tmp = Path(tempfile.mkdtemp(prefix="nexus-phases-"))
    store = open_store(load_settings(database_url=f"sqlite:///{tmp}/nexus.db"), create=True, check=False)
    upgrade(store.engine)
    svc = FacilityService(store, clients=args.clients, data_dir=tmp, faults=parse_faults(args.clients, 3))
    cur: dict[str, float] = collections.defaultdict(float)
    loop: dict[str, int | None] = {"tid": None}
    ticks: list[dict[str, float]] = []
    real_tick = svc._tick

    def tick(target: float) -> None:
        if loop["tid"] is None:
            loop["tid"] = threading.get_ident()
            _instrument(svc, cur, loop)
        cur.clear()
        c0 = time.thread_time()
        real_tick(target)
        ticks.append({**cur, "clock": svc.clock.now(), "cpu": 1e3 * (time.thread_time() - c0),
                      "wall": svc._tick_ms[-1]})

    svc._tick = tick  # type: ignore[method-assign]
    subs = [svc.subscribe() for _ in range(args.consoles)]
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            for s in subs:
                while s.get() is not None:
                    pass
            stop.wait(0.05)

    drainer = threading.Thread(target=drain, daemon=True)
    t0 = time.monotonic()
    svc.start(background=True)
    drainer.start()
    set_up = time.monotonic() - t0
    while svc.clock.now() < args.seconds and svc._thread is not None and svc._thread.is_alive():
        time.sleep(0.5)
    stop.set()
    svc.stop()
    store.close()
    night = ticks[args.skip:]
    keys = sorted({k for t in night for k in t} - {"clock", "cpu", "wall"})
    med = {k: float(np.median([t.get(k, 0.0) for t in night])) for k in keys}
    cpu = np.array([t["cpu"] for t in night])
    wall = np.array([t["wall"] for t in night])

    def row(t: dict[str, float]) -> dict[str, Any]:
        over = {k: round(t[k], 1) for k in keys if t.get(k, 0.0) > max(1.0, 2 * med[k])}
        return {"clock_s": round(t["clock"], 2), "cpu_ms": round(t["cpu"], 1), "wall_ms": round(t["wall"], 1),
                "epoch_closed": t["clock"] > 1.0 and abs((t["clock"] - 0.25) % 30.0) < 1e-6, "over_2x_median": over}

    print(json.dumps({
        "beds": args.clients, "consoles": args.consoles, "night_s": round(svc.clock.now(), 1),
        "set_up_s": round(set_up, 1), "load_average": round(os.getloadavg()[0], 1),
        "ticks": len(night), "cpu_ms": _quantiles(cpu), "wall_ms": _quantiles(wall),
        "median_phase_cpu_ms": {k: round(v, 2) for k, v in med.items()},
        "set_up_ticks": [row(t) for t in ticks[:args.skip]],
        "slowest_ticks_by_cpu": [row(night[i]) for i in np.argsort(cpu)[::-1][:args.top]],
    }, indent=1))


if __name__ == "__main__":
    main()
