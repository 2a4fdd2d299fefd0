"""The phase module's rules pinned against independent values: scipy's filters, a sine's known phase and
amplitude, the bounds of its checks, and tick-mode predictions against the estimator's own horizon."""

import numpy as np
import pytest
from scipy import signal

from nexus.core.errors import InvalidInputError
from nexus.dsp.phase import (
    SO_BAND_HZ,
    CausalPhaseEstimator,
    _generic_n3,
    circular_stats,
    reference_band,
    target_crossings,
)

FS = 100.0


def _sine(seconds=30.0, f=1.0, amp=50.0):
    t = np.arange(int(seconds * FS)) / FS
    return t, amp * np.cos(2 * np.pi * f * t)


def test_reference_band_is_scipys_zero_phase_butterworth():
    x = np.random.default_rng(1).normal(0, 20, size=(2, 3000))
    sos = signal.butter(2, SO_BAND_HZ, btype="bandpass", fs=FS, output="sos")
    np.testing.assert_allclose(reference_band(x, FS), signal.sosfiltfilt(sos, x, axis=-1), rtol=1e-12, atol=1e-12)
    one = reference_band(x[1], FS)
    assert one.shape == (3000,)  # 1-D in, 1-D out
    np.testing.assert_allclose(one, signal.sosfiltfilt(sos, x[1]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("fs", "band", "match"),
    [
        (19.9, SO_BAND_HZ, r"'fs'.*Hz"),
        (FS, (0.0, 2.0), r"'band low edge'.*Hz"),
        (FS, (2.0, 1.0), r"'band high edge'"),
        (FS, (0.5, 50.0), r"'band high edge'"),
    ],
    ids=["fs-below-20", "low-edge-zero", "high-below-low", "high-at-nyquist"],
)
def test_rate_and_band_are_checked(fs, band, match):
    with pytest.raises(InvalidInputError, match=match):
        reference_band(np.zeros(1000), fs, band)


def test_rate_and_band_at_their_bounds_are_accepted():
    assert reference_band(np.zeros(1000), 20.0, (0.5, 2.0)).shape == (1000,)
    assert reference_band(np.zeros(1000), FS, (0.5, 40.0)).shape == (1000,)  # below fs / 2, above fs / 3


def test_generic_training_signal_is_a_seeded_slow_oscillation_resonance():
    x = _generic_n3(int(120 * FS), FS, seed=3)
    assert x.dtype == np.float64 and x.shape == (12000,)
    np.testing.assert_array_equal(x, _generic_n3(int(120 * FS), FS, seed=3))
    assert not np.array_equal(x, _generic_n3(int(120 * FS), FS, seed=4))
    f, p = signal.welch(x, FS, nperseg=1000)
    so = p[(f >= 0.5) & (f <= 1.7)].mean()
    assert so > 5 * p[(f >= 4) & (f <= 8)].mean()  # the resonance stands out of the background
    assert p[(f >= 10) & (f <= 40)].mean() > 0  # white noise on top
    assert 0.5 < x.std() < 10


def test_envelope_and_snr_of_a_steady_sine():
    _, x = _sine()
    tr = CausalPhaseEstimator(1, FS, horizon_s=0.1).update(x[None])
    late = slice(int(5 * FS), None)
    # the envelope is corrected for the predictor's shrinkage: near the sine's 50 µV
    assert 38 < np.median(tr.amp[0, late]) < 60
    # a steady slow oscillation that is the whole signal: SNR near 0.85 (module notes)
    assert 0.65 < np.median(tr.snr[0, late]) < 1.0
    assert tr.snr.dtype == np.float64


def test_tick_mode_predicts_at_the_last_sample_of_each_tick():
    _, x = _sine(20.0)
    est = CausalPhaseEstimator(2, FS, horizon_s=0.1, ahead_s=(0.05, 0.1, 0.15), decide_every=10)
    seen, idx_all, ahead, phase = 0, [], [], []
    for a in range(0, x.size, 37):  # chunks that do not line up with the ticks
        tr = est.update(np.stack([x[a:a + 37], 0.5 * x[a:a + 37]]))
        idx_all.append(tr.ahead_idx + seen)
        ahead.append(tr.ahead_phase)
        phase.append(tr.phase[:, tr.ahead_idx])
        seen += tr.phase.shape[1]
    idx = np.concatenate(idx_all)
    np.testing.assert_array_equal(idx, np.arange(9, x.size, 10))  # samples g with (g + 1) % 10 == 0
    ahead_phase, ph = np.concatenate(ahead, axis=1), np.concatenate(phase, axis=1)
    assert ahead_phase.shape == (2, idx.size, 3)
    late = idx > 3 * FS
    # the 0.1-s column predicts what the estimator's own 0.1-s horizon does; 0.05 s earlier and later
    # lie 18 degrees behind and ahead on a 1-Hz sine
    d = np.angle(np.exp(1j * (ahead_phase[:, late, 1] - ph[:, late])))
    assert np.abs(d).max() < 0.01
    step = np.angle(np.exp(1j * (ahead_phase[:, late, 2] - ahead_phase[:, late, 0])))
    assert np.median(step) == pytest.approx(2 * np.pi * 0.1, abs=0.05)
    with pytest.raises(InvalidInputError, match="ahead_s"):
        CausalPhaseEstimator(1, FS, ahead_s=(0.1,))


def test_a_learned_bias_moves_the_tick_predictions_too():
    _, x = _sine(40.0)
    est = CausalPhaseEstimator(1, FS, horizon_s=0.1, ahead_s=(0.1,), decide_every=10)
    est.update(x[None, : int(10 * FS)])
    # pulses aimed at the up-state (0) that landed 0.1 s late (36 degrees after the peak)
    est.note_pulses(np.zeros(8, dtype=int), 11.1 + np.arange(8), 0.0)
    for a in range(int(10 * FS), int(30 * FS), int(FS)):  # 1-s chunks: each pulse is measured 3 s after it
        est.update(x[None, a:a + int(FS)])
    assert est.bias[0] > 0.05
    tr = est.update(x[None, int(30 * FS):])
    d = np.angle(np.exp(1j * (tr.ahead_phase[0, :, 0] - tr.phase[0, tr.ahead_idx])))
    assert np.abs(d).max() < 0.01  # both carry the bias


def test_a_reset_session_starts_afresh():
    _, x = _sine(30.0)
    noise = np.random.default_rng(2).normal(0, 30, x.size)
    est = CausalPhaseEstimator(2, FS, horizon_s=0.05)
    est.update(np.stack([x[:1000], noise[:1000]]))
    est.reset([1])
    got = est.update(np.stack([x[1000:], x[1000:]]))
    fresh = CausalPhaseEstimator(1, FS, horizon_s=0.05).update(x[None, 1000:])
    np.testing.assert_allclose(got.phase[1], fresh.phase[0], atol=1e-9)
    np.testing.assert_allclose(got.amp[1], fresh.amp[0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.snr[1], fresh.snr[0], rtol=1e-9, atol=1e-9)


def test_target_crossings_of_a_target_other_than_zero():
    ph = np.angle(np.exp(1j * np.linspace(-np.pi, 3 * np.pi, 401)))
    crossed, frac = target_crossings(ph[:-1], ph[1:], np.pi / 2)
    at = np.flatnonzero(crossed) + 1
    assert at.size == 2
    # where the phase passes pi/2 (and not -pi/2), to within one sample
    np.testing.assert_allclose(np.cos(ph[at]), 0.0, atol=0.04)
    assert (np.sin(ph[at]) > 0).all()
    assert np.all((frac >= 0) & (frac <= 1))


def test_circular_stats_edges():
    empty = circular_stats([])
    assert empty["n"] == 0 and np.isnan(empty["resultant"]) and np.isnan(empty["in_window"])
    edge = circular_stats([np.pi / 4, -np.pi / 4])  # exactly on the window's edges: inside
    assert edge["in_window"] == 1.0
    assert edge["resultant"] == pytest.approx(np.cos(np.pi / 4))
    assert edge["sd_deg"] == pytest.approx(np.degrees(np.sqrt(-2 * np.log(np.cos(np.pi / 4)))))


def test_a_reset_session_calibrates_as_if_its_past_were_silent():
    # a pulse soon after a reset is measured on a window that reaches back before it: the previous
    # sleeper's samples are gone (zeros), as for a session whose past was silence
    _, x = _sine(30.0)
    old = np.random.default_rng(3).normal(0, 40, int(10 * FS))
    a = CausalPhaseEstimator(1, FS, horizon_s=0.05)
    a.update(old[None])
    a.reset([0])
    b = CausalPhaseEstimator(1, FS, horizon_s=0.05)
    b.update(np.zeros((1, int(10 * FS))))
    for est in (a, b):
        est.note_pulses([0], [12.1], 0.0)
        for k in range(int(10 * FS), int(20 * FS), int(FS)):
            est.update(x[None, k:k + int(FS)])
    assert a.bias[0] != 0.0
    assert a.bias[0] == pytest.approx(b.bias[0], abs=1e-12)


def test_a_pulse_moves_the_bias_by_the_documented_rule():
    # bias += 0.05 x (reference phase at the pulse - target), the reference taken on the raw EEG
    # from 6 s before the pulse to 3 s after it; a pulse exactly 6 s into the night still counts
    from nexus.dsp.phase import reference_phase

    _, x = _sine(20.0)
    x = x + np.random.default_rng(5).normal(0, 5, x.size)
    est = CausalPhaseEstimator(1, FS, horizon_s=0.05)
    est.note_pulses([0], [6.0], 0.3)
    for k in range(0, int(12 * FS), int(FS)):
        est.update(x[None, k:k + int(FS)])
    i = int(6.0 * FS)
    ref = reference_phase(x[i - int(6 * FS): i + int(3 * FS) + 1], FS)[int(6 * FS)]
    want = 0.05 * np.angle(np.exp(1j * (ref - 0.3)))
    assert est.bias[0] == pytest.approx(want, abs=1e-12)
    assert abs(want) > 1e-3
