"""The live stager's running scaling pinned by hand: the trailing smoothing's weighted sums, quantiles against
numpy's, a history thinned to every 2^k-th epoch from the first, the rotating refresh of the shards' rows, and the
own share of a reset session counted from its reset."""

import numpy as np
import pytest

from nexus.staging.live.scaling import RunningScaling, _quantiles

NAMES = ["eeg_std"]
PRIOR = {"eeg_std_c7": [-1.0, 0.0, 1.0], "eeg_std_p2": [-1.0, 0.0, 1.0]}


def _close(sc, n_epochs, values, bad=None):
    """Close epoch ``n_epochs`` with one value per session (raw and both smoothed columns)."""
    v = np.asarray(values, dtype=float).reshape(-1, 1, 1) * np.ones((1, 2, 1))
    sc.close_epoch(v[:, 0], np.zeros(len(v), bool) if bad is None else np.asarray(bad), v, n_epochs)


def test_history_sums_weigh_the_seven_epochs_before_by_7_8_down_to_1_8_and_skip_bad_ones():
    sc = RunningScaling(2, NAMES, {}, 0.0)
    for e, value in enumerate([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], start=1):  # the first falls out of the 7
        _close(sc, e, [value, value], bad=[False, value == 6.0])  # session 1: epoch 6 is an artefact
    num, den, p_num, p_den = (a[:, 0] for a in sc.hist_sums)
    w = np.arange(1, 8) / 8.0  # oldest (epoch 2) 1/8 ... newest (epoch 8) 7/8
    x = np.arange(2.0, 9.0)
    np.testing.assert_allclose(num, [w @ x, w @ x - w[4] * 6.0])
    np.testing.assert_allclose(den, [w.sum(), w.sum() - w[4]])
    np.testing.assert_allclose(p_num, [6.0 + 7.0 + 8.0, 7.0 + 8.0])
    np.testing.assert_allclose(p_den, [3.0, 2.0])


def test_quantiles_are_numpys_linear_ones_with_nan_skipped():
    rng = np.random.default_rng(3)
    h = rng.normal(0, 5, (6, 40, 2, 3)).astype(np.float32)
    counts = [0, 1, 2, 3, 17, 40]  # finite values per session, the rest NaN
    for s, c in enumerate(counts):
        h[s, c:] = np.nan
    got = _quantiles(h)  # (s, 2, 3, 3)
    for s, c in enumerate(counts):
        if c == 0:
            assert np.isnan(got[s]).all()
            continue
        ref = np.quantile(h[s, :c].astype(np.float64), [0.05, 0.5, 0.95], axis=0)  # (3, 2, 3)
        np.testing.assert_allclose(got[s], np.moveaxis(ref, 0, -1), rtol=1e-12)


def test_one_epoch_already_scales_by_itself():
    sc = RunningScaling(1, NAMES, {}, 0.0)
    _close(sc, 1, [4.5])
    centre, spread = sc.scaling()
    np.testing.assert_array_equal(centre, np.full((1, 2, 1), 4.5))
    np.testing.assert_array_equal(spread, np.ones((1, 2, 1)))  # no spread yet: 1, not 0


def test_the_history_keeps_every_power_of_two_th_epoch_from_the_first():
    """300 epochs valued by their number: the 128 kept fill twice (at 128 and 256), so the history holds epochs
    1, 5, 9, ..., 297 (stride 4) and the scaling is their quantiles (no prior: the session's own)."""
    sc = RunningScaling(1, NAMES, {}, 0.0)
    for e in range(1, 301):
        _close(sc, e, [float(e)])
    kept = np.arange(1.0, 301.0, 4.0)
    q = np.quantile(kept, [0.05, 0.5, 0.95])
    centre, spread = sc.scaling()
    assert centre[0, 0, 0] == pytest.approx(q[1], rel=1e-12)
    assert spread[0, 0, 0] == pytest.approx(q[2] - q[0], rel=1e-12)


def test_after_the_first_20_epochs_each_row_is_refreshed_every_5th_epoch_on_its_own_turn():
    """Rows of a shard starting at stager row 3: row k (stager row k + 3) takes its new quantiles at the epochs n
    with (k + 3) % 5 == n % 5, and keeps them in between; before epoch 21 every row is refreshed each epoch."""
    sc = RunningScaling(5, NAMES, {}, 0.0, row0=3)
    last = None
    for e in range(1, 31):
        _close(sc, e, np.full(5, float(e)))
        centre = sc.scaling()[0][:, 0, 0].copy()
        if last is not None:
            changed = np.flatnonzero(centre != last).tolist()
            expected = list(range(5)) if e <= 20 else [k for k in range(5) if (k + 3) % 5 == e % 5]
            assert changed == expected, e
        last = centre


def test_a_reset_session_counts_its_own_epochs_from_the_reset():
    """Prior worth 10 epochs centred on 0; session 0 is reset after 30 epochs and sees 5 epochs at 6: its centre
    is 0 + 5 / (10 + 5) * (6 - 0) = 2. Session 1, never reset, weighs its 35 epochs, with the quantiles of its
    last refresh (epoch 31: thirty epochs at 20 and one at 6, median 20)."""
    sc = RunningScaling(2, NAMES, PRIOR, prior_epochs=10.0)
    for e in range(1, 31):
        _close(sc, e, [20.0, 20.0])
    sc.reset(np.array([0]))
    assert sc.hist_sums[1][0, 0] == 0.0 and sc.hist_sums[1][1, 0] > 0.0  # its smoothing history is gone
    for e in range(31, 36):
        _close(sc, e, [6.0, 6.0])
    centre = sc.scaling()[0][:, 0, 0]
    assert centre[0] == pytest.approx(5 / 15 * 6.0)
    assert centre[1] == pytest.approx(35 / 45 * 20.0)
