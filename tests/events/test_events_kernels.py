"""The compiled detector kernels equal the NumPy reference forms they replace."""

import events_oracles as oracles
import numpy as np
import pytest

from nexus.dsp.filters import bandpass_sos, zero_phase
from nexus.events._kernels import half_waves
from nexus.events.common import segment_argext, segment_reduce
from nexus.events.heart import _candidates
from nexus.events.spindles import SpindleParams, _features, _spindle_columns


@pytest.mark.parametrize("fs", [50.0, 100.0, 256.0])
@pytest.mark.parametrize("n", [1, 2, 30, 399, 400, 401, 2600], ids=lambda n: f"n{n}")
def test_compiled_beat_candidates_equal_the_numpy_form(fs, n):
    rng = np.random.default_rng(int(fs) + n)
    x = rng.normal(size=(5, n)) * 30
    x[:, :: int(0.8 * fs)] += 800  # beats
    x[2, 10:40] = 0.0  # a flat stretch: ties in the running maxima
    f = zero_phase(x, bandpass_sos(5.0, min(20.0, 0.45 * fs), fs=fs, order=2))
    mask = rng.random((5, n)) > 0.1
    want = oracles.beat_candidates(f, fs, mask)
    got = _candidates(f, fs, mask)
    np.testing.assert_array_equal(got, want)
    if n >= 400:
        assert want.any()  # the beats are there: the comparison is not between two empty masks


@pytest.mark.parametrize("fs", [64.0, 100.0, 256.0])
@pytest.mark.parametrize("n", [1, 2, 29, 30, 31, 2600], ids=lambda n: f"n{n}")
def test_compiled_spindle_features_equal_the_numpy_form(fs, n):
    rng = np.random.default_rng(int(fs) + n)
    t = np.arange(n) / fs
    x = rng.normal(size=(4, n)) * 10 + 30 * np.sin(2 * np.pi * 13 * t)
    x[1] = 0.0  # flat: correlation 0, relative power against the 1e-12 floor
    p = SpindleParams()
    broad, sigma, rc, mrms = _features(x, fs, p)
    want_rc, want_rms = oracles.moving_features(broad, sigma, fs, p)
    np.testing.assert_array_equal(rc, want_rc)
    np.testing.assert_array_equal(mrms, want_rms)


@pytest.mark.parametrize("n", [1, 2, 3, 50, 4000], ids=lambda n: f"n{n}")
def test_compiled_half_waves_equal_the_numpy_form(n):
    rng = np.random.default_rng(n)
    f = np.cumsum(rng.normal(size=(6, n)), axis=1)  # random walk: runs of every length
    f[1] = -1.0  # one negative run over the whole row: no candidate
    f[2, ::2] = 0.0  # zeros count as positive
    f[3] = np.round(f[3])  # ties: the first extreme wins
    want = oracles.half_waves(f)
    got = half_waves(f)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w)
    if n == 4000:
        assert want[0].size > 50


def test_spindle_columns_equal_whole_row_segment_reductions():
    rng = np.random.default_rng(5)
    broad, sigma, rel = rng.normal(size=(3, 3, 500))
    sigma[1, 100:140] = np.round(sigma[1, 100:140])  # ties in |sigma|: the first peak wins
    row = np.array([0, 1, 1, 2])
    start = np.array([10, 90, 300, 440])
    stop = np.array([80, 160, 301, 500])  # a one-sample segment and one ending with the row
    amp, sum_sq, n_zc, sum_rel, peak = _spindle_columns(broad, sigma, rel, row, start, stop)
    np.testing.assert_array_equal(
        amp, segment_reduce(broad, row, start, stop, np.maximum) - segment_reduce(broad, row, start, stop, np.minimum)
    )
    np.testing.assert_array_equal(sum_sq, segment_reduce(sigma**2, row, start, stop, np.add))
    zc = np.concatenate([np.diff(np.signbit(sigma), axis=-1), np.zeros((3, 1), dtype=bool)], axis=-1)
    np.testing.assert_array_equal(n_zc, segment_reduce(zc.astype(np.float64), row, start, stop, np.add))
    np.testing.assert_array_equal(sum_rel, segment_reduce(rel, row, start, stop, np.add))
    np.testing.assert_array_equal(peak, segment_argext(np.abs(sigma), row, start, stop, find_max=True)[1])
