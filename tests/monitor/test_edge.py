"""The monitor's edge checks of live chunks (ChunkGate) and of vanished streams (dropout_changes)."""

import numpy as np

from nexus.monitor.edge import ChunkGate, dropout_changes

FS = 100.0


def _x(n=10, c=2, v=1.0):
    return np.full((c, n), v)


def test_a_good_stream_passes_untouched():
    g = ChunkGate(2, FS)
    for k in range(5):
        v = g.check(_x(v=k), FS, k, k * 0.1, started=k > 0)
        assert v.issues == [] and v.rejected == v.duplicate == 0 and v.in_order
        assert v.data is not None and v.data.shape == (2, 10) and v.t0 == k * 0.1


def test_wrong_layout_and_rate_are_rejected_whole():
    g = ChunkGate(2, FS)
    v = g.check(_x(c=3), FS, 0, 0.0, started=False)
    assert v.data is None and v.rejected == 10 and [i[0] for i in v.issues] == ["wrong_channels"]
    assert "3 channels, expected 2" in v.issues[0][2]
    v = g.check(_x(), 50.0, 1, 0.0, started=False)
    assert v.data is None and v.rejected == 10 and v.issues[0][0] == "fs_mismatch"
    v = g.check(np.float64(3.0), FS, 2, 0.0, started=False)  # not even an array of samples
    assert v.data is None and v.issues[0][0] == "wrong_channels"


def test_a_repeated_chunk_is_a_duplicate_and_an_old_one_is_not_a_clock_going_back():
    g = ChunkGate(2, FS)
    g.check(_x(), FS, 0, 0.0, started=False)
    g.check(_x(), FS, 2, 0.2, started=True)
    v = g.check(_x(), FS, 2, 0.2, started=True)
    assert v.data is None and v.duplicate == 10 and v.issues[0][0] == "duplicate"
    v = g.check(_x(), FS, 1, 0.1, started=True)  # late, out of order: used, no clock_skew
    assert v.data is not None and not v.in_order and v.issues == []


def test_clock_going_back_cuts_the_overlap():
    g = ChunkGate(2, FS)
    g.check(_x(), FS, 0, 0.0, started=False)
    v = g.check(np.arange(20.0).reshape(2, 10), FS, 1, 0.05, started=True)  # 5 samples overlap 0.05-0.1 s
    assert v.issues[0][0] == "clock_skew" and v.duplicate == 5
    assert v.t0 == 0.1 and v.data is not None and v.data.shape == (2, 5) and v.data[0, 0] == 5.0
    v = g.check(_x(n=3), FS, 2, 0.0, started=True)  # wholly inside what was had
    assert v.data is None and v.duplicate == 3 and v.issues[0][0] == "clock_skew"


def test_non_finite_samples_are_named_and_counted():
    g = ChunkGate(2, FS)
    x = _x()
    x[0, 2:5] = np.nan
    x[1, 0] = -np.inf
    v = g.check(x, FS, 0, 0.0, started=False)
    assert v.data is not None and [i[0] for i in v.issues] == ["bad_samples"]
    assert v.issues[0][2].startswith("4 NaN or infinite values")


def test_dropout_changes_only_for_active_slots_that_change():
    missing = np.array([0, 250, 250, 0, 300])
    active = np.array([True, True, True, True, False])
    in_drop = np.array([False, False, True, True, False])
    gone, back = dropout_changes(missing, active, in_drop, 200)
    assert gone.tolist() == [1] and back.tolist() == [3]
