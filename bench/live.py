"""Sweep ``nexus bench live`` over numbers of beds and report the largest that holds real time.

Usage: python bench/live.py [--seconds 20] [--sessions 100,200,400,700,1000] [--live-synth] [--start-h 1.5]

Each size runs in its own process (a fresh interpreter, so sizes do not share caches) and prints
one JSON line; the last line is a JSON summary with ``largest_realtime`` (every bed kept up, no
sample dropped, p99 latency <= 50 ms). Figures depend on the machine and its load: say which
machine and how loaded it was when you quote them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--sessions", default="100,200,400,700,1000")
    ap.add_argument("--p99-ms", type=float, default=50.0)
    ap.add_argument("--live-synth", action="store_true")
    ap.add_argument("--start-h", type=float, default=0.0, help="cut the looped signals this far into the night")
    args = ap.parse_args()
    results = []
    for n in [int(s) for s in args.sessions.split(",")]:
        cmd = [sys.executable, "-c", "from nexus.cli.main import entry; entry()", "bench", "live", "--sessions", str(n),
               "--seconds", str(args.seconds), "--start-h", str(args.start_h), "--json"]
        cmd += ["--live-synth"] if args.live_synth else []
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(json.dumps({"sessions": n, "error": out.stderr.strip()[-500:]}), flush=True)
            break
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["holds"] = bool(res["realtime"] and res["latency_ms_p99"] <= args.p99_ms)
        results.append(res)
        print(json.dumps(res), flush=True)
    ok = [r["sessions"] for r in results if r["holds"]]
    print(json.dumps({"largest_realtime": max(ok) if ok else 0, "p99_limit_ms": args.p99_ms,
                      "sizes": [r["sessions"] for r in results]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
