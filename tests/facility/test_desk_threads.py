"""The order and consent desks of the live loop read the database on their own threads.

``nexus run`` builds both desks with ``background=True``: a lane step then only applies what the desk's
reader thread last read (at 500 beds the consent read took a tick 4-7 ms once a second). Each order is
carried out once even when the thread reads it again before its write-back; a consent read that began
before one already applied is never applied (it would undo a withdrawal).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from sqlalchemy import event

from nexus.core.clock import ManualClock
from nexus.facility.consent_desk import ConsentDesk
from nexus.facility.orders import OrderDesk, order_rows, submit_orders, wait_orders
from nexus.facility.service import FacilityService
from nexus.guard.policy import SYSTEM
from nexus.store.clients import add_client
from nexus.store.clients import set_consent as store_consent
from nexus.store.models import FacilityRun, NightSession


def _statements(store, tables: tuple[str, ...]) -> list[tuple[int, str]]:
    """(thread id, statement) of every statement on ``tables`` from now on."""
    seen: list[tuple[int, str]] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _record(conn, cursor, statement, *args):
        if any(t in statement for t in tables):
            seen.append((threading.get_ident(), statement))

    return seen


def _until(cond, step, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        step()


def test_orders_are_read_off_the_loop_thread_and_each_carried_out_once(store, order_beds):
    names = ["bed-0", "bed-1"]
    with store.session() as s:
        cid = add_client(s, "c-orders").id
        for n in names:
            s.add(NightSession(id=n, client_id=cid, state="running"))
    sup, _ = order_beds(store, names, "run1")
    desk = OrderDesk(store, sup, "run1", poll_s=0.005, background=True)  # reads every 5 ms: again and again
    sup.between_steps.append(desk.poll)
    extracted: Counter[str] = Counter()
    real_extract = sup.extract

    def extract(which, mode):
        extracted.update(which)
        return real_extract(which, mode)

    sup.extract = extract
    seen = _statements(store, ("extraction_orders", "facility_runs"))
    loop = threading.get_ident()
    try:
        sup.run(20.0, tick_s=1.0)
        ids = submit_orders(store, None, "immediate")
        late = desk._read()  # a read of the pending orders that reaches the loop after they were carried out
        before = len(seen)
        _until(lambda: desk.applied == 2, lambda: sup.run(0.25, tick_s=0.25))
        desk.reader._result[:] = [late]
        assert desk.poll() == 0
        sup.run(10.0, tick_s=1.0)  # the 5-s wake ramp ends, the sessions end: their write-back is handed over
        assert not [st for tid, st in seen[before:] if tid == loop]  # the steps asked the database nothing
        _until(lambda: wait_orders(store, ids, timeout_s=0.05, until="done")[1], lambda: sup.run(0.25, tick_s=0.25))
    finally:
        desk.close()
        sup.close()
    assert desk.reader is not None and desk.reader.reads > 3
    assert extracted == {"bed-0": 1, "bed-1": 1}  # read several times while pending, carried out once
    rows = order_rows(store, ids)
    assert all(r["status"] == "done" and r["safe_at"] and r["done_at"] for r in rows)
    with store.session() as s:
        assert s.get(FacilityRun, "run1").heartbeat_at is not None  # the thread beats too
        assert {s.get(NightSession, n).end_reason for n in names} == {"extracted (immediate wake)"}


def test_consent_is_read_off_the_loop_thread_and_an_older_read_never_undoes_a_newer_one(store, tmp_path):
    service = FacilityService(store, clients=4, clock=ManualClock(), data_dir=tmp_path, events=False, run_id="c")
    service.start()
    service.sup.between_steps.remove(service.consent.poll)  # this test's desk follows the beds instead
    bed = next(b for b in service.beds() if not b["natural"] and "audio" in service._by_session[b["session"]]
               .plan.scopes)
    sid, cid = bed["session"], bed["client_id"]
    desk = ConsentDesk(store, service.sup, [sid], poll_s=0.01, background=True)
    service.sup.between_steps.append(desk.poll)
    loop = service.sup.lanes[0].analyzer("dreamscape")
    slot = service.sup.sessions[sid].slot
    seen = _statements(store, ("clients",))
    me = threading.get_ident()
    try:
        service.advance(20.0)
        old = desk._read()  # a read that began before the change and came late (a slow reader thread)
        store_consent(store, SYSTEM, cid, revoke=["audio"])

        def tick() -> None:
            service.advance(0.25)
            desk.kick()

        before = len(seen)
        _until(lambda: "audio" not in loop.guard.scopes(slot), tick)
        assert not [st for tid, st in seen[before:] if tid == me]  # the steps read no consent themselves
        assert desk._apply(*old) == 0  # older news: not applied
        assert "audio" not in loop.guard.scopes(slot)
        assert desk.applied == 1
    finally:
        desk.close()
        service.stop()
