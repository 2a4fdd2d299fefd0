"""Takeover on the multi-host floor: N ``nexus worker`` processes, kill -9 one, measure what the others do.

Starts ``--workers`` worker processes against one database (``--database``, PostgreSQL for the real
thing), opens ``--beds`` beds once every worker is up, lets the night run ``--settle`` seconds, kills
one worker with SIGKILL and waits until its beds run again elsewhere. Then extracts every bed
through the database (``nexus extract --all``: extraction across workers) and prints JSON:

* ``takeover_s``: kill → the first sample recorded by the new worker, per bed (max and median);
  ``detect_s``: kill → the new worker's claim (the lease time plus at most one heartbeat);
* ``sessions_lost``: beds that did not end ``ended`` (target 0), ``run_twice``: beds whose journals
  overlap in time between two workers (target 0);
* ``signal_lost_s``: per bed taken over, the gap between the last sample the dead worker wrote
  and the first the new one recorded.

    python bench/takeover.py --database postgresql+psycopg://user:pw@127.0.0.1/db --workers 3 --beds 9
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NEXUS = [sys.executable, "-c", "import sys; from nexus.cli.main import main; sys.exit(main())"]


def _status(env: dict[str, str]) -> dict[str, Any]:
    r = subprocess.run([*NEXUS, "worker", "status", "--json"], env=env, capture_output=True, text=True,
                       timeout=120, check=True)
    return json.loads(r.stdout)


def _wait(cond: Any, timeout: float, what: str, period: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(period)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """One ``nexus worker run`` process (its stderr in ``log``)."""
    with open(log, "wb") as err:
        return subprocess.Popen([*NEXUS, "worker", "run", "--json", *args], env=env, stdout=subprocess.DEVNULL,
                                stderr=err)


def live_workers(env: dict[str, str]) -> list[dict[str, Any]]:
    """The workers alive on the floor."""
    return [w for w in _status(env)["workers"] if w["alive"]]


def journal_of(data: Path, worker: str) -> Path:
    """A worker's journal folder."""
    return data / "workers" / worker / "journal"


def measure(data: Path, killed: str, kill_wall: float, beds: list[str]) -> dict[str, Any]:
    """Takeover figures from the journals of every worker (after the run)."""
    from nexus.store.recording import recover_journal

    parts: dict[str, list[tuple[str, float, float]]] = {b: [] for b in beds}  # worker, first, last (s)
    claims: dict[str, list[dict[str, Any]]] = {b: [] for b in beds}
    spurious = 0
    for j in sorted((data / "workers").glob("*/journal")):
        rec = recover_journal(j)
        w = j.parent.name
        for b in beds:
            idx = rec.index.get(b)
            if idx is not None and idx.n:
                fs = rec.sessions[b].fs
                parts[b].append((w, min(idx.t0), max(t + n / fs for t, n in zip(idx.t0, idx.n, strict=True))))
        for r in rec.records:
            if r.get("kind") == "takeover" and r.get("session") in claims:
                if r.get("from") == killed:
                    claims[r["session"]].append(r)
                else:
                    spurious += 1  # a live worker's bed taken over (it could not beat in time)
    taken = [b for b in beds if claims[b]]
    takeover, detect, lost, overlap = [], [], [], 0
    for b in taken:
        c = claims[b][0]
        new = [p for p in parts[b] if p[0] == c["worker"]]
        old = [p for p in parts[b] if p[0] == killed]
        detect.append(c["wall"] - kill_wall)
        if new and old:
            # the session's clock is wall time since its start: the first new sample's wall time is start + first
            lost.append(new[0][1] - old[0][2])
            takeover.append(c["wall"] - kill_wall + (new[0][1] - c["onset"]))
    for b in beds:
        spans = sorted((p[1], p[2]) for p in parts[b])
        overlap += sum(1 for a, c2 in itertools.pairwise(spans) if c2[0] < a[1] - 0.05)
    med = statistics.median
    return {"beds_taken_over": len(taken),
            "takeover_s": {"max": round(max(takeover), 2), "median": round(med(takeover), 2)} if takeover else None,
            "detect_s": {"max": round(max(detect), 2), "median": round(med(detect), 2)} if detect else None,
            "signal_lost_s": {"max": round(max(lost), 2), "median": round(med(lost), 2),
                              "per_bed": [round(x, 2) for x in lost]} if lost else None,
            "run_twice": overlap, "takeovers_of_live_workers": spurious}


def main() -> None:
    """Run the takeover benchmark and print its figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", required=True, help="SQLAlchemy URL shared by the workers")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--beds", type=int, default=9)
    ap.add_argument("--settle", type=float, default=10.0, help="seconds of night before the kill")
    ap.add_argument("--lease", type=float, default=2.5)
    ap.add_argument("--heartbeat", type=float, default=0.5)
    ap.add_argument("--out", default=None, help="data folder (default: a temporary one)")
    args = ap.parse_args()
    data = Path(args.out or tempfile.mkdtemp(prefix="takeover-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env |= {"NEXUS_DATA_DIR": str(data), "NEXUS_DATABASE_URL": args.database}
    subprocess.run([*NEXUS, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=300)
    opts = ["--lease", str(args.lease), "--heartbeat", str(args.heartbeat)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        print(json.dumps(_run(args, env, data, opts, procs), indent=2))
    finally:
        for p in procs:  # never leave a worker behind
            if p.poll() is None:
                p.kill()


def _run(args: Any, env: dict[str, str], data: Path, opts: list[str],
         procs: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    procs.append(start_worker(env, data.parent / f"{data.name}-w0.err", *opts))
    _wait(lambda: len(live_workers(env)) >= 1, 600, "the first worker (kernels compiled once, then cached)")
    procs += [start_worker(env, data.parent / f"{data.name}-w{k}.err", *opts) for k in range(1, args.workers)]
    _wait(lambda: len(live_workers(env)) >= args.workers, 600, "every worker")
    run = f"b{int(time.time()) % 10**8}"
    subprocess.run([*NEXUS, "worker", "open", "--clients", str(args.beds), "--hours", "1", "--run", run], env=env,
                   check=True, capture_output=True, timeout=300)
    beds = [f"{run}-{k + 1:04d}" for k in range(args.beds)]

    def all_claimed() -> dict[str, Any] | None:
        s = _status(env)
        return s if all(b["worker"] for b in s["beds"] if b["session"] in beds) else None

    _wait(all_claimed, 120, "every bed to be claimed")
    time.sleep(args.settle)
    st = _status(env)
    owners: dict[str, int] = {}
    for b in st["beds"]:
        if b["session"] in beds and b["worker"]:
            owners[b["worker"]] = owners.get(b["worker"], 0) + 1
    killed = max(owners, key=lambda w: owners[w])
    pid = {w["worker"]: w["pid"] for w in st["workers"]}[killed]
    [victim] = [p for p in procs if p.pid == pid]
    held = owners
    kill_wall = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    _wait(lambda: all(b["worker"] not in (None, killed) for b in _status(env)["beds"] if b["session"] in beds),
          120, "the dead worker's beds to be taken over")
    time.sleep(3.0)
    t_ex = time.time()
    ex = subprocess.run([*NEXUS, "extract", "--all", "--mode", "immediate", "--json"], env=env, capture_output=True,
                        text=True, timeout=300)
    extract_s = time.time() - t_ex
    _wait(lambda: all(b["state"] in ("ended", "aborted") for b in _status(env)["beds"] if b["session"] in beds),
          120, "every bed to end")
    states = {b["session"]: b["state"] for b in _status(env)["beds"] if b["session"] in beds}
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=120)
    return {"workers": args.workers, "beds": args.beds, "lease_s": args.lease, "heartbeat_s": args.heartbeat,
           "killed": killed, "killed_held": held[killed],
           **measure(data, killed, kill_wall, beds),
           "sessions_lost": sum(1 for s in states.values() if s != "ended"),
           "extract_all_exit": ex.returncode, "extract_all_wall_s": round(extract_s, 2),
           "load_average": os.getloadavg()[0], "data": str(data)}


if __name__ == "__main__":
    main()
