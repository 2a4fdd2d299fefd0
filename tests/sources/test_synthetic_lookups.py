"""The fleet's compiled look-ups (interval levels, stage mixture) against their NumPy forms, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic_oracles as oracle

from nexus.sources.synthetic import SyntheticFleet
from nexus.sources.synthetic.intervals import IntervalTable


def _table(rng: np.random.Generator, n_sessions: int, per_session: int) -> IntervalTable:
    """Non-overlapping intervals (some touching end to start) for all but the last session; values of both signs."""
    sess, onset, dur = [], [], []
    for s in range(n_sessions - 1):
        t = float(rng.uniform(0, 50))
        for _ in range(rng.integers(0, per_session + 1)):
            d = float(rng.choice([0.5, 3.0, rng.uniform(0.1, 40.0)]))
            sess.append(s), onset.append(t), dur.append(d)
            t += d + float(rng.choice([0.0, rng.uniform(0.0, 60.0)]))
    return IntervalTable(np.array(sess, dtype=np.int64), np.array(onset), np.array(dur),
                         rng.normal(0.0, 10.0, len(sess)), span=10_000.0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ramp", [1.0, 2.0, 5.0, 15.0, 1e-9])
def test_interval_level_is_the_numpy_form(seed, ramp):
    rng = np.random.default_rng(seed)
    table = _table(rng, 7, 12)
    assert table.keys.size
    # times inside, outside, before every interval, at onsets and ends exactly, half a ramp from them
    ends = np.concatenate([table.onset, table.onset + table.duration])
    t = np.concatenate([rng.uniform(-5, 900, 200), ends, ends - ramp / 2, ends + ramp / 2, [-1.0, 0.0]])
    for sess in (np.arange(7), np.array([6, 2, 2, 0]), np.array([3])):
        lev, val = table.level(t, sess, ramp=ramp)
        want_lev, want_val = oracle.interval_level(table, t, sess, ramp)
        np.testing.assert_array_equal(lev, want_lev)
        np.testing.assert_array_equal(val, want_val)
        np.testing.assert_array_equal(np.signbit(val), np.signbit(want_val))
    assert (lev > 0).any() and (lev < 1).any() and ((lev > 0) & (lev < 1)).any()


def test_interval_level_of_an_empty_table_is_zero():
    table = IntervalTable(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), np.zeros(0), span=100.0)
    lev, val = table.level(np.array([0.0, 5.0]), 3)
    assert lev.shape == val.shape == (3, 2) and not lev.any() and not val.any()


@pytest.mark.parametrize("seed", range(4))
def test_stage_weights_are_the_numpy_form(seed):
    rng = np.random.default_rng(seed)
    fleet = SyntheticFleet("typical_adult", seeds=range(seed, seed + 5), hours=0.5, fs=100.0, channels=("EEG C4-M1",))
    # every second of the night, 1-s frame starts and odd times, past both ends, with arousals in and out
    t = np.concatenate([np.arange(-40.0, 0.5 * 3600 + 60.0, 0.5), rng.uniform(-10, 2000, 100), [15.0, 45.0]])
    b, _ = fleet._arousals.level(t, 5)
    assert b.any()
    np.testing.assert_array_equal(fleet._weights(t), oracle.stage_weights(fleet.stages, t, b))
    sess = np.array([4, 1])
    np.testing.assert_array_equal(fleet._weights(t, sess), oracle.stage_weights(fleet.stages[sess], t, b[sess]))


def test_stage_weights_of_any_hypnogram_are_the_numpy_form():
    # the fleet's nights begin and end in wake: here every epoch's stage is drawn, the first and last epochs differ
    # (times before the night read its first epoch, after it its last, also half an epoch out where the cross-fade
    # would reach past either end) and the arousal level is any value in [0, 1]
    from nexus.core.stages import EPOCH_S
    from nexus.sources.synthetic._render import stage_weights

    rng = np.random.default_rng(11)
    stages = rng.integers(0, 5, (6, 9))
    stages[:, 0], stages[:, -1] = 2, 4
    t = np.concatenate([np.arange(-3.0, 11.0, 0.25) * EPOCH_S, rng.uniform(-100.0, 400.0, 200)])
    b = rng.uniform(0.0, 1.0, (6, t.size))
    w = np.empty((6, t.size, 5))
    stage_weights(stages, t, EPOCH_S, b, w)
    np.testing.assert_array_equal(w, oracle.stage_weights(stages, t, b))
    assert ((w > 0) & (w < 1)).any() and (w[:, :, 4] > 0.1).any()  # cross-fades and the last epoch's stage read
