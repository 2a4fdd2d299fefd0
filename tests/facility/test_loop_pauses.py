"""What would pause the live loop: full garbage collections of the set-up objects, a log line per bed."""

import gc
import re
import time

from nexus.core.clock import ManualClock
from nexus.facility.heap import settle_heap
from nexus.facility.supervisor import Supervisor
from nexus.sources.synthetic.fleet import SyntheticFleet


def test_settle_heap_freezes_what_lives_and_collects_cycles():
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle nobody holds
    del a, b
    gc.unfreeze()
    try:
        settle_heap()
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the interpreter's and the package's objects
        assert not any(type(o).__name__ == "Node" for o in gc.get_objects())  # the cycle was collected first
    finally:
        gc.unfreeze()


def test_settle_heap_returns_and_logs_the_seconds_it_took_and_what_it_froze(caplog):
    gc.unfreeze()
    try:
        with caplog.at_level("DEBUG", logger="nexus"):
            t0 = time.perf_counter()
            spent = settle_heap()
            wall = time.perf_counter() - t0
        assert isinstance(spent, float) and 0.0 < spent <= wall
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("heap settled")]
        assert len(lines) == 1
        got = re.fullmatch(r"heap settled in (\d+\.\d\d) s: (\d+) objects frozen out of the collector's way", lines[0])
        assert got and got[1] == f"{spent:.2f}"
        assert abs(int(got[2]) - gc.get_freeze_count()) < 100  # (a few frozen objects are freed since)
    finally:
        gc.unfreeze()


def test_supervisor_run_settles_the_heap_before_its_first_tick():
    gc.unfreeze()
    try:
        fleet = SyntheticFleet("typical_adult", seeds=range(2), hours=0.01, fs=100.0, channels=("EEG C4-M1",))
        sup = Supervisor(ManualClock(), analyzers=[])
        sup.add_fleet(fleet, ["bed-0", "bed-1"])
        seen = []
        sup.run(0.3, tick_s=0.1, on_tick=lambda rep: seen.append(gc.get_freeze_count()))
        sup.close()
        assert seen and min(seen) > 1000  # frozen from the first tick on
    finally:
        gc.unfreeze()


def test_a_late_loop_is_one_log_line_for_all_its_beds_and_one_glitch_per_bed(caplog):
    from nexus.monitor.system import SystemIssue

    fleet = SyntheticFleet("typical_adult", seeds=range(5), hours=0.01, fs=100.0, channels=("EEG C4-M1",))
    sup = Supervisor(ManualClock(), analyzers=[])
    names = [f"bed-{k}" for k in range(5)]
    sup.add_fleet(fleet, names)
    lane = sup.lanes[0]
    issues = [SystemIssue(k, "controller_late", "The loop's results came out late.", {}) for k in range(5)]
    with caplog.at_level("WARNING", logger="nexus"):
        sup._watch_system(lane, issues)
    lines = [r.getMessage() for r in caplog.records if "controller_late" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("5 beds (bed-0 … bed-4)")
    assert sorted(g.session for g in sup.glitches if g.kind == "controller_late") == names  # each bed's record
    caplog.clear()
    with caplog.at_level("WARNING", logger="nexus"):
        sup._watch_system(lane, issues[:1])  # within the minute: held back, counted, no line
    assert not [r for r in caplog.records if "controller_late" in r.getMessage()]
    sup.close()
