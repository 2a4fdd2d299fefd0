"""What a night leaves for Python's garbage collector: tracked objects per hour of night, a full collection's time.

Runs the facility of ``nexus run`` in this process (N synthetic beds, no loop thread: :meth:`advance`) for
``--minutes`` of real night, counting the objects the collector tracks (``len(gc.get_objects())``, the set-up's
objects frozen out by ``settle_heap``) once a minute and naming the types that grew after the first minute (which
builds the lanes). Then it writes the rest of an ``--hours`` night's closed epochs through the service's own
listener (the path the recorder's records take: one stage and hypnodensity and one click decision per bed every
30 s), timing each epoch close, and times ``gc.collect()`` (a full collection) at the end, the median of
``--repeat``. Figures are of this process on this host: print the load with them. ``--service-module``: another
FacilityService (a copy of an older commit's service.py on the path) for a before figure.

Example: ``python bench/night_heap.py --clients 500 --minutes 5 --hours 8``.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _types() -> collections.Counter[str]:
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


def _full_gc_ms(repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        gc.collect()
        times.append(1e3 * (time.perf_counter() - t0))
    return round(float(np.median(times)), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--minutes", type=float, default=3.0, help="minutes of night really run (advance)")
    ap.add_argument("--hours", type=float, default=8.0, help="night length the epochs are filled up to")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--service-module", default="nexus.facility.service",
                    help="module of the FacilityService to run (e.g. a copy of an older commit's, for a before figure)")
    args = ap.parse_args()
    import importlib

    from nexus.core.settings import load_settings
    from nexus.store import open_store, upgrade

    mod = importlib.import_module(args.service_module)
    EPOCH_S, FacilityService = mod.EPOCH_S, mod.FacilityService
    tmp = Path(tempfile.mkdtemp(prefix="nexus-heap-"))
    store = open_store(load_settings(database_url=f"sqlite:///{tmp}/nexus.db"), create=True, check=False)
    upgrade(store.engine)
    svc = FacilityService(store, clients=args.clients, data_dir=tmp, hours=args.hours)
    svc.start(background=False)
    from nexus.facility.heap import settle_heap

    settle_heap()  # as the loop thread does before its first tick: the set-up's objects frozen out
    base: collections.Counter[str] = collections.Counter()
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    while svc.clock.now() < 60.0 * args.minutes - 1e-9:
        svc.advance(60.0)
        rows.append({"night_s": round(svc.clock.now()), "tracked": len(gc.get_objects()), "count": gc.get_count()})
        if len(rows) == 1:  # the first minute builds the lanes: growth is counted from its end
            base = _types()
    run_s = time.monotonic() - t0
    grew = _types() - base
    shapes = collections.Counter(",".join(sorted(map(str, o)))[:80] for o in gc.get_objects() if type(o) is dict)
    per_min = (rows[-1]["tracked"] - rows[0]["tracked"]) / max(len(rows) - 1, 1)
    # the rest of the night's epochs through the service's listener, as the recorder hands them
    rng = np.random.default_rng(0)
    names = [b.plan.session for b in svc._beds]
    first = int(svc.clock.now() // EPOCH_S) + 1
    last = int(args.hours * 3600 // EPOCH_S)
    at_real_end = {"tracked": len(gc.get_objects()), "full_gc_ms": _full_gc_ms(args.repeat)}
    close_ms = []  # the listener's time for one epoch close of every bed (inside the tick that closes it)
    for e in range(first, last):
        p = rng.dirichlet(np.ones(5), size=len(names)).round(4).tolist()
        codes = rng.integers(0, 5, size=len(names)).tolist()
        records = [{"session": n, "kind": "stage", "onset": e * EPOCH_S, "duration": EPOCH_S, "stage": c, "probs": q}
                   for n, c, q in zip(names, codes, p, strict=True)]
        records += [{"session": n, "kind": "decision", "onset": e * EPOCH_S + 1.0, "duration": 0.0,
                     "description": "click", "command": {"t": e * EPOCH_S + 1.0, "kind": "click", "level_db": 45.0},
                     "inputs": {}, "reason": "slow-wave up-state"} for n in names]  # a click a bed an epoch
        with svc._lock:
            t0 = time.perf_counter()
            svc._on_records("stage", records)
            close_ms.append(1e3 * (time.perf_counter() - t0))
        svc._outbox.clear()
    gc.collect()
    end = {"epochs_per_bed": last,
           "epoch_close_ms": {"p50": round(float(np.median(close_ms)), 2),
                              "p99": round(float(np.percentile(close_ms, 99)), 2)},
           "tracked": len(gc.get_objects()), "full_gc_ms": _full_gc_ms(args.repeat)}
    frozen = gc.get_freeze_count()
    svc.stop()
    store.close()
    print(json.dumps({
        "beds": args.clients, "real_night_s": rows[-1]["night_s"], "run_wall_s": round(run_s, 1),
        "load_average": [round(x, 1) for x in os.getloadavg()], "frozen": frozen,
        "per_minute": rows, "tracked_growth_per_night_hour_real": round(60 * per_min),
        "grown_types_real": dict(grew.most_common(12)), "tracked_dicts_by_keys": dict(shapes.most_common(6)),
        "after_real_minutes": at_real_end, "end_of_night_synthesised": end,
    }, indent=1))


if __name__ == "__main__":
    main()
