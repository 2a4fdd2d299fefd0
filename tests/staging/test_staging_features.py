import warnings

import numpy as np
import pytest
import staging_oracles as oracles
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.staging import features as F
from nexus.staging.model import classifier_path, load_model, model_name


@pytest.fixture(scope="module")
def noise():
    rng = np.random.default_rng(5)
    x = np.cumsum(rng.normal(size=(2, 100 * 300)), axis=-1) * 0.5 + rng.normal(0, 20, size=(2, 100 * 300))
    return x


def test_resample_and_bandpass_equal_mne(noise):
    mne = pytest.importorskip("mne")
    x256 = np.repeat(noise, 3, axis=-1)[:, : 256 * 200]
    raw = mne.io.RawArray(x256 * 1e-6, mne.create_info(2, 256.0, "eeg"), verbose=False)
    ref = raw.copy().resample(100, npad="auto").get_data() * 1e6
    np.testing.assert_allclose(F.resample_to_100(x256, 256.0), ref, atol=1e-6)
    filt = mne.filter.filter_data(noise, 100.0, 0.4, 30, verbose=False)
    np.testing.assert_allclose(F.bandpass(noise), filt, atol=1e-8)


def test_per_epoch_features_equal_antropy(noise):
    ant = pytest.importorskip("antropy")
    ep = F.epochs_of(F.bandpass(noise))[0]
    feats = F.channel_features(ep, "eeg")
    mob, comp = ant.hjorth_params(ep, axis=1)
    np.testing.assert_allclose(feats["hmob"], mob, rtol=1e-10)
    np.testing.assert_allclose(feats["hcomp"], comp, rtol=1e-10)
    np.testing.assert_allclose(feats["petrosian"], ant.petrosian_fd(ep, axis=1), rtol=1e-12)
    np.testing.assert_allclose(feats["perm"], [ant.perm_entropy(e, normalize=True) for e in ep], rtol=1e-12)
    np.testing.assert_allclose(feats["higuchi"], [ant.higuchi_fd(e) for e in ep], rtol=1e-9)
    np.testing.assert_array_equal(feats["nzc"], ant.num_zerocross(ep, axis=1))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["eeg", "eog", "emg"]))
def test_features_are_the_same_batched_or_alone(seed, kind):
    ep = np.random.default_rng(seed).normal(0, 25, size=(3, 2, 3000))
    batched = F.channel_features(ep, kind)
    assert set(batched) == set(F.feature_names(kind))
    for s in range(3):
        alone = F.channel_features(ep[s], kind)
        for name in batched:
            np.testing.assert_allclose(batched[name][s], alone[name], rtol=1e-9, err_msg=name)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([500, 501, 3000]), st.booleans())
def test_compiled_features_equal_numpy(seed, n, flat):
    rng = np.random.default_rng(seed)
    ep = np.cumsum(rng.normal(0, 5, size=(4, n)), axis=-1) + rng.normal(0, 10, size=(4, n))
    ep[1] = np.round(ep[1])  # ties in the ordinal patterns and quartiles
    if flat:
        ep[2] = 3.0  # a flat epoch: undefined ratios are NaN in both
    fast = F.channel_features(ep, "eeg")
    ref = oracles.channel_features(ep, "eeg")  # array definitions: numpy, antropy's formulas, scipy's Welch
    for name in ref:
        np.testing.assert_allclose(fast[name], ref[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_smoothing_skips_nan_like_pandas():
    pd = pytest.importorskip("pandas")
    x = np.random.default_rng(1).normal(size=(40, 2))
    x[[3, 17, 18], 0] = np.nan
    df = pd.DataFrame(x)
    ref_c = df.rolling(window=15, center=True, min_periods=1, win_type="triang").mean().to_numpy()
    ref_p = df.rolling(window=4, min_periods=1).mean().to_numpy()
    np.testing.assert_allclose(F.centred_triangular_mean(x), ref_c, rtol=1e-12)
    np.testing.assert_allclose(F.trailing_mean(x, 4), ref_p, rtol=1e-12)


def test_model_arrays_match_lightgbm(tmp_path, monkeypatch):
    joblib = pytest.importorskip("joblib")
    monkeypatch.setenv("NEXUS_CACHE_DIR", str(tmp_path))
    load_model.cache_clear()
    try:
        model = load_model(("eeg", "emg"))
        assert list(tmp_path.glob("clf_eeg+emg_lgb_*.npz"))  # converted once, cached
        load_model.cache_clear()
        cached = load_model(("eeg", "emg"))
    finally:
        load_model.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = joblib.load(classifier_path(("eeg", "emg")))
    x = np.random.default_rng(0).normal(size=(67, len(model.feature_names))).astype(np.float32)  # 4k + 3 rows
    x[::7, 3] = np.nan
    ref = clf.predict_proba(x)[:, [list(clf.classes_).index(c) for c in ("W", "N1", "N2", "N3", "R")]]
    np.testing.assert_allclose(model.predict_proba(x), ref, atol=1e-9)
    np.testing.assert_allclose(cached.predict_proba(x), ref, atol=1e-9)
    assert model_name(["eeg", "eog"], demographics=True) == "clf_eeg+eog+demo"


def test_compiled_tree_walk_equals_numpy_walk():
    model = load_model(("eeg", "eog", "emg"))
    rng = np.random.default_rng(3)
    # 300 rows: two full blocks of the compiled walk and a partial one; values near the split
    # thresholds, some exactly on them (x <= t goes left), NaN (counts as 0)
    x = np.empty((300, len(model.feature_names)), np.float32)
    for f in range(x.shape[1]):
        th = model.threshold[(model.feature == f) & np.isfinite(model.threshold)]
        x[:, f] = rng.choice(th, 300) * (1 + rng.normal(0, 1e-3, 300)) if th.size else rng.normal(size=300)
    on = model.threshold[0, :3].astype(np.float32)
    x[:10, model.feature[0, :3]] = on
    x[::11, 5] = np.nan
    np.testing.assert_array_equal(model.predict_proba(x), oracles.tree_scores_proba(model, x))
    assert model.predict_proba(x[:0]).shape == (0, 5)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 40), st.integers(0, 2**32 - 1))
def test_own_windows_equal_scipy(n, seed):
    from scipy import signal

    np.testing.assert_allclose(
        F._firwin_lowpass(2 * n + 1, 7.0, 100.0), signal.firwin(2 * n + 1, 7.0, window="hamming", fs=100.0), atol=1e-15
    )
    np.testing.assert_array_equal(F.TRIANG15, signal.windows.triang(15))


def test_welch_window_is_scipys_bit_for_bit():
    from scipy import signal

    from nexus.staging.window import SEG, hamming

    np.testing.assert_array_equal(hamming(), signal.get_window("hamming", SEG))


def test_spectral_features_equal_scipy_welch(noise):
    # the offline band powers come from the same block spectra as the live stager's: they equal
    # YASA's definition (scipy's median Welch, Simpson's rule per band, edges included)
    ep = F.epochs_of(F.bandpass(noise))[0]
    feats = F.channel_features(ep, "eeg")
    ref = oracles.spectral_features(ep)
    for name in ref:
        np.testing.assert_allclose(feats[name], ref[name], rtol=1e-9, err_msg=name)


@pytest.mark.parametrize("fs", [100.0, 128.0, 200.0, 256.0, 512.0])
def test_one_pass_resample_bandpass_equals_two_steps(noise, fs):
    n = int(fs * 120)
    x = np.interp(np.arange(n) / fs, np.arange(noise.shape[1]) / 100.0, noise[0])
    fast = F.resample_bandpass(x, fs)
    exact = F.bandpass(F.resample_to_100(x, fs))
    assert fast.shape == exact.shape == (12000,)
    # equal away from the recording edges (the padding differs there)
    np.testing.assert_allclose(fast[1500:-1500], exact[1500:-1500], atol=1e-3 * np.abs(exact).max())


def test_one_pass_resample_in_single_precision_stays_within_millionths(noise):
    # the chunks' FFTs are float32: with a DC offset ten times the signal (which the band-pass
    # removes) the result still differs from the double-precision two steps by a few millionths
    # of the input's largest value in the interior, and comes back as float64
    fs = 256.0
    n = int(fs * 300)
    x = np.interp(np.arange(n) / fs, np.arange(noise.shape[1]) / 100.0, noise[0]) + 10 * np.abs(noise[0]).max()
    fast = F.resample_bandpass(x, fs)
    exact = F.bandpass(F.resample_to_100(x, fs))
    assert fast.dtype == np.float64
    np.testing.assert_allclose(fast[1500:-1500], exact[1500:-1500], atol=1e-5 * np.abs(x).max())


def test_robust_scale_without_nan_equals_the_nan_skipping_quantiles():
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=(301, 6))
    x[:, 2] = 4.0  # a constant column: zero spread leaves the centred value
    with_nan = np.vstack([x, np.full((1, 6), np.nan)])
    ref = (x - np.nanmedian(x, axis=0)) / np.where(
        np.ptp(np.nanpercentile(x, [5.0, 95.0], axis=0), axis=0) > 0,
        np.ptp(np.nanpercentile(x, [5.0, 95.0], axis=0), axis=0),
        1.0,
    )
    np.testing.assert_allclose(F.robust_scale(x), ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(F.robust_scale(with_nan)[:-1], ref, rtol=1e-12, atol=1e-15)
    assert np.isnan(F.robust_scale(with_nan)[-1]).all()


def test_one_pass_resample_is_exact_where_mne_rounds_the_ratio():
    # at 250 Hz MNE's padded FFT length makes its ratio 13107/32768 instead of 0.4 (a ~1-sample
    # shift); the one-pass path keeps the exact ratio
    fs, n = 250.0, 30000
    x = 10 * np.sin(2 * np.pi * 5 * np.arange(n) / fs)
    fast = F.resample_bandpass(x, fs)
    np.testing.assert_allclose(
        fast[1500:-1500], 10 * np.sin(2 * np.pi * 5 * np.arange(12000) / 100)[1500:-1500], atol=0.02
    )
