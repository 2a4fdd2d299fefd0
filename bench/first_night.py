"""The live engine's first night: `nexus bench live` in a process whose numba cache is empty.

A fresh install, or the first start after a code change, has no compiled kernels on disk; the
warm-up (``nexus.facility.warmup``) must compile every kernel before the first tick. This runs the
live benchmark in a child process with ``NUMBA_CACHE_DIR`` set to a new empty folder, watches
numba's compile events, and prints the latency figures together with every kernel compiled after
the loop started (there should be none). A second run in the same cache shows the warm figures.

    python bench/first_night.py --sessions 1000 --seconds 30 --start-h 1.5 [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
from numba.core import event as nev
from nexus.facility import supervisor as S
from nexus.facility.benchmark import bench_live

args = json.loads(sys.argv[1])
started = {}
run = S.Supervisor.run
def timed_run(self, *a, **k):
    started.setdefault("t", time.perf_counter())
    return run(self, *a, **k)
S.Supervisor.run = timed_run

compiles = []
class Watch(nev.Listener):
    def on_start(self, ev):
        d = ev.data if isinstance(ev.data, dict) else {}
        f = getattr(d.get("dispatcher"), "py_func", None)
        compiles.append((time.perf_counter(), f"{f.__module__}.{f.__qualname__}" if f else "?"))
    def on_end(self, ev):
        pass
nev.register("numba:compile", Watch())
r = bench_live(sessions=args["sessions"], seconds=args["seconds"], start_h=args["start_h"])
t0 = started["t"]
late = [{"at_s": round(t - t0, 2), "kernel": name} for t, name in compiles if t > t0]
keep = ("sessions", "seconds", "start_h", "latency_ms_p50", "latency_ms_p99", "latency_ms_max", "cpu_percent",
        "realtime", "samples_dropped")
print(json.dumps({**{k: r[k] for k in keep}, "compiled_before_start": sum(t <= t0 for t, _ in compiles),
                  "compiled_during_run": late}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--start-h", type=float, default=1.5)
    ap.add_argument("--runs", type=int, default=2, help="runs in the same (at first empty) cache")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nexus-numba-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for k in range(a.runs):
            spec = json.dumps({"sessions": a.sessions, "seconds": a.seconds, "start_h": a.start_h})
            done = subprocess.run([sys.executable, "-c", CHILD, spec], env=env, capture_output=True, text=True,
                                  check=False)
            if done.returncode != 0:
                sys.exit(f"first_night: run {k + 1} failed:\n{done.stderr[-2000:]}")
            out = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps({"run": k + 1, "cache": "empty" if k == 0 else "warm", **out}))


if __name__ == "__main__":
    main()
