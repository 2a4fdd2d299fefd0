"""Fault-injection suite: every fault of the safety issue on a real facility floor, as a table and JSON.

For each fault (see :mod:`nexus.facility.chaos`): the expected behaviour, what happened, the time
from the fault to the last affected bed in the safe state (wall seconds), the signal lost (seconds,
summed over beds) and how many other beds heard anything different from the same night without the
fault. Prints the markdown table (for the issue's note), then one JSON object. Asserts nothing.

``--db-down-s`` shortens the database outage (30 s by default, as the issue asks); ``--only`` runs
some faults. The process faults (kill -9, a worker killed) start ``nexus simulate`` subprocesses.
Example: ``nice -n 10 .venv/bin/python bench/chaos.py --beds 16``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from nexus.facility.chaos import SCENARIOS, ChaosResult, markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beds", type=int, default=16, help="Beds of the in-process floor (default 16).")
    ap.add_argument("--process-beds", type=int, default=4, help="Beds of the simulate subprocesses (default 4).")
    ap.add_argument("--db-down-s", type=float, default=30.0, help="Length of the database outage, s (default 30).")
    ap.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="Run only these faults.")
    args = ap.parse_args()
    results: list[ChaosResult] = []
    t0 = time.time()
    for name, fn in SCENARIOS.items():
        if args.only and name not in args.only:
            continue
        kw: dict[str, object] = {"beds": args.process_beds if name in ("process_kill", "worker_killed")
                                 else args.beds}
        if name == "database_down":
            kw["down_s"] = args.db_down_s
        t = time.time()
        try:
            res = fn(**kw)
        except Exception as exc:  # a scenario that breaks is a finding, printed like the others
            res = ChaosResult(name, "", f"the scenario failed: {type(exc).__name__}: {exc}", False)
        res.extra["scenario_wall_s"] = round(time.time() - t, 1)
        results.append(res)
        print(f"{name}: {'ok' if res.ok else 'NOT OK'} ({res.extra['scenario_wall_s']} s)", flush=True)
    print()
    print(markdown(results))
    print()
    print(json.dumps({"beds": args.beds, "process_beds": args.process_beds, "db_down_s": args.db_down_s,
                      "load_avg": [round(x, 2) for x in os.getloadavg()], "wall_s": round(time.time() - t0, 1),
                      "results": [r.as_dict() for r in results]}))


if __name__ == "__main__":
    main()
