"""The monitor's window sums against plain NumPy over the same samples (the compiled pass is the code under test)."""

import numpy as np
import pytest

from nexus.monitor.features import WindowAccumulator

FS = 256.0


def _reference(x, prev_last):
    """Plain NumPy statistics of one window ``x`` (rows, channels, samples) with non-finite samples as 0."""
    fin = np.isfinite(x)
    y = np.where(fin, x, 0.0)
    d = np.abs(np.diff(np.concatenate([prev_last[..., None], y], axis=-1), axis=-1))
    if np.isnan(prev_last).all():
        d = d[..., 1:]
    n = y.shape[-1]
    k = np.arange(n) / FS
    return {
        "mean": y.mean(-1), "std": y.std(-1), "mn": y.min(-1), "mx": y.max(-1),
        "at_mn": (y == y.min(-1, keepdims=True)).sum(-1), "at_mx": (y == y.max(-1, keepdims=True)).sum(-1),
        "nonfinite": (~fin).sum(-1), "maxdiff": d.max(-1), "meandiff": d.sum(-1) / n,
        "hum50": 2 * np.abs((y * np.exp(-2j * np.pi * 50.0 * k)).sum(-1)) / n,
    }


@pytest.mark.parametrize("cuts", [[256], [25] * 10 + [6], [1, 3, 100, 152]])
def test_window_statistics_equal_numpy_over_the_window(cuts):
    rng = np.random.default_rng(4)
    rows, chans = 5, 3
    acc = WindowAccumulator(rows, chans, FS, 256, (50.0, 60.0), np.arange(0))
    first = rng.normal(0, 20, (rows, chans, 256))
    x = rng.normal(0, 20, (rows, chans, 256)).round(1)  # rounded: ties at the extremes happen
    x[1, 2, 40:43] = np.nan
    x[2, 0, 100] = np.inf
    x[3, 1, :] = 0.0
    x[4, 0, 10:20] = x[4, 0].max() + 5.0  # a rail: ten samples at the maximum
    every = np.arange(rows)
    for blk in (first, x):
        a = 0
        for c in cuts:
            acc.add(blk[..., a : a + c], every)
            a += c
        assert a == 256
        f = acc.take(every, np.full(rows, 1.0))
    ref = _reference(x, first[..., -1])
    for key in ("mean", "std", "mn", "mx", "at_mn", "at_mx", "nonfinite", "maxdiff", "meandiff"):
        np.testing.assert_allclose(getattr(f, key), ref[key], rtol=1e-9, atol=1e-9, err_msg=key)
    np.testing.assert_allclose(f.hum[..., 0], ref["hum50"], rtol=1e-9, atol=1e-9)
    assert f.at_mx[4, 0] == 10 and f.nonfinite[1, 2] == 3 and f.zero_frac[3, 1] == 1.0


def test_first_window_has_no_difference_before_its_first_sample():
    acc = WindowAccumulator(1, 1, FS, 4, (), np.arange(0))
    acc.add(np.array([[[100.0, 101.0]]]), np.arange(1))
    acc.add(np.array([[[103.0, 103.0]]]), np.arange(1))
    f = acc.take(np.arange(1), np.array([1.0]))
    assert f.maxdiff[0, 0] == 2.0 and f.meandiff[0, 0] == pytest.approx(3.0 / 4)


def test_slots_that_start_together_close_their_windows_on_different_ticks():
    rows = 20
    acc = WindowAccumulator(rows, 1, FS, 256, (), np.arange(0))
    every = np.arange(rows)
    closed_at = np.full(rows, -1)
    for tick in range(1, 40):  # 0.1-s ticks
        acc.add(np.ones((rows, 1, 26)), every)
        ready = acc.ready(every)
        if ready.size:
            closed_at[ready[closed_at[ready] < 0]] = tick
            acc.take(ready, np.full(ready.size, tick * 0.1))
    assert np.unique(closed_at).size == 10  # ten phases, two slots each
    assert closed_at.min() == 10 and closed_at.max() <= 20  # the first window: 1 to 2 s
    acc.reset(np.array([3]))  # a new session in slot 3 is staggered again
    assert acc.first_extra[3] == 3 * (256 // 10)
