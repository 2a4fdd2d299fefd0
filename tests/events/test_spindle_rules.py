"""The spindle rule pinned on hand-built features, and its RMS statistics against a sorted-array oracle.

``_spindle_core`` accepts the features (broadband and sigma signals, relative sigma power, moving
correlation, moving RMS), so each criterion can be set just above or just below its threshold. At 100 Hz
the 100-ms smoothing is a centred 10-sample mean: a stretch of ``L`` samples where all three criteria hold
gives a detection of ``L - 3`` samples (the smoothed count must exceed 2, i.e. 7 of the 10 samples pass).
"""

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.events import spindles
from nexus.events.spindles import SpindleParams, SpindleStream, _spindle_core, rms_histogram, rms_threshold

FS = 100.0
N = 1000


def _feats(events=((300, 400),), rel=0.3, corr=0.8, rms=None, amp=20.0):
    """Features with all three criteria holding on each [a, b) of ``events`` (defaults well inside)."""
    t = np.arange(N) / FS
    sigma = np.zeros((1, N))
    relpow = np.zeros((1, N))
    mcorr = np.zeros((1, N))
    mrms = np.ones((1, N))
    for a, b in events:
        sigma[0, a:b] = amp * np.sin(2 * np.pi * 13 * (t[a:b] - t[a]) + 0.3)
        relpow[0, a:b] = rel
        mcorr[0, a:b] = corr
        mrms[0, a:b] = 5.0 if rms is None else rms
    broad = sigma + 0.5 * np.cos(2 * np.pi * 2 * t)[None]
    return broad, sigma, np.stack([relpow, mcorr]), mrms


def _detect(feats, params=None, mask=None):
    mask = np.ones((1, N), dtype=bool) if mask is None else mask
    ev, _, _ = _spindle_core(np.zeros((1, N)), FS, mask, params or SpindleParams(), feats=feats)
    return [(round(float(o), 6), round(float(d), 6)) for o, d in zip(ev.onset, ev.duration, strict=True)], ev


def _thr(mrms):
    return float(rms_threshold(rms_histogram(mrms, np.ones_like(mrms, dtype=bool)), 1.5)[0])


def test_columns_of_one_spindle():
    broad, sigma, rc, mrms = _feats()
    rc[0, 0, 300:400] = 0.3 + 0.001 * np.arange(100)  # relative power rising across the spindle
    got, ev = _detect((broad, sigma, rc, mrms))
    assert got == [(3.02, 0.97)]  # samples 302..398
    s = slice(302, 399)
    assert ev.extra["amp_uv"][0] == pytest.approx(np.ptp(broad[0, s]))
    assert ev.extra["rms_uv"][0] == pytest.approx(np.sqrt(np.mean(sigma[0, s] ** 2)))
    crossings = np.count_nonzero(np.signbit(sigma[0, 303:400]) != np.signbit(sigma[0, 302:399]))
    assert ev.extra["freq_hz"][0] == pytest.approx(crossings / 2 / 0.97)
    assert ev.extra["freq_hz"][0] == pytest.approx(13.0, abs=0.6)
    assert ev.extra["rel_power"][0] == pytest.approx(0.35)
    assert ev.extra["peak_s"][0] == pytest.approx((302 + np.argmax(np.abs(sigma[0, s]))) / FS)


@pytest.mark.parametrize(("length", "found"), [(54, True), (53, False), (202, True), (203, False)],
                         ids=["0.51s", "0.50s", "1.99s", "2.00s"])
def test_duration_strictly_between_half_a_second_and_two(length, found):
    got, _ = _detect(_feats(events=((300, 300 + length),)))
    assert got == ([(3.02, (length - 3) / FS)] if found else [])


@pytest.mark.parametrize(
    ("kwargs", "found"),
    [({"rel": 0.2}, True), ({"rel": 0.19999}, False), ({"corr": 0.65}, True), ({"corr": 0.64999}, False)],
    ids=["relpow-0.2", "relpow-below", "corr-0.65", "corr-below"],
)
def test_relative_power_and_correlation_thresholds(kwargs, found):
    assert bool(_detect(_feats(**kwargs))[0]) is found


def test_rms_threshold_criterion():
    broad, sigma, rc, mrms = _feats()
    thr = _thr(mrms)  # set by the 90 % of samples outside the spindle (the top 10 % are trimmed off)
    assert 1.0 <= thr < 1.05
    for value, found in ((thr, True), (np.nextafter(thr, 0), False)):
        mrms[0, 300:400] = value
        assert _thr(mrms) == thr
        assert bool(_detect((broad, sigma, rc, mrms))[0]) is found


def test_min_criteria_counts_the_criteria():
    weak = _feats(rel=0.1)  # two of three criteria hold
    assert _detect(weak)[0] == []
    # smoothed count > 1: 6 of the 10 samples (2 each) suffice, so samples 301..399
    assert _detect(weak, SpindleParams(min_criteria=2))[0] == [(3.01, 0.99)]
    one = _feats(rel=0.1, corr=0.1)
    assert _detect(one, SpindleParams(min_criteria=2))[0] == []
    # smoothed count > 0: any passing sample in the window, so samples 296..404
    assert _detect(one, SpindleParams(min_criteria=1))[0] == [(2.96, 1.09)]


def test_only_where_the_mask_allows():
    mask = np.ones((1, N), dtype=bool)
    mask[0, 300:400] = False
    assert _detect(_feats(), mask=mask)[0] == []
    mask[0, 300:395] = True  # the end cut off: 95 samples remain
    assert _detect(_feats(), mask=mask)[0] == [(3.02, 0.92)]
    mask[0, 395:] = True
    mask[0, 340:345] = False  # a short hole: the halves 302..338 and 347..398 are closer than 0.5 s, so merged
    assert _detect(_feats(), mask=mask)[0] == [(3.02, 0.97)]


@pytest.mark.parametrize(("gap", "expected"), [(46, [(3.02, 1.63)]), (47, [(3.02, 0.57), (4.09, 0.57)])],
                         ids=["merged", "apart"])
def test_spindles_closer_than_half_a_second_merge(gap, expected):
    assert _detect(_feats(events=((300, 360), (360 + gap, 420 + gap))))[0] == expected


def test_rows_are_separate():
    f0, f1 = _feats(), _feats(events=((500, 560),))
    feats = tuple(np.concatenate([a, b], axis=-2) for a, b in zip(f0, f1, strict=True))
    ev, _, _ = _spindle_core(np.zeros((2, N)), FS, np.ones((2, N), dtype=bool), SpindleParams(), feats=feats)
    assert list(zip(ev.session.tolist(), np.round(ev.onset, 6).tolist(), strict=True)) == [(0, 3.02), (1, 5.02)]


def _trimmed(v, k, cut=0.10):
    s = np.sort(v)
    keep = s[round(cut * s.size) : round((1 - cut) * s.size)]
    return keep.mean() + k * keep.std()


@pytest.mark.parametrize(("k", "cut"), [(1.5, 0.10), (0.0, 0.10), (2.0, 0.25)])
def test_rms_threshold_is_the_trimmed_mean_plus_k_sd(k, cut):
    v = np.random.default_rng(3).lognormal(np.log(2.0), 0.4, 20000)
    hist = rms_histogram(v[None], np.ones((1, v.size), dtype=bool))
    assert hist.sum() == v.size
    assert rms_threshold(hist, k, cut=cut)[0] == pytest.approx(_trimmed(v, k, cut), rel=0.02)


def test_rms_threshold_cap_and_empty_rows():
    v = np.random.default_rng(4).lognormal(np.log(20.0), 0.3, 5000)
    rows = np.stack([v, v / 10])
    mask = np.ones(rows.shape, dtype=bool)
    mask[1] = False
    thr = rms_threshold(rms_histogram(rows, mask), 1.5)
    assert thr[0] == 10.0  # capped at 10 µV
    assert np.isinf(thr[1])  # no sample: nothing passes
    assert rms_threshold(rms_histogram(rows, np.ones(rows.shape, dtype=bool)), 1.5, cap=50.0)[0] > 10.0


def test_histogram_bins_match_searchsorted():
    rng = np.random.default_rng(5)
    edges = spindles._EDGES
    v = np.r_[rng.uniform(0, 2000, 3000), 10 ** rng.uniform(-3, 3.5, 3000), edges, edges[:-1] * 1.0000001,
              np.nextafter(edges, 0), np.nextafter(edges, np.inf), 0.0]
    expected = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, edges.size - 2)
    np.testing.assert_array_equal(spindles._bin_index(v), expected)
    rows = np.stack([v, v[::-1]])
    mask = np.ones(rows.shape, dtype=bool)
    mask[1, ::2] = False
    h = rms_histogram(rows, mask)
    np.testing.assert_array_equal(h[0], np.bincount(expected, minlength=edges.size - 1))
    np.testing.assert_array_equal(h[1], np.bincount(expected[::-1][1::2], minlength=edges.size - 1))


def test_features_are_the_documented_moving_windows():
    rng = np.random.default_rng(6)
    x = rng.normal(0, 20, (1, 2000))
    broad, sigma, rc, mrms = spindles._features(x, FS, SpindleParams())
    t = 1000
    rel = slice(t - 50, t + 50)  # 1-s window, centred
    win = slice(t - 15, t + 15)  # 0.3-s window, centred
    assert rc[0, 0, t] == pytest.approx(np.mean(sigma[0, rel] ** 2) / np.mean(broad[0, rel] ** 2), rel=1e-6)
    assert rc[1, 0, t] == pytest.approx(np.corrcoef(sigma[0, win], broad[0, win])[0, 1], rel=1e-6)
    assert mrms[0, t] == pytest.approx(np.sqrt(np.mean(sigma[0, win] ** 2)), rel=1e-6)
    rc2 = spindles._features(x, FS, SpindleParams(rel_pow_window=2.0))[2]
    rel2 = slice(t - 100, t + 100)
    assert rc2[0, 0, t] == pytest.approx(np.mean(sigma[0, rel2] ** 2) / np.mean(broad[0, rel2] ** 2), rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"freq_sp": (15.5, 11.5)}, "Invalid bands"),
        ({"freq_broad": (0.0, 30.0)}, "Invalid bands"),
        ({"duration": (2.0, 0.5)}, "'duration'"),
        ({"duration": (0.0, 2.0)}, "'duration'"),
        ({"duration": (1.0, 1.0)}, "'duration'"),  # no duration is both above and below 1 s
        ({"min_distance": -0.1}, "'min_distance'"),
        ({"rel_pow": 1.1}, "'rel_pow'"),
        ({"corr": -1.1}, "'corr'"),
        ({"min_criteria": 0}, "'min_criteria'"),
        ({"min_criteria": 4}, "'min_criteria'"),
        ({"rel_pow_window": 0.0}, "'rel_pow_window'"),
    ],
)
def test_params_are_checked(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        SpindleParams(**kwargs)


def test_params_defaults_after_lacourse_and_yasa():
    p = SpindleParams()
    assert (p.freq_sp, p.freq_broad, p.duration) == ((11.5, 15.5), (1.0, 30.0), (0.5, 2.0))
    assert (p.min_distance, p.rel_pow, p.corr, p.rms, p.min_criteria, p.rel_pow_window) == (0.5, 0.2, 0.65, 1.5, 3, 1.0)
    edge = SpindleParams(rel_pow=1.0, corr=-1.0, min_distance=0.0, min_criteria=1)
    assert (edge.rel_pow, edge.corr, edge.min_distance, edge.min_criteria) == (1.0, -1.0, 0.0, 1)


def test_stream_reset_clears_the_rms_statistics():
    fs = 200.0
    t = np.arange(int(60 * fs)) / fs
    rng = np.random.default_rng(7)
    quiet = rng.normal(0, 2, t.size)
    x = quiet.copy()
    for o in (30.0, 45.0):
        m = (t >= o) & (t < o + 1.0)
        x[m] += 25 * np.sin(2 * np.pi * 13 * t[m]) * np.hanning(m.sum())
    loud = 60 * np.sin(2 * np.pi * 13 * t[: int(30 * fs)])  # sigma-band junk: a high RMS threshold

    def run(st, sig):
        return [st.step(sig[:, i:i + 100]) for i in range(0, sig.shape[1], 100)]

    st = SpindleStream(2, fs)
    run(st, np.stack([loud, np.zeros_like(loud)]))
    st.reset([0, 1])
    got = [*run(st, np.stack([x, x])), st.flush()]
    on = np.concatenate([g.onset for g in got])
    rows = np.concatenate([g.session for g in got])
    np.testing.assert_allclose(on[rows == 0], on[rows == 1])  # the loud history is forgotten
    np.testing.assert_allclose(on[rows == 1], [60.0, 75.0], atol=0.3)


def test_a_single_count_histogram_gives_its_bin():
    h = np.zeros((1, spindles._CENTRES.size), dtype=np.int64)
    h[0, 300] = 1  # 80 % of one sample survives the trimming: still that bin's value, SD 0
    assert rms_threshold(h, 1.5)[0] == pytest.approx(spindles._CENTRES[300])
    assert rms_threshold(h, 1.5, cap=np.inf)[0] == pytest.approx(spindles._CENTRES[300])


def test_bin_of_infinity_is_the_last():
    assert spindles._bin_index(np.array([np.inf, 1e9]))[0] == spindles._CENTRES.size - 1


def test_low_sigma_band_edge_and_rms_name():
    assert SpindleParams(freq_sp=(0.5, 15.5)).freq_sp == (0.5, 15.5)
    with pytest.raises(InvalidInputError, match="'rms'"):
        SpindleParams(rms=float("nan"))


def test_offline_and_streaming_results_carry_kind_and_columns():
    fs = 200.0
    t = np.arange(int(30 * fs)) / fs
    x = np.random.default_rng(8).normal(0, 2, t.size)
    m = (t >= 12) & (t < 13)
    x[m] += 25 * np.sin(2 * np.pi * 13 * t[m]) * np.hanning(m.sum())
    res = spindles.detect_spindles(np.stack([x, x]), fs, ch_names=["C3", "C4"])
    assert res.kind == "spindle" and res.events.channel.tolist() == ["C3", "C4"]
    assert "session" not in res.events.columns
    st = SpindleStream(1, fs)
    got = [st.step(x[None, i:i + 200]) for i in range(0, x.size, 200)] + [st.flush()]
    ev = [g for g in got if g.onset.size]
    assert len(ev) == 1 and set(spindles.EXTRA) <= set(ev[0].extra)
    assert ev[0].extra["freq_hz"][0] == pytest.approx(13.0, abs=1.0)


def test_a_hypnogram_of_30_s_epochs_is_spread_over_their_samples():
    # a 1-s, 13-Hz burst in each of two epochs over a 1-Hz background: each found only where its epoch is searched
    fs = 100.0
    t = np.arange(int(60 * fs)) / fs
    x = 10 * np.sin(2 * np.pi * t)
    for a in (12.0, 42.0):
        m = (t >= a) & (t < a + 1)
        x[m] += 25 * np.sin(2 * np.pi * 13 * t[m]) * np.hanning(m.sum())

    def onsets(**kw):
        return np.round(spindles.detect_spindles(x, fs, **kw).events.onset, 1).tolist()

    assert onsets() == [12.0, 42.0]
    assert onsets(stages=[2, 0]) == [12.0]
    assert onsets(stages=[0, 3]) == [42.0]
    assert onsets(stages=[2, 0], include=(0,)) == [42.0]


def test_stream_batches_carry_the_columns_even_when_empty():
    st = SpindleStream(2, 200.0)
    ev = st.step(np.zeros((2, 200)))
    assert ev.onset.size == 0 and set(spindles.EXTRA) <= set(ev.extra)
