"""The compiled detector kernels equal the NumPy reference forms they replace."""

import events_oracles as oracles
import numpy as np
import pytest
from scipy.ndimage import maximum_filter1d

from nexus.dsp.filters import bandpass_sos, zero_phase
from nexus.dsp.moving import runs, window_samples
from nexus.events import arousals, movement, slow_waves, spindles
from nexus.events._kernels import half_waves, peaks_at, spindle_candidates
from nexus.events.common import epochs_to_samples, segment_argext, segment_reduce, stage_mask
from nexus.events.heart import _candidates
from nexus.events.spindles import SpindleParams, _features


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


@pytest.mark.parametrize(("h2", "small_found"), [(1.6, True), (1.7, False)], ids=["ratio-2.56", "ratio-2.47"])
def test_a_beat_candidate_stands_2_5_times_above_its_4_s_mean(h2, small_found):
    # at 100 Hz: steps every 40 samples, heights alternating 10 and 10 sqrt(h2) µV; a step of height H gives one
    # derivative sample (H fs)^2, so an envelope plateau of (H fs)^2 / 12 (0.12 s); any 4-s window (400 samples)
    # holds 5 steps of each height, so the floor's mean is 5 (100 + 100 h2) fs^2 / 400. The smaller step stands at
    # (400 / 60) / (1 + h2) times that mean: 2.56 for h2 = 1.6, 2.47 for 1.7; the larger one at 4.1 or 4.2
    fs, n = 100.0, 4000
    steps = np.arange(20, n, 40)
    small = np.arange(steps.size) % 2 == 0
    d = np.zeros(n)
    d[steps] = 10.0 * np.where(small, 1.0, np.sqrt(h2)) * np.where(np.arange(steps.size) % 4 < 2, 1.0, -1.0)
    got = _candidates(np.cumsum(d)[None], fs, np.ones((1, n), dtype=bool))[0]
    inner = (steps > 600) & (steps < n - 600)  # whole 4-s windows
    has = np.array([got[s - 8:s + 8].any() for s in steps])
    assert has[inner & ~small].all()
    assert (has[inner & small] == small_found).all()


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
    amp, sum_sq, n_zc, sum_rel, peak = oracles._spindle_columns(broad, sigma, rel, row, start, stop)
    np.testing.assert_array_equal(
        amp, segment_reduce(broad, row, start, stop, np.maximum) - segment_reduce(broad, row, start, stop, np.minimum)
    )
    np.testing.assert_array_equal(sum_sq, segment_reduce(sigma**2, row, start, stop, np.add))
    zc = np.concatenate([np.diff(np.signbit(sigma), axis=-1), np.zeros((3, 1), dtype=bool)], axis=-1)
    np.testing.assert_array_equal(n_zc, segment_reduce(zc.astype(np.float64), row, start, stop, np.add))
    np.testing.assert_array_equal(sum_rel, segment_reduce(rel, row, start, stop, np.add))
    np.testing.assert_array_equal(peak, segment_argext(np.abs(sigma), row, start, stop, find_max=True)[1])


@pytest.mark.parametrize("fs", [64.0, 100.0, 256.0])
@pytest.mark.parametrize("n", [1, 2, 12, 13, 14, 500, 3000], ids=lambda n: f"n{n}")
@pytest.mark.parametrize("min_criteria", [1, 2, 3])
def test_compiled_spindle_candidates_equal_the_numpy_form(fs, n, min_criteria):
    rng = np.random.default_rng(int(fs) + n + min_criteria)
    p = SpindleParams(min_criteria=min_criteria)
    relpow = rng.choice([0.1, 0.2, 0.3], size=(3, n))  # values on the thresholds: >= is tested
    corr = rng.choice([0.5, 0.65, 0.8], size=(3, n))
    mrms = rng.uniform(0, 10, size=(3, n))
    thr = np.array([5.0, np.inf, 2.0])  # a row with no threshold (nothing masked in): never passes
    mask = rng.random((3, n)) > 0.2
    want = oracles.spindle_candidates(relpow, corr, mrms, thr, mask, fs, p)
    got = np.empty((3, n), dtype=bool)
    spindle_candidates(relpow, corr, mrms, thr, mask, p.rel_pow, p.corr, window_samples(0.1, fs),
                       min_criteria - 1, got)
    np.testing.assert_array_equal(got, want)
    if n >= 500:
        assert want.any() and (min_criteria == 1 or not want.all())


@pytest.mark.parametrize("n", [0, 1, 7, 5000], ids=lambda n: f"n{n}")
def test_compiled_rms_histogram_equals_the_numpy_form(n):
    rng = np.random.default_rng(n)
    v = np.exp(rng.uniform(np.log(1e-3), np.log(1e4), size=(3, n)))  # below, inside and above the bins
    v[0, : n // 2] = spindles._EDGES[rng.integers(0, spindles._EDGES.size, n // 2)]  # exactly on edges
    mask = rng.random((3, n)) > 0.3
    want = oracles.rms_histogram(v, mask, spindles._bin_index, spindles._CENTRES.size)
    np.testing.assert_array_equal(spindles.rms_histogram(v, mask), want)
    assert spindles.rms_histogram(v, mask).sum() == mask.sum()


@pytest.mark.parametrize("fs", [100.0, 256.0, 200.0 / 3.0])
@pytest.mark.parametrize("n_epochs", [4, 5, 6, 9], ids=lambda k: f"e{k}")
def test_epochs_spread_over_samples_as_by_their_index(fs, n_epochs):
    # 4 epochs of data plus a part epoch; a hypnogram one epoch short, exact, or longer
    n = int(4.5 * 30 * fs)
    stages = np.arange(n_epochs, dtype=np.int64) % 5
    np.testing.assert_array_equal(epochs_to_samples(stages, n, fs), oracles.epochs_to_samples(stages, n, fs))
    keep = np.isin(stages, [1, 2])
    np.testing.assert_array_equal(stage_mask(stages, n, fs, [1, 2]), oracles.epochs_to_samples(keep, n, fs))


@pytest.mark.parametrize(("rows", "n"), [(1, 1), (1, 255), (1, 257), (1, 40_000), (1, 600_000), (3, 40_000)],
                         ids=["n1", "n255", "n257", "n40000", "n600000", "rows3-n40000"])  # 600_000: > 2 stretches
def test_night_arousal_features_equal_the_streaming_features(rows, n):
    # the offline path filters the whole night in one compiled pass; the live path block by block (rows alike)
    rng = np.random.default_rng(n)
    eeg, emg = rng.normal(size=(2, rows, n)) * [[[20.0]], [[5.0]]]
    want = arousals._Features(rows, 256.0).step(eeg, emg)
    got = arousals._night_features(eeg, emg, 256.0)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("half", [0, 1, 38])
@pytest.mark.parametrize("n", [1, 2, 77, 5000], ids=lambda n: f"n{n}")
def test_peaks_at_equal_the_maximum_filter_form(half, n):
    # the REM detector tests only its candidates for being a local maximum (maximum_filter1d, "nearest")
    rng = np.random.default_rng(n + half)
    x = np.round(rng.normal(size=(3, n)) * 3)  # rounded: plateaus, ties within a window
    x[1, : n // 2] = 5.0  # a long flat stretch reaching the left edge
    want = x == maximum_filter1d(x, 2 * half + 1, axis=-1, mode="nearest")
    r, i = np.nonzero(np.ones_like(x, dtype=bool))
    got = np.empty(i.size, dtype=bool)
    peaks_at(x, r, i, half, got)
    np.testing.assert_array_equal(got, want.ravel())
    assert want.any() and (half == 0 or n == 1 or not want.all())  # not a trivial comparison


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 1), (2, 3, 50), (4, 2000)])
def test_runs_equal_the_difference_form(shape):
    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.05, 0.5, 0.95, 1.0):
        m = rng.random(shape) < density
        m2 = m.reshape(-1, shape[-1])
        pad = np.zeros((m2.shape[0], 1), dtype=bool)
        d = np.diff(np.concatenate([pad, m2, pad], axis=1).astype(np.int8), axis=1)
        r_on, s_on = np.nonzero(d == 1)
        want = (r_on, s_on, np.nonzero(d == -1)[1])
        for g, w in zip(runs(m), want, strict=True):
            np.testing.assert_array_equal(g, w)
            assert g.dtype == w.dtype


def _same_events(got, want):
    assert got.kind == want.kind
    for name in ("session", "channel", "onset", "duration"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
        assert getattr(got, name).dtype == getattr(want, name).dtype
    assert set(got.extra) == set(want.extra)
    for k, v in want.extra.items():
        np.testing.assert_array_equal(got.extra[k], v)  # bit for bit (NaN and inf in the same places)


def _arousal_features(rng, rows, n):
    """One-second features with bursts of fast power, spindle-like sigma, REM stretches, EMG with and without."""
    fast = rng.gamma(2.0, 5.0, (rows, n))
    burst = rng.random((rows, n)) < 0.12
    fast[burst] *= rng.uniform(2.0, 12.0, burst.sum())
    fast[:, :7] = 0.0  # a silent start: zero baselines, ratios of 0/0 and x/0
    sigma = rng.gamma(2.0, 3.0, (rows, n))
    sigma[rng.random((rows, n)) < 0.05] *= 40.0
    emg = rng.gamma(3.0, 2.0, (rows, n))
    emg[rng.random((rows, n)) < 0.1] *= 5.0
    emg[::3] = np.nan  # rows without a chin EMG
    rem = (np.arange(n) // 40 % 3 == 2) * np.ones((rows, 1))
    sleep = ~((np.arange(n) // 25 % 7 == 0) * np.ones((rows, 1), dtype=bool))
    sleep[2] = rng.random(n) < 0.97
    return np.ascontiguousarray(np.stack([fast, emg, rem, sigma], axis=1)), sleep


@pytest.mark.parametrize("n", [1, 2, 40, 71, 3000], ids=lambda n: f"n{n}")
def test_compiled_arousal_core_equals_the_numpy_form(n):
    rng = np.random.default_rng(n)
    feat, sleep = _arousal_features(rng, 9, n)
    p = arousals.ArousalParams()
    want = oracles.arousal_core(feat, 1.0, sleep, p)
    _same_events(arousals._arousal_core(feat, 1.0, sleep, p), want)
    if n == 3000:  # not a trivial comparison: REM and non-REM arousals, some refused
        assert len(want) > 50 and (feat[want.session, 2, (want.onset).astype(int)] > 0.5).any()
        loose = arousals.ArousalParams(min_sleep_before_s=0.0, emg_ratio=0.0)
        assert len(oracles.arousal_core(feat, 1.0, sleep, loose)) > len(want)
    # strided inputs (every other row) too
    want = oracles.arousal_core(feat[::2], 1.0, sleep[::2], p)
    _same_events(arousals._arousal_core(feat[::2], 1.0, sleep[::2], p), want)


@pytest.mark.parametrize("n", [1, 3, 125, 4000], ids=lambda n: f"n{n}")
@pytest.mark.parametrize("fs", [1.0, 2.0])
def test_compiled_movement_core_equals_the_numpy_form(n, fs):
    rng = np.random.default_rng(n)
    act = rng.gamma(1.5, 8.0, (7, n))  # ~20 % of the bins above 20 mg
    act[3, : n // 2] = 30.0 + rng.random(n // 2)  # one long movement (pairwise sums over > 128 bins)
    mask = rng.random((7, n)) > 0.05
    mask[3] = True
    p = movement.MovementParams()
    want = oracles.movement_core(act, fs, mask, p)
    _same_events(movement._movement_core(act, fs, mask, p), want)
    if n == 4000:
        assert len(want) > 100 and want.duration.max() * fs > 300


def test_movements_by_hand():
    # an independent oracle: bins above 20 mg, one-bin gaps bridged, at least 1 s, mean and peak of the run
    act = np.array([[0, 25, 0, 30, 40, 0, 0, 21, 0, 0, 50, 50], [25, 25, 0, 0, 22, 19, 23, 0, 0, 0, 0, 0]], float)
    ev = movement._movement_core(act, 1.0, np.ones_like(act, dtype=bool), movement.MovementParams())
    got = sorted(zip(ev.session.tolist(), ev.onset.tolist(), ev.duration.tolist(), ev.extra["peak_mg"].tolist(),
                     ev.extra["mean_mg"].tolist(), strict=True))
    # row 0: 1..5 (25, 0 bridged, 30, 40), 7 (21), 10..12 (50, 50); row 1: 0..2, 4..7 (19 bridged)
    assert got == [(0, 1.0, 4.0, 40.0, 95 / 4), (0, 7.0, 1.0, 21.0, 21.0), (0, 10.0, 2.0, 50.0, 50.0),
                   (1, 0.0, 2.0, 25.0, 25.0), (1, 4.0, 3.0, 23.0, 64 / 3)]


@pytest.mark.parametrize("fs", [100.0, 256.0])
@pytest.mark.parametrize("n", [1, 60, 1100, 6000], ids=lambda n: f"n{n}")
def test_compiled_spindle_events_equal_the_numpy_form(fs, n):
    # the runs of the criteria (short gaps bridged, 0.5-2 s), their columns: bit for bit as the NumPy form
    rng = np.random.default_rng(n)
    broad, sigma, rel = rng.normal(size=(3, 6, n)) * [[[40.0]], [[10.0]], [[0.1]]]
    sigma[1, : n // 3] = np.round(sigma[1, : n // 3])  # ties in |sigma| (the first wins) and signed zeros
    sigma[1, : n // 3 : 7] = -0.0
    # runs of 0.1-2.2 s with gaps of 1 sample to 1.5 s, some reaching either end of the window
    passed = np.zeros((6, n), dtype=bool)
    for r in range(6):
        j = int(rng.integers(0, 3))
        while j < n:
            k = j + int(rng.integers(round(0.1 * fs), round(2.2 * fs)))
            passed[r, j:k] = True
            j = k + int(rng.choice([1, 5, round(0.45 * fs), round(0.5 * fs), round(0.8 * fs), round(1.5 * fs)]))
    passed[5] = True  # one whole-window run
    p = SpindleParams()
    want = oracles.spindle_events(broad, sigma, rel, passed, fs, p)
    _same_events(spindles._spindle_events(broad, sigma, rel, passed, fs, p), want)
    if n == 6000:
        assert len(want) >= 8 and (want.duration * fs > 130).any()  # pairwise sums over > 128 samples


@pytest.mark.parametrize("fs", [100.0, 256.0])
@pytest.mark.parametrize("seconds", [0.5, 12.0, 120.0])
def test_compiled_slow_wave_core_equals_the_numpy_form(fs, seconds):
    # slow waves of 0.5-2 Hz and 30-160 uV in noise, a partly masked stage: the same waves and columns, bit for bit
    rng = np.random.default_rng(round(seconds * fs))
    t = np.arange(round(seconds * fs)) / fs
    f = rng.uniform(0.5, 2.0, (5, 1)) * (1 + 0.3 * np.sin(2 * np.pi * t / 7.0))
    x = rng.uniform(30.0, 160.0, (5, 1)) * np.cos(2 * np.pi * np.cumsum(f, axis=1) / fs)
    x += rng.normal(0, 15, (5, t.size))
    mask = np.ones(x.shape, dtype=bool)
    mask[1, : t.size // 2] = False
    mask[2] = rng.random(t.size) < 0.5
    p = slow_waves.SlowWaveParams()
    want = oracles.sw_core(x, fs, mask, p)
    _same_events(slow_waves._sw_core(x, fs, mask, p), want)
    if seconds == 120.0:
        assert len(want) > 100 and len(oracles.sw_core(x, fs, np.ones_like(mask), p)) > len(want)
