"""System glitches from the loop's own measurements (SystemWatch)."""

import numpy as np

from nexus.monitor.system import SystemWatch


def _counts(dropped, late):
    return {"dropped": np.array(dropped, dtype=np.int64), "late": np.array(late, dtype=np.int64)}


def test_counters_raise_only_for_slots_whose_counter_grew():
    w = SystemWatch(3, 100.0)
    act = np.ones(3, dtype=bool)
    assert w.counters(_counts([0, 0, 0], [0, 0, 0]), act) == []
    out = w.counters(_counts([0, 50, 0], [0, 0, 7]), act)
    assert [(i.slot, i.kind) for i in out] == [(1, "queue_backlog"), (2, "late")]
    assert out[0].evidence == {"samples": 50, "seconds": 0.5, "total_samples": 50}
    assert w.counters(_counts([0, 50, 0], [0, 0, 7]), act) == []  # nothing new
    out = w.counters(_counts([0, 60, 0], [0, 0, 7]), act)
    assert [(i.slot, i.evidence["samples"]) for i in out] == [(1, 10)]


def test_a_reused_slot_counts_from_zero_and_free_slots_stay_silent():
    w = SystemWatch(2, 100.0)
    w.counters(_counts([500, 0], [0, 0]), np.ones(2, dtype=bool))
    out = w.counters(_counts([20, 30], [0, 0]), np.array([True, False]))  # slot 0 reset, then 20 more
    assert [(i.slot, i.evidence["samples"]) for i in out] == [(0, 20)]


def test_latency_over_the_limit_is_controller_late_for_every_active_slot():
    w = SystemWatch(3, 100.0, late_after_s=0.25)
    act = np.array([True, False, True])
    assert w.latency(0.25, act) == [] and w.latency(0.1, act) == []
    out = w.latency(0.4, act)
    assert [(i.slot, i.kind) for i in out] == [(0, "controller_late"), (2, "controller_late")]
    assert out[0].evidence == {"latency_s": 0.4, "threshold_s": 0.25}
