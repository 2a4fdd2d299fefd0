"""Fault injection on a real ``nexus simulate`` process: kill -9 then recovery, SIGTERM, workers never orphaned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nexus.facility.chaos import _alive, _children  # the chaos suite's /proc probes (children, not a zombie)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NEXUS = [sys.executable, "-c", "import sys; from nexus.cli.main import main; sys.exit(main())"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env["NEXUS_DATA_DIR"] = str(tmp_path / "data")
    return env


def _nexus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NEXUS, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def _start(tmp_path: Path, env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / "night"
    with open(tmp_path / "simulate.err", "wb") as err:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([*NEXUS, "simulate", "--clients", "2", "--hours", "2", "--tick", "5", "--signals",
                                 "--no-events", "--no-progress", "--workers", str(workers), "--out", str(out)],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
    # wait until every worker journals signals (the night is under way), bounded
    journals = [out / "journal"] + [out / f"journal-{k}" for k in range(1, workers)]
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if all((j / "signals-0.seg").exists() and (j / "signals-0.seg").stat().st_size > 200_000 for j in journals):
            break
        time.sleep(0.5)
    assert proc.poll() is None, (tmp_path / "simulate.err").read_text()
    return proc, out


def _sessions(env: dict[str, str], state: str | None = None) -> list[dict]:
    r = _nexus(env, "sessions", "--json", *(["--state", state] if state else []))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_kill_9_mid_night_then_recovery_ends_every_session_and_keeps_the_signal(tmp_path, workers):
    env = _env(tmp_path)
    proc, _out = _start(tmp_path, env, workers)
    kids = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # workers die with their parent (never orphans)
    deadline = time.monotonic() + 60
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [k for k in kids if _alive(k)]
    assert len(_sessions(env, "running")) == 2  # what a crash leaves behind
    r = _nexus(env, "recover", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert len(rep["sessions"]) == 2 and len(rep["recordings"]) == 2 and not rep["problems"]
    assert all(v > 0 for v in rep["recorded_s"].values())
    assert all(Path(p).is_file() for p in rep["recordings"].values())
    assert _sessions(env, "running") == []
    rows = _sessions(env)
    assert {r["state"] for r in rows} == {"aborted"}
    assert {r["end_reason"] for r in rows} == {"facility crashed; recovered"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_every_session_flushes_journals_and_leaves_no_worker(tmp_path, signum):
    env = _env(tmp_path)
    proc, out = _start(tmp_path, env, 2)
    kids = _children(proc.pid)
    assert len(kids) >= 2
    os.kill(proc.pid, signum)
    rc = proc.wait(timeout=120)
    assert rc != 0
    deadline = time.monotonic() + 60
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [k for k in kids if _alive(k)]
    rows = _sessions(env)
    assert {r["state"] for r in rows} == {"aborted"}
    assert {r["end_reason"] for r in rows} == {f"facility stopped by {signal.Signals(signum).name}"}
    r = _nexus(env, "recover", "--json")  # nothing left for recovery: the run ended itself
    assert json.loads(r.stdout)["sessions"] == []
    for j in ("journal", "journal-1"):
        assert (out / j / "signals-0.seg").stat().st_size > 0
