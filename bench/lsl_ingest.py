"""Ingest cost of LSL beds: CPU per outlet, time from an outlet's start to its bed, clock offset and drift.

Starts N real pylsl outlets (8 ch x 256 Hz, bench/lsl_outlets.py, the shipped lsl_api.cfg) in another
process, records them with the record-only facility (:func:`nexus.facility.record.record`, raw: no
analyzers, i.e. the ingest path: inlets, edge checks, lanes, journal) in this process, and prints JSON:

* ``cpu_pct_per_outlet``: CPU of this process (every thread: liblsl's receivers included) over a
  steady window after every bed joined, in % of one core, divided by N;
* ``join_s``: seconds from each outlet's creation to its bed joining the running facility (p50, p95,
  max), and ``first_sample_s`` to its first recorded sample;
* ``clock``: per-bed LSL offsets (median, max |offset|), offset drift and arrival drift in ppm.

Run: ``python bench/lsl_ingest.py --outlets 100 300 --window 15`` (label the figures with ``uptime``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _pct(x: list[float], q: float) -> float | None:
    return round(float(np.percentile(x, q)), 3) if x else None


def run(n: int, window_s: float, join_budget_s: float, push_hz: float, clock_ppm: float = 0.0) -> dict:
    """One run with ``n`` outlets; returns the figures."""
    import nexus.facility.analyzers  # noqa: F401 - imported before the clock starts, as by 'nexus record'
    from nexus.facility.record import record
    from nexus.sources.spec import parse_source

    prefix = f"ing{uuid.uuid4().hex[:6]}-"
    seconds = join_budget_s + window_s + 30.0
    env = {k: v for k, v in os.environ.items() if k != "LSLAPICFG"}
    joined: list[float] = []
    result: dict = {}
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        def go() -> None:
            result["r"] = record(parse_source(f"lsl:name={prefix}"), seconds, Path(tmp) / "out",
                                 analyze=False, stop=stop, on_line=lambda s: joined.append(time.time())
                                 if s.startswith("Bed ") else None)

        th = threading.Thread(target=go)  # the facility runs first, as on a ward: the amplifiers come on later
        th.start()
        time.sleep(2.0)
        outlets = subprocess.Popen(
            [sys.executable, str(HERE / "lsl_outlets.py"), "--prefix", prefix, "--count", str(n), "--seconds",
             str(seconds + 30), "--push-hz", str(push_hz), "--clock-ppm", str(clock_ppm)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        try:
            assert outlets.stdout is not None
            line = outlets.stdout.readline()
            while line and not line.startswith("walls"):
                line = outlets.stdout.readline()
            created = {w.split("=")[0]: float(w.split("=")[1]) for w in line.split()[1:]}
            end_join = time.monotonic() + join_budget_s
            while len(joined) < n and time.monotonic() < end_join:
                time.sleep(0.2)
            all_joined = len(joined) == n
            time.sleep(2.0)  # settle: backlogs pulled, lanes steady
            c0, w0 = time.process_time(), time.monotonic()
            time.sleep(window_s)
            c1, w1 = time.process_time(), time.monotonic()
            load = os.getloadavg()
        finally:
            stop.set()
            th.join()
            outlets.kill()
            outlets.wait()
            if outlets.stdout is not None:
                outlets.stdout.close()
    res = result["r"]
    cpu_pct = 100.0 * (c1 - c0) / (w1 - w0)
    beds = res.beds
    join = [b.joined_wall - created[b.label] for b in beds if b.label in created]
    first = [b.first_sample_wall - created[b.label] for b in beds if b.first_sample_wall and b.label in created]
    offs = [b.clock.get("offset_s") for b in beds if b.clock.get("offset_s") is not None]
    odr = [b.clock["offset_drift_ppm"] for b in beds if b.clock.get("offset_drift_ppm") is not None]
    adr = [b.clock["arrival_drift_ppm"] for b in beds if b.clock.get("arrival_drift_ppm") is not None]
    counts = [b.counts for b in beds]
    return {
        "outlets": n, "outlet_clock_ppm": clock_ppm, "beds": len(beds), "all_joined_in_budget": all_joined,
        "window_s": round(w1 - w0, 2),
        "cpu_pct_one_core": round(cpu_pct, 1), "cpu_pct_per_outlet": round(cpu_pct / n, 3),
        "join_s": {"p50": _pct(join, 50), "p95": _pct(join, 95), "max": _pct(join, 100)},
        "first_sample_s": {"p50": _pct(first, 50), "p95": _pct(first, 95), "max": _pct(first, 100)},
        "clock": {"offset_ms_median": None if not offs else round(1e3 * float(np.median(offs)), 4),
                  "offset_ms_max_abs": None if not offs else round(1e3 * float(np.max(np.abs(offs))), 4),
                  "offset_drift_ppm_median": None if not odr else round(float(np.median(odr)), 2),
                  "arrival_drift_ppm_median": None if not adr else round(float(np.median(adr)), 1),
                  "arrival_drift_ppm_p5_p95": None if not adr else [round(float(np.percentile(adr, 5)), 1),
                                                                    round(float(np.percentile(adr, 95)), 1)]},
        "samples": {"received": int(sum(c.get("received", 0) for c in counts)),
                    "late": int(sum(c.get("late", 0) for c in counts)),
                    "dropped": int(sum(c.get("dropped", 0) for c in counts))},
        "refused": len(res.refused), "loadavg": [round(x, 2) for x in load],
    }


def main() -> None:
    """Parse arguments, run each size, print one JSON object per size."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--outlets", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--window", type=float, default=15.0, help="CPU measurement window, s")
    ap.add_argument("--join-budget", type=float, default=60.0, help="longest wait for every bed to join, s")
    ap.add_argument("--push-hz", type=float, default=16.0, help="chunks each outlet pushes per second")
    ap.add_argument("--clock-ppm", type=float, default=0.0, help="the outlets' clock runs this much fast (drift check)")
    a = ap.parse_args()
    for n in a.outlets:
        print(json.dumps(run(n, a.window, a.join_budget, a.push_hz, a.clock_ppm)), flush=True)


if __name__ == "__main__":
    main()
