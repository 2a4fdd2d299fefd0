"""Safety wired into ``nexus run``'s facility service: the order desk, the watchdog, recovery at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from nexus.cli.main import main
from nexus.core.clock import ManualClock
from nexus.core.lifecycle import SessionState
from nexus.core.settings import load_settings
from nexus.facility.orders import order_rows, submit_orders
from nexus.facility.records import open_db
from nexus.facility.recovery import CRASH_REASON
from nexus.facility.service import FacilityService
from nexus.safety.watchdog import LEASE_S
from nexus.store import open_store, upgrade
from nexus.store.models import FacilityRun, HypnogramRow, NightSession


@pytest.fixture
def url(tmp_path, monkeypatch):
    u = f"sqlite:///{(tmp_path / 'data' / 'nexus.db').as_posix()}"
    monkeypatch.setenv("NEXUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NEXUS_DATABASE_URL", u)
    return u


@pytest.fixture
def store(url):
    st = open_store(load_settings(database_url=url), create=True, check=False)
    upgrade(st.engine, "head")
    yield st
    st.close()


def _rows(store, names):
    with store.session() as s:
        return {n: (r.state, r.end_reason, r.facility_run_id) for n in names if (r := s.get(NightSession, n))}


def test_an_order_in_the_database_reaches_the_service_and_the_bed_ends_with_its_rows(store, tmp_path):
    svc = FacilityService(store, clients=3, clock=ManualClock(), data_dir=tmp_path, events=False, run_id="o")
    svc.start()
    try:
        svc.advance(40.0)
        names = [b["session"] for b in svc.beds()]
        assert {r[2] for r in _rows(store, names).values()} == {"o"}  # the run owns its sessions
        ids = submit_orders(store, names[0], "immediate")
        svc.desk.poll(force=True)  # the loop polls at most every 0.1 s of wall time; no waiting in tests
        [o] = order_rows(store, ids)
        assert o["status"] == "applied" and o["safe_at"] is not None
        rt = svc.sup.sessions[names[0]]
        assert rt.lane.analyzer("dreamscape").extraction.extracting[rt.slot]  # the program no longer plays
        assert svc.sup.extractions[names[0]].safe_wall is not None
        assert svc.bed(names[1])["state"] == "running"
        svc.advance(30.0)  # the wake rises over 5 s, then the bed ends
        for _ in range(3):
            svc.desk.poll(force=True)
        [o] = order_rows(store, ids)
        assert o["status"] == "done" and o["done_at"] is not None
        bed = svc.bed(names[0])
        assert bed["state"] == "ended" and bed["end_reason"] == "extracted (immediate wake)"
        rows = _rows(store, names)
        assert rows[names[0]][:2] == (SessionState.ENDED, "extracted (immediate wake)")
        assert rows[names[1]][0] == SessionState.RUNNING  # the other beds run on
        with store.session() as s:  # the ended bed's live hypnogram was written
            assert s.scalars(select(HypnogramRow).where(HypnogramRow.session_id == names[0])).first() is not None
    finally:
        svc.stop()
    with store.session() as s:
        assert s.get(FacilityRun, "o").end_reason == "facility stopped"
    assert {r[0] for r in _rows(store, names).values()} == {SessionState.ENDED}


def test_cli_extract_all_reaches_a_running_service_and_reports_each_bed(store, tmp_path, capsys, wait_until):
    svc = FacilityService(store, clients=3, speed=20.0, hours=1.0, data_dir=tmp_path, events=False, run_id="c")
    svc.start(background=True)
    try:
        wait_until(lambda: svc.clock.now() >= 35.0, 120.0, "35 s of the night")
        rc = main(["extract", "--all", "--mode", "immediate", "--until", "done", "--timeout", "120"])
        out = capsys.readouterr().out
        assert rc == 0, out
        names = [b["session"] for b in svc.beds()]
        for n in names:
            assert f"{n}: safe " in out and "ended" in out
        wait_until(lambda: all(b["state"] == "ended" for b in svc.beds()), 30.0, "every bed ended")
        assert {r[0] for r in _rows(store, names).values()} == {SessionState.ENDED}
    finally:
        svc.stop()


def test_the_watchdog_silences_the_service_beds_when_its_loop_stalls(store, tmp_path, wait_until):
    svc = FacilityService(store, clients=3, speed=1.0, data_dir=tmp_path, events=False, run_id="w")
    svc.start(background=True)
    try:
        played = [b["session"] for b in svc.beds() if not b["natural"]]
        assert played and svc.watchdog is not None
        wait_until(lambda: all(svc.bed(n)["lease"] == "held" for n in played), 60.0, "every lease held")
        svc._lock.acquire()  # the loop's next tick waits on it: the loop has stalled
        try:
            stalled = time.monotonic()
            wait_until(lambda: len(svc.watchdog.silenced) >= len(played), LEASE_S + 5.0, "the beds silenced")
            took = time.monotonic() - stalled
            banks = {rt.lane.analyzer("dreamscape").bank for rt in svc.sup.sessions.values()}
            [bank] = banks
            slots = [svc.sup.sessions[n].slot for n in played]
            assert bank.lapsed[slots].all() and all(bank.sinks[s].safe for s in slots)
        finally:
            svc._lock.release()
        assert took <= LEASE_S + 1.0
        # the loop comes back: it renews the leases and the beds follow their programs again
        wait_until(lambda: not bank.lapsed[slots].any(), 10.0, "the leases renewed")
        assert all(b["state"] == "running" for b in svc.beds())
    finally:
        svc.stop()


SERVICE = """
import sys, time
from nexus.core.settings import load_settings
from nexus.facility.service import FacilityService
from nexus.store import open_store
st = open_store(load_settings(), check=False)
svc = FacilityService(st, clients=3, speed=5.0, data_dir=sys.argv[1], events=False, run_id="k")
svc.start(background=True)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_service_killed_with_kill_9_is_recovered_when_the_facility_starts_again(store, tmp_path, url, wait_until):
    env = {**os.environ, "NEXUS_DATABASE_URL": url}
    log = tmp_path / "service.out"
    with open(log, "wb") as fh:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, "-c", SERVICE, str(tmp_path)], env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: b"ready" in log.read_bytes() or proc.poll() is not None, 240.0, "the service to start")
        assert proc.poll() is None, log.read_text()
        time.sleep(1.0)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    with store.session() as s:
        names = list(s.scalars(select(NightSession.id).where(NightSession.facility_run_id == "k")))
    assert len(names) == 3 and {r[0] for r in _rows(store, names).values()} == {SessionState.RUNNING}
    again = open_db(url)  # what 'nexus run' does before its beds start
    again.close()
    rows = _rows(store, names)
    assert {r[:2] for r in rows.values()} == {(SessionState.ABORTED, CRASH_REASON)}
    with store.session() as s:
        assert s.get(FacilityRun, "k").ended_at is not None
    assert Path(tmp_path / "runs" / "k" / "journal").is_dir()


def test_the_service_runs_on_while_its_database_is_down_and_writes_what_waited(store, tmp_path):
    from nexus.facility.chaos import _Outage
    from nexus.store.models import GlitchRow

    svc = FacilityService(store, clients=3, clock=ManualClock(), data_dir=tmp_path, events=False, run_id="d",
                          faults=[(0, 50.0)])  # bed 1's samples turn NaN at 50 s: an alarm to store
    svc.start()
    outage = _Outage(store.engine)
    try:
        svc.advance(40.0)
        outage.start()
        svc.advance(30.0)  # the alarm is raised while nothing can be written; the loop goes on
        assert svc.clock.now() >= 70.0 and all(b["state"] == "running" for b in svc.beds())
        outage.end()
        svc.advance(1.0)
        with store.session() as s:
            kinds = list(s.scalars(select(GlitchRow.kind).where(GlitchRow.session_id == svc.beds()[0]["session"])))
        assert "bad_samples" in kinds
    finally:
        outage.end()
        svc.stop()
