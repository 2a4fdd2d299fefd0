"""Where one worker of ``nexus simulate`` spends its CPU, per analyzer of the lane. Prints JSON.

Usage: python bench/simulate_steps.py [--clients 100] [--hours 0.6] [--seed 0]

Runs one worker's share of a simulated night in this process (the beds of one ``_Part``: one
Supervisor, 30-s ticks, 1-s lane steps, events and monitor on, no database) and reports:

* wall_s, process_cpu_s: the whole part (set-up, night, read-back); process CPU also counts the
  stager's worker thread.
* main_thread_cpu_s: thread CPU time (``time.thread_time``) of the steps, per analyzer of the lane
  (``monitor``, ``dreamscape``, ``heart``, ...), of the fleet's synthesis (``pull_fleet``) and of the
  recorder (``collect``); ``steps`` is the whole of ``Supervisor.step``. Thread CPU time hardly moves
  with the machine's load, so figures taken at different loads can be compared (label them anyway).
* per_step_ms: ``steps`` divided by the lane steps (one per simulated second).
* night_sha256: a digest of the night (stages, events, decisions, glitches, alarms, commands, per-bed
  figures): two versions of the code that simulate the same night print the same digest.

The first 15-20 min of a night are wake and light sleep (detectors gated off, no CLAS): use at least
0.5 h to see the costs of a sleeping bed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import nexus.facility.pipeline as pipeline
import nexus.facility.supervisor as supervisor
from nexus.facility.simulate import NIGHT_CHANNELS, _Part, _run_part, plan_beds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--hours", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    acc: dict[str, float] = defaultdict(float)

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **k: Any) -> Any:
            t = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                acc[name] += time.thread_time() - t

        return run

    lane_step = pipeline.Lane.step

    def step(self: pipeline.Lane, *a: Any, **k: Any) -> Any:
        if not getattr(self, "_bench_timed", False):
            for an in self.analyzers:
                an.step = timed(str(getattr(an, "name", type(an).__name__)), an.step)  # type: ignore[method-assign]
            self._bench_timed = True  # type: ignore[attr-defined]
        return lane_step(self, *a, **k)

    pipeline.Lane.step = step  # type: ignore[method-assign]
    supervisor.Supervisor.step = timed("steps", supervisor.Supervisor.step)  # type: ignore[method-assign]
    supervisor.Supervisor._pull_fleet = timed("pull_fleet", supervisor.Supervisor._pull_fleet)  # type: ignore[method-assign]
    supervisor.Supervisor._collect = timed("collect", supervisor.Supervisor._collect)  # type: ignore[method-assign]

    beds = plan_beds(args.clients, seed=args.seed, hours=args.hours, run_id="bench")
    with tempfile.TemporaryDirectory() as root:
        part = _Part(0, beds, args.hours, 100.0, NIGHT_CHANNELS, 30.0, 1.0, False, True, root, None)
        t0, c0 = time.perf_counter(), time.process_time()
        res = _run_part(part)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    night = [res[k] for k in ("stages", "events", "decisions", "glitches", "alarms", "commands", "beds",
                              "events_by_bed")]
    digest = hashlib.sha256(json.dumps(night, sort_keys=True, default=str).encode()).hexdigest()
    n_steps = round(args.hours * 3600)
    print(json.dumps({
        "clients": args.clients, "hours": args.hours, "wall_s": round(wall, 2), "process_cpu_s": round(cpu, 2),
        "main_thread_cpu_s": {k: round(v, 2) for k, v in sorted(acc.items(), key=lambda kv: -kv[1])},
        "per_step_ms": round(1e3 * acc["steps"] / max(n_steps, 1), 2), "night_sha256": digest,
    }, indent=2))


if __name__ == "__main__":
    main()
