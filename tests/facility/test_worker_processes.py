"""Three ``nexus worker`` processes on one PostgreSQL: kill -9 one, the others take its beds over, nothing is lost."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from nexus.core.settings import load_settings
from nexus.facility.leases import floor_status
from nexus.store.db import open_store
from nexus.store.recording import recover_journal

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]

NEXUS = [sys.executable, "-c", "import sys; from nexus.cli.main import main; sys.exit(main())"]


@pytest.fixture
def pg_env(postgres_url, tmp_path):
    """Workers on several hosts share a PostgreSQL (one worker on SQLite: test_worker.py); no SQLite variant."""
    db_url = postgres_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    return env | {"NEXUS_DATA_DIR": str(tmp_path / "data"), "NEXUS_DATABASE_URL": db_url}


def _nexus(env, *args, timeout=300):
    return subprocess.run([*NEXUS, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _status(env):
    r = _nexus(env, "worker", "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _floor(env):
    """What ``nexus worker status --json`` prints, read in this process: the polls below run twice a second and a
    new Python (with every import of the CLI) per poll took CPU from the three workers on a 2-core CI machine."""
    store = open_store(load_settings(database_url=env["NEXUS_DATABASE_URL"], data_dir=env["NEXUS_DATA_DIR"]))
    try:
        return json.loads(json.dumps(floor_status(store)))
    finally:
        store.close()


def _spans(data: Path, beds):
    """Per bed: (worker, first s, last s) of every worker's part, from the journals."""
    out = {b: [] for b in beds}
    records = []
    for j in sorted((data / "workers").glob("*/journal")):
        rec = recover_journal(j)
        records += rec.records
        for b in beds:
            idx = rec.index.get(b)
            if idx is not None and idx.n:
                fs = rec.sessions[b].fs
                out[b].append((j.parent.name, min(idx.t0),
                               max(t + n / fs for t, n in zip(idx.t0, idx.n, strict=True))))
    return out, records


def test_kill_9_a_worker_and_the_others_take_its_beds_over_with_nothing_lost(pg_env, tmp_path, wait_until):
    env = pg_env
    assert _nexus(env, "db", "upgrade").returncode == 0

    def poll(cond, timeout, what):  # twice a second; the final state is read with 'nexus worker status'
        return wait_until(cond, timeout, what, every_s=0.5)

    procs: list[subprocess.Popen[bytes]] = []

    def start(k):
        with open(tmp_path / f"w{k}.err", "wb") as err:
            procs.append(subprocess.Popen([*NEXUS, "worker", "run", "--lease", "5", "--heartbeat", "0.5"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=err))

    try:
        start(0)  # the first compiles the kernels once; the others load them from the cache
        poll(lambda: sum(w["alive"] for w in _floor(env)["workers"]) == 1, 600, "the first worker")
        start(1)
        start(2)
        poll(lambda: sum(w["alive"] for w in _floor(env)["workers"]) == 3, 600, "three workers")
        r = _nexus(env, "worker", "open", "--clients", "6", "--hours", "1", "--run", "kt")
        assert r.returncode == 0, r.stderr
        beds = [f"kt-{k:04d}" for k in range(1, 7)]
        st = poll(lambda: (lambda s: s if all(b["worker"] for b in s["beds"]) else None)(_floor(env)), 120,
                   "every bed claimed")
        owners = Counter(b["worker"] for b in st["beds"])
        assert max(owners.values()) <= 3, st  # an even share, not every bed on the first worker
        time.sleep(5.0)  # some night on every bed
        dead, n_dead = owners.most_common(1)[0]
        pid = {w["worker"]: w["pid"] for w in st["workers"]}[dead]
        [victim] = [p for p in procs if p.pid == pid]
        killed_at = time.time()
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        st = poll(lambda: (lambda s: s if all(b["worker"] not in (None, dead) for b in s["beds"]) else None)(
            _floor(env)), 120, "the dead worker's beds taken over")
        taken_s = time.time() - killed_at
        assert [w["alive"] for w in st["workers"] if w["worker"] == dead] == [False]
        assert sum(b["takeovers"] for b in st["beds"]) == n_dead, st
        time.sleep(3.0)  # the new workers record a while
        r = _nexus(env, "extract", "--all", "--mode", "immediate", "--json")  # extraction across workers
        assert r.returncode == 0, r.stdout + r.stderr
        poll(lambda: all(b["state"] == "ended" for b in _floor(env)["beds"]), 120, "every bed ended")
        for p in procs:
            if p is not victim:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            if p is not victim:
                assert p.wait(timeout=120) == 0, (tmp_path / "w1.err").read_text()[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    data = Path(env["NEXUS_DATA_DIR"])
    spans, records = _spans(data, beds)
    takeovers = {r["session"]: r for r in records if r.get("kind") == "takeover"}
    assert len(takeovers) == n_dead
    assert all(r["from"] == dead for r in takeovers.values())
    lost = []
    for b in beds:
        parts = sorted(spans[b], key=lambda p: p[1])
        # never two controllers: the parts of a night follow each other
        assert all(q[1] >= p[2] - 0.05 for p, q in itertools.pairwise(parts)), parts
        if b in takeovers:
            assert [p[0] for p in parts] == [dead, takeovers[b]["worker"]]
            lost.append(parts[1][1] - parts[0][2])
        else:
            assert len(parts) == 1
    assert all(0 < x < 60 for x in lost), lost
    st = _status(env)
    assert {b["state"] for b in st["beds"]} == {"ended"}  # no session lost
    r = _nexus(env, "sessions", "--json")
    rows = {s["session"]: s for s in json.loads(r.stdout)}
    assert all(rows[b]["end_reason"].startswith("extracted") for b in beds)
    print(f"\ntakeover: all {n_dead} beds of the killed worker held again {taken_s:.1f} s after kill -9 "
          f"(polled every 0.5 s); signal lost per bed {', '.join(f'{x:.2f}' for x in lost)} s")
