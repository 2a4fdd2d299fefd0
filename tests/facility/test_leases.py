"""Leases of the multi-host floor on SQLite and PostgreSQL: claims, heartbeats, takeover, no bed held twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from nexus.core.errors import StateError
from nexus.core.lifecycle import SessionState
from nexus.facility.leases import (
    claim,
    db_now,
    fair_share,
    floor_status,
    heartbeat,
    live_workers,
    open_floor,
    register_worker,
    release,
)
from nexus.facility.orders import submit_orders
from nexus.facility.recovery import recover
from nexus.facility.simulate import plan_beds
from nexus.store.models import BedLease, ExtractionOrder, FacilityRun, NightSession

LEASE = 2.5


def _floor(store, n, run="f1"):
    return open_floor(store, plan_beds(n, seed=3, hours=0.5, run_id=run), hours=0.5, fs=100.0)


def _age(store, worker, seconds):
    """Move a worker's last heartbeat ``seconds`` into the past (as if it had stopped beating then)."""
    with store.session() as s:
        s.execute(update(FacilityRun).where(FacilityRun.id == worker)
                  .values(heartbeat_at=db_now(s) - timedelta(seconds=seconds)))


def test_open_floor_writes_prepared_sessions_with_free_leases_and_refuses_a_second_opening(store):
    names = _floor(store, 4)
    with store.session() as s:
        rows = {r.id: r for r in s.scalars(select(NightSession).where(NightSession.id.in_(names)))}
        leases = {r.session_id: r for r in s.scalars(select(BedLease))}
    assert set(rows) == set(leases) == set(names)
    assert all(r.state == SessionState.PREPARED and r.started_at is None for r in rows.values())
    assert all(le.worker_id is None and le.generation == 0 and le.plan["hours"] == 0.5 for le in leases.values())
    with pytest.raises(StateError, match="already exist"):
        _floor(store, 2)


def test_fair_share():
    assert fair_share(9, 3, 100) == 3
    assert fair_share(10, 3, 100) == 4
    assert fair_share(10, 3, 2) == 2
    assert fair_share(5, 0, 100) == 5


def test_claims_start_the_sessions_and_two_workers_split_the_floor_without_sharing_a_bed(store, tmp_path):
    names = _floor(store, 5)
    for w in ("w-a", "w-b"):
        register_worker(store, w, tmp_path / w)
    a = claim(store, "w-a", tmp_path / "w-a", want=3, lease_s=LEASE)
    b = claim(store, "w-b", tmp_path / "w-b", want=5, lease_s=LEASE)
    got_a, got_b = {c.session for c in a}, {c.session for c in b}
    assert len(got_a) == 3
    assert got_b == set(names) - got_a  # the rest, never one of a's
    assert all(c.previous is None and c.generation == 1 and c.started_at is not None for c in a + b)
    assert all(c.journals == [str((tmp_path / "w-a").absolute())] for c in a)
    with store.session() as s:
        rows = list(s.scalars(select(NightSession).where(NightSession.id.in_(names))))
    assert all(r.state == SessionState.RUNNING for r in rows)
    assert {r.id: r.facility_run_id for r in rows} == {**dict.fromkeys(got_a, "w-a"), **dict.fromkeys(got_b, "w-b")}
    beat = heartbeat(store, "w-a", lease_s=LEASE)
    assert beat.alive
    assert beat.held == dict.fromkeys(got_a, 1)
    assert beat.workers == 2
    assert beat.open_beds == 5
    assert claim(store, "w-a", tmp_path / "w-a", want=5, lease_s=LEASE) == []  # nothing free, nobody dead


def test_concurrent_claims_never_give_one_bed_to_two_workers(store, tmp_path):
    names = _floor(store, 12)
    workers = [f"w-{k}" for k in range(4)]
    for w in workers:
        register_worker(store, w, tmp_path / w)
    got: dict[str, list[str]] = {}
    start = threading.Barrier(len(workers))

    def grab(w):
        start.wait()
        got[w] = [c.session for c in claim(store, w, tmp_path / w, want=12, lease_s=LEASE)]

    threads = [threading.Thread(target=grab, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    taken = [n for w in workers for n in got[w]]
    assert sorted(taken) == sorted(names)  # every bed once, none twice
    with store.session() as s:
        owners = dict(s.execute(select(BedLease.session_id, BedLease.worker_id)).all())
        gens = set(s.scalars(select(BedLease.generation)))
    assert all(owners[n] == w for w in workers for n in got[w])
    assert gens == {1}


def test_a_dead_workers_beds_are_taken_over_and_it_cannot_come_back_to_them(store, tmp_path):
    _floor(store, 4)
    for w in ("w-a", "w-b"):
        register_worker(store, w, tmp_path / w)
    mine = {c.session for c in claim(store, "w-a", tmp_path / "w-a", want=4, lease_s=LEASE)}
    # a live worker's beds are not taken
    assert claim(store, "w-b", tmp_path / "w-b", want=4, lease_s=LEASE) == []
    _age(store, "w-a", LEASE + 0.5)
    assert "w-a" not in live_workers_now(store)
    taken = claim(store, "w-b", tmp_path / "w-b", want=4, lease_s=LEASE)
    assert {c.session for c in taken} == mine
    assert all(c.previous == "w-a" and c.generation == 2 and c.lapsed_at is not None for c in taken)
    # the journals of both parts, in order
    assert all(c.journals == [str((tmp_path / w).absolute()) for w in ("w-a", "w-b")] for c in taken)
    with store.session() as s:
        run = s.get(FacilityRun, "w-a")
        takeovers = set(s.scalars(select(BedLease.takeovers)))
    assert run.ended_at is not None
    assert "taken over by w-b" in run.end_reason
    assert takeovers == {1}
    late = heartbeat(store, "w-a", lease_s=LEASE)  # the stalled worker wakes up: it must stop its beds
    assert not late.alive
    assert heartbeat(store, "w-b", lease_s=LEASE).held == dict.fromkeys(mine, 2)


def live_workers_now(store):
    with store.session() as s:
        return live_workers(s, db_now(s), LEASE)


def test_released_beds_go_to_the_next_claim_and_orders_follow_their_bed(store, tmp_path):
    names = _floor(store, 2)
    for w in ("w-a", "w-b"):
        register_worker(store, w, tmp_path / w)
    claim(store, "w-a", tmp_path / "w-a", want=2, lease_s=LEASE)
    [oid] = submit_orders(store, names[0], "gentle")  # ordered while w-a holds the bed
    assert release(store, "w-a") == 2
    taken = claim(store, "w-b", tmp_path / "w-b", want=2, lease_s=LEASE)
    assert {c.session for c in taken} == set(names)
    assert all(c.previous is None for c in taken)  # handed over, not taken from a dead worker
    heartbeat(store, "w-b", lease_s=LEASE)
    with store.session() as s:
        order = s.get(ExtractionOrder, oid)
    assert order.facility_run_id == "w-b"
    assert order.status == "pending"


def test_recovery_leaves_floor_beds_to_live_workers(store, tmp_path):
    _floor(store, 2)
    for w in ("w-a", "w-b"):
        register_worker(store, w, tmp_path / w)
    claim(store, "w-a", tmp_path / "w-a", want=2, lease_s=LEASE)
    with store.session() as s:  # w-a's process is gone (a pid that cannot exist)
        s.execute(update(FacilityRun).where(FacilityRun.id == "w-a").values(pid=2**22 + 7))
    _age(store, "w-a", LEASE + 1)
    rep = recover(store, merge=False)
    assert rep.sessions == []  # w-b is alive and takes them over
    st = floor_status(store, lease_s=LEASE)
    assert [w["alive"] for w in st["workers"] if w["worker"] == "w-b"] == [True]
    assert {b["state"] for b in st["beds"]} == {"running"}
