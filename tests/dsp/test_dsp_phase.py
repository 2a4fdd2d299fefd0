import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.core.errors import InvalidInputError
from nexus.dsp.phase import (
    CausalPhaseEstimator,
    causal_phase_track,
    circular_stats,
    design_predictor,
    reference_phase,
    target_crossings,
)

FS = 100.0


def _wrap(a):
    return np.angle(np.exp(1j * np.asarray(a)))


def test_reference_phase_of_a_cosine_is_zero_at_its_peaks():
    t = np.arange(6000) / FS
    x = 60 * np.cos(2 * np.pi * 0.9 * t)
    ph = reference_phase(x, FS)
    mid = slice(1000, 5000)
    assert np.max(np.abs(_wrap(ph[mid] - 2 * np.pi * 0.9 * t[mid]))) < 0.05


@pytest.mark.parametrize("horizon", [0.0, 0.05, 0.1])
def test_predictor_tracks_a_slow_oscillation_ahead(horizon):
    rng = np.random.default_rng(0)
    t = np.arange(6000) / FS
    x = 60 * np.cos(2 * np.pi * 1.0 * t) + rng.normal(0, 5, t.size)
    tr = causal_phase_track(x, FS, horizon_s=horizon)
    truth = 2 * np.pi * 1.0 * (t + horizon)
    err = _wrap(tr.phase[0, 200:] - truth[200:])
    assert abs(np.degrees(np.angle(np.mean(np.exp(1j * err))))) < 12
    assert np.degrees(np.std(err)) < 15
    # the predicted envelope shrinks with the horizon (a least-squares prediction), but stays of the right order
    assert 25 < np.median(tr.amp[0, 200:]) < 70


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=6))
def test_chunking_does_not_change_the_estimates(cuts):
    x = np.random.default_rng(1).normal(0, 30, (2, 1500))
    whole = CausalPhaseEstimator(2, FS).update(x)
    est = CausalPhaseEstimator(2, FS)
    bounds = sorted({c for c in np.cumsum(cuts) if c < x.shape[1]})
    parts = [est.update(x[:, a:b]) for a, b in zip([0, *bounds], [*bounds, x.shape[1]], strict=True)]
    np.testing.assert_allclose(np.concatenate([p.phase for p in parts], axis=1), whole.phase, atol=1e-9)
    np.testing.assert_allclose(np.concatenate([p.t for p in parts]), whole.t)


def test_estimates_are_causal():
    x = np.random.default_rng(2).normal(0, 30, 2000)
    y = x.copy()
    y[1500:] += 500.0  # the future changes; the past estimates must not
    a = causal_phase_track(x, FS)
    b = causal_phase_track(y, FS)
    # the FIR runs by FFT over each chunk, so the future can only touch the past at the rounding level
    np.testing.assert_allclose(a.phase[0, :1500], b.phase[0, :1500], rtol=0, atol=1e-9)
    assert np.max(np.abs(a.phase[0, 1600:] - b.phase[0, 1600:])) > 0.1  # and the change is seen once it happens


def test_sessions_are_independent():
    x = np.random.default_rng(3).normal(0, 30, (3, 800))
    batch = CausalPhaseEstimator(3, FS).update(x)
    alone = CausalPhaseEstimator(1, FS).update(x[1:2])
    np.testing.assert_allclose(batch.phase[1], alone.phase[0], atol=1e-9)


def test_bad_input_is_refused():
    est = CausalPhaseEstimator(2, FS)
    assert est.update(np.zeros((2, 0))).phase.shape == (2, 0)  # an empty chunk is fine
    with pytest.raises(InvalidInputError, match="expected shape"):
        est.update(np.zeros((3, 10)))
    with pytest.raises(InvalidInputError, match="NaN"):
        est.update(np.full((2, 10), np.nan))
    with pytest.raises(InvalidInputError, match="horizon_s"):
        design_predictor(FS, horizon_s=1.0)


def test_target_crossings_finds_forward_passes_only():
    ph = _wrap(np.linspace(-np.pi, 3 * np.pi, 400))
    crossed, frac = target_crossings(ph[:-1], ph[1:], 0.0)
    assert crossed.sum() == 2
    back, _ = target_crossings(ph[1:][::-1], ph[:-1][::-1], 0.0)
    assert back.sum() == 0
    assert np.all((frac >= 0) & (frac <= 1))


def test_circular_stats():
    s = circular_stats(np.radians([10, -10, 20, -20, 100]))
    assert s["n"] == 5
    assert s["in_window"] == pytest.approx(0.8)
    assert abs(s["mean_deg"]) < 25
    assert circular_stats([])["n"] == 0


def test_phase_accuracy_on_real_n3(data_dir):
    """The real YASA N3 sample: pulses where the predicted phase crosses 0 land near the up-state."""
    x = np.loadtxt(data_dir / "yasa-samples" / "data_N3_no-spindles_30sec_100Hz.txt")
    tr = causal_phase_track(x, FS, horizon_s=0.05)
    crossed, _ = target_crossings(tr.phase[0, :-1], tr.phase[0, 1:], 0.0)
    ok = crossed & (tr.amp[0, 1:] > 20)
    ok[:100] = False
    onsets = np.flatnonzero(ok) + 1 + 5  # +5 samples: the 50-ms horizon
    onsets = onsets[onsets < x.size]
    s = circular_stats(reference_phase(x, FS)[onsets])
    assert s["n"] >= 8
    assert abs(s["mean_deg"]) < 25
    assert s["sd_deg"] < 35
    assert s["in_window"] >= 0.8
