"""Extraction orders through the database, and recovery of the sessions a crashed facility left open."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import func, select

from nexus.cli.main import main
from nexus.core.errors import NotFoundError, StateError
from nexus.core.lifecycle import SessionState
from nexus.core.settings import load_settings
from nexus.facility.orders import OrderDesk, order_rows, register_run, submit_orders, wait_orders
from nexus.facility.recovery import CRASH_REASON, recover
from nexus.store import upgrade
from nexus.store.db import open_store
from nexus.store.models import Client, ExtractionOrder, FacilityRun, NightSession
from nexus.store.recording import RecordingJournal

CH = ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG")
FS = 100.0


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("NEXUS_DATA_DIR", str(tmp_path / "data"))
    st = open_store(load_settings(), create=True, check=False)
    upgrade(st.engine, "head")
    yield st
    st.close()


def _rows(store, names, state=SessionState.RUNNING, run=None):
    with store.session() as s:
        c = Client(code=f"c-{names[0]}")
        s.add(c)
        s.flush()
        for n in names:
            row = NightSession(id=n, client_id=c.id, state=SessionState.PREPARED, facility_run_id=run)
            row.transition_to(SessionState.CALIBRATING)
            row.transition_to(SessionState.RUNNING)
            if state != SessionState.RUNNING:
                row.transition_to(SessionState.EXTRACTING)
                row.transition_to(state, reason="test")
            s.add(row)


def _state(store, name):
    with store.session() as s:
        row = s.get(NightSession, name)
        return row.state, row.end_reason, row.recording_path


def _n_orders(store):
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(ExtractionOrder))


def test_orders_from_the_database_are_carried_out_and_written_back(store, order_beds):
    names = ["bed-0", "bed-1"]
    _rows(store, names)
    sup, sinks = order_beds(store, names, "run1")
    desk = OrderDesk(store, sup, "run1", poll_s=0.01)
    sup.between_steps.append(desk.poll)
    sup.run(40.0, tick_s=1.0)
    assert not any(s.safe for s in sinks)
    ids = submit_orders(store, None, "immediate")
    assert [r["status"] for r in order_rows(store, ids)] == ["pending", "pending"]
    desk.poll(force=True)
    assert all(s.safe or s.played[-1].kind == "wake" for s in sinks)  # silenced; only the wake sound after
    rows, ok = wait_orders(store, ids, timeout_s=0.0)
    assert ok and all(r["status"] == "applied" and r["safe_at"] for r in rows)
    assert _state(store, "bed-0")[0] == SessionState.EXTRACTING
    sup.run(10.0, tick_s=1.0)  # the 5-s wake ramp ends; the sessions end
    desk.poll(force=True)
    rows, ok = wait_orders(store, ids, timeout_s=0.0, until="done")
    assert ok and {r["status"] for r in rows} == {"done"}
    assert _state(store, "bed-1")[:2] == (SessionState.ENDED, "extracted (immediate wake)")
    with store.session() as s:
        assert s.get(FacilityRun, "run1").heartbeat_at is not None
    sup.close()


def test_bad_orders_are_refused_and_nothing_is_written(store):
    _rows(store, ["old"], state=SessionState.ENDED)
    with pytest.raises(NotFoundError, match="No session 'nope'"):
        submit_orders(store, "nope", "gentle")
    with pytest.raises(StateError, match="already ended"):
        submit_orders(store, "old", "gentle")
    with pytest.raises(NotFoundError, match="No running session"):
        submit_orders(store, None, "gentle")
    assert _n_orders(store) == 0


def test_cli_extract_bad_input_is_one_line_and_non_zero(store, capsys):
    _rows(store, ["old"], state=SessionState.ENDED)
    for argv, code, text in ((["extract", "nope"], 3, "No session 'nope'"),
                             (["extract", "old"], 4, "already ended"),
                             (["extract"], 2, "Give one SESSION or --all"),
                             (["extract", "old", "--mode", "panic"], 2, "panic")):
        assert main(argv) == code, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and text in err, err
    assert _n_orders(store) == 0


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_recovery_merges_the_journal_and_aborts_only_the_dead_runs_sessions(store, tmp_path):
    journal = RecordingJournal(tmp_path / "night" / "journal")
    for n in ("a", "b"):
        journal.add_session(n, CH, FS)
    journal.write_signals(["a", "b"], [0.0, 0.0], np.ones((2, len(CH), 250)))
    journal.flush(force=True)  # then the process "dies": no close, no finalize
    _rows(store, ["a", "b"], run="dead")
    _rows(store, ["live"], run="alive")
    _rows(store, ["orphan"])
    register_run(store, "dead", [tmp_path / "night" / "journal"])
    register_run(store, "alive", [])
    with store.session() as s:
        s.get(FacilityRun, "dead").pid = _dead_pid()
    pending = submit_orders(store, "a", "gentle")
    try:
        rep = recover(store)
    finally:
        journal.close()
    assert rep.runs == ["dead"] and rep.alive == ["alive"] and sorted(rep.sessions) == ["a", "b"]
    assert rep.recorded_s == {"a": 2.5, "b": 2.5}
    for n in ("a", "b"):
        state, reason, path = _state(store, n)
        assert (state, reason) == (SessionState.ABORTED, CRASH_REASON) and path and os.path.exists(path)
    assert _state(store, "live")[0] == SessionState.RUNNING  # its facility still runs
    assert _state(store, "orphan")[0] == SessionState.RUNNING and rep.unowned == ["orphan"]
    assert order_rows(store, pending)[0]["status"] == "refused"
    assert recover(store).sessions == []  # idempotent
    assert recover(store, unowned=True).sessions == ["orphan"]
    assert _state(store, "orphan")[0] == SessionState.ABORTED


def test_recover_refuses_a_database_that_is_not_the_facilitys(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "x.db"
    bad.write_bytes(os.urandom(4096))
    monkeypatch.setenv("NEXUS_DATABASE_URL", f"sqlite:///{bad}")
    before = bad.read_bytes()
    assert main(["recover"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error:") and err.count("\n") == 0
    assert bad.read_bytes() == before


def test_db_upgrade_recovers_a_crashed_run_and_says_so(store, capsys):
    _rows(store, ["x"], run="gone")
    register_run(store, "gone", [])
    with store.session() as s:
        s.get(FacilityRun, "gone").pid = _dead_pid()
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert "Recovered 1 session(s) of 1 crashed run(s)" in out
    assert _state(store, "x")[:2] == (SessionState.ABORTED, CRASH_REASON)


def test_cli_extract_without_a_running_facility_warns_and_leaves_the_order(store, capsys):
    _rows(store, ["y"], run="gone")
    register_run(store, "gone", [])
    with store.session() as s:
        s.get(FacilityRun, "gone").pid = _dead_pid()
    assert main(["extract", "y", "--mode", "release", "--no-wait"]) == 0
    cap = capsys.readouterr()
    assert "belong to no running facility" in cap.err and "nexus recover" in cap.err
    assert "not yet carried out" in cap.out
    assert _n_orders(store) == 1
