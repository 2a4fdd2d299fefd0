"""One ``nexus worker`` in this process: beds claimed and run, extraction, fencing, a night merged from its parts."""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, update

from nexus.core.lifecycle import SessionState
from nexus.core.settings import load_settings
from nexus.facility.leases import Beat, claim, db_now, open_floor, register_worker
from nexus.facility.orders import submit_orders
from nexus.facility.simulate import plan_beds
from nexus.facility.worker import WORKER_CHANNELS, Worker, handover_gaps, write_night
from nexus.formats.edf import read_edf
from nexus.store import open_store, upgrade
from nexus.store.models import BedLease, DecisionRow, FacilityRun, HypnogramRow, NightSession
from nexus.store.recording import RecordingJournal

pytestmark = pytest.mark.timeout(600)

UNREACHABLE = "postgresql+psycopg://nobody:x@127.0.0.1:9/nexus"  # nothing listens on port 9


@pytest.fixture
def store(tmp_path):
    st = open_store(load_settings(database_url=f"sqlite:///{tmp_path / 'db' / 'n.db'}"), create=True, check=False)
    upgrade(st.engine)
    yield st
    st.close()


def _part(folder, name, t0, seconds, stages, fs=100.0):
    j = RecordingJournal(folder)
    j.add_session(name, WORKER_CHANNELS, fs)
    n = round(seconds * fs)
    x = np.tile(np.arange(n, dtype=float), (1, len(WORKER_CHANNELS), 1)) + 1.0
    j.write_signals([name], [t0], x)
    j.write_records([{"session": name, "kind": "stage", "onset": e * 30.0, "duration": 30.0, "stage": st,
                      "probs": [0.1, 0.1, 0.6, 0.1, 0.1]} for e, st in stages])
    j.write_records([{"session": name, "kind": "decision", "onset": t0 + 1.0, "duration": 0.0,
                      "description": "clas_pulse", "command": {"kind": "click"}, "inputs": {}, "reason": "up-state"}])
    j.close()
    return str(folder.absolute())


def test_a_night_in_two_parts_is_written_once_by_its_holder_with_the_gap_marked(store, tmp_path):
    [name] = open_floor(store, plan_beds(1, seed=5, hours=0.5, run_id="m1"), hours=0.5, fs=100.0)
    for w in ("w-a", "w-b"):
        register_worker(store, w, tmp_path / w)
    [c1] = claim(store, "w-a", tmp_path / "w-a", want=1)
    a = _part(tmp_path / "w-a", name, 0.0, 10.0, [(0, 2)])
    with store.session() as s:
        s.execute(update(FacilityRun).where(FacilityRun.id == "w-a")
                  .values(heartbeat_at=db_now(s) - timedelta(seconds=10)))
    [c2] = claim(store, "w-b", tmp_path / "w-b", want=1)
    b = _part(tmp_path / "w-b", name, 12.0, 8.0, [(1, 3)])
    assert c2.journals == [a, b]
    assert handover_gaps(c2.journals, name) == [{"last_s": 10.0, "first_s": 12.0, "lost_s": 2.0}]
    # the worker that lost the bed writes nothing
    assert write_night(store, name, [a], "night over", worker="w-a", generation=c1.generation) is None
    with store.session() as s:
        assert s.get(NightSession, name).state == SessionState.RUNNING
    path = write_night(store, name, c2.journals, "night over", worker="w-b", generation=c2.generation)
    assert path is not None
    rec = read_edf(path)
    assert rec.duration == pytest.approx(20.0)
    gaps = [an for an in rec.annotations if an.text.startswith("gap")]
    assert [(g.onset, g.duration) for g in gaps] == [(pytest.approx(10.0), pytest.approx(2.0))]
    x = rec.signals[0].data
    assert x[999] == pytest.approx(1000.0, abs=0.1)  # the first part's last sample
    assert x[1200] == pytest.approx(1.0, abs=0.1)  # the second part's first sample
    with store.session() as s:
        row = s.get(NightSession, name)
        hyp = s.scalars(select(HypnogramRow.stages).where(HypnogramRow.session_id == name)).one()
        decisions = s.scalars(select(DecisionRow.t_s).where(DecisionRow.session_id == name)).all()
    assert row.state == SessionState.ENDED
    assert row.end_reason == "night over"
    assert row.recording_path == str(path)
    assert row.summary["parts"] == 0  # no claim records in these hand-made parts
    assert row.summary["takeovers"] == 1
    assert hyp == [2, 3]
    assert sorted(decisions) == [1.0, 13.0]


def test_a_worker_runs_its_beds_extracts_them_from_an_order_and_silences_a_bed_it_lost(store, tmp_path):
    names = open_floor(store, plan_beds(3, seed=9, hours=0.5, run_id="r1", natural_share=0), hours=0.5, fs=100.0)
    w = Worker(store, data_dir=tmp_path / "data", capacity=3, lease_s=2.5, heartbeat_s=0.25)
    w.start()
    try:
        deadline = time.monotonic() + 60
        while len(w.held) < 3 and time.monotonic() < deadline:  # claims arrive through the heartbeat thread
            w._apply_inbox()
            w.sup.step()
            time.sleep(0.05)
        assert set(w.held) == set(names)
        t_end = time.monotonic() + 3.0
        while time.monotonic() < t_end:
            w._apply_inbox()
            w.sup.step()
            time.sleep(0.05)
        counts = {n: w.sup.session_counts(n)["received"] for n in names}
        assert all(v >= 150 for v in counts.values()), counts  # about 3 s at 100 Hz each
        # an extraction order reaches the worker through the database
        submit_orders(store, names[0], "immediate")
        deadline = time.monotonic() + 30
        while names[0] in w.held and time.monotonic() < deadline:
            w._apply_inbox()
            w.sup.step()
            w._end_finished()
            time.sleep(0.05)
        assert names[0] not in w.held
        with store.session() as s:
            assert s.get(NightSession, names[0]).state == SessionState.ENDED
        # another worker took names[1] (its generation moved on): the bed is silenced here at the next beat
        with store.session() as s:
            s.execute(update(BedLease).where(BedLease.session_id == names[1])
                      .values(worker_id="w-other", generation=BedLease.generation + 1))
        sink = w.sup.sessions[names[1]].lane.analyzer("dreamscape").bank.sinks[w.sup.sessions[names[1]].slot]
        w._on_beat(Beat(alive=True, held={names[2]: w.held[names[2]].claim.generation}))
        assert names[1] not in w.held
        assert w.sup.sessions[names[1]].state == "ended"
        assert sink is not None
        assert sink.safe
        # the database goes away: the beds run on for the lease time, then every bed is silenced before anyone
        # may take it over
        good, w.store = w.store, open_store(load_settings(database_url=UNREACHABLE), check=False)
        lost_at = time.monotonic()
        while w.held and time.monotonic() - lost_at < 30:
            w._fence_if_stale()
            w.sup.step()
            time.sleep(0.05)
        assert w.held == {}
        assert time.monotonic() - lost_at > 2.5 - 0.5 - 0.2  # not before the lease could have run out
        assert w.report.beat_errors >= 1
        assert w.report.dropped == 2
        w.store.close()
        w.store = good
        # taken for dead: it holds nothing and joins the floor again under a new id
        first = w.id
        w._on_beat(Beat(alive=False))
        assert w.id != first
        assert w.report.rejoined == [w.id]
        assert not w._stop.is_set()
        assert w._desk.run_id == w.id  # orders of the beds it claims from now on reach it
    finally:
        w.shutdown("test over")
    with store.session() as s:
        runs = {r.id: r for r in s.scalars(select(FacilityRun).where(FacilityRun.id.in_([first, w.id])))}
        held = s.scalar(select(BedLease.worker_id).where(BedLease.session_id == names[2]))
    assert runs[w.id].ended_at is not None
    assert runs[w.id].end_reason == "test over"
    assert held == first  # fenced, not handed back: it is taken over when the lease has run out
