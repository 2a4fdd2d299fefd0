import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from nexus.core.errors import InvalidInputError
from nexus.dsp.filters import StatefulFilter, bandpass_sos, highpass_sos, lowpass_sos, notch_sos, zero_phase
from nexus.dsp.moving import BinAccumulator, moving_corr, moving_mean, moving_rms, resample, runs

FS = 256.0
RNG = np.random.default_rng(0)
SIGNAL = RNG.normal(0, 20, (3, 2, 600))  # 3 sessions × 2 channels


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, 600), max_size=8), init=st.sampled_from(["zeros", "step"]))
def test_chunked_filtering_equals_whole(cuts, init):
    sos = bandpass_sos(0.5, 30.0, FS)
    whole = StatefulFilter(sos, (3, 2), init=init).step(SIGNAL)
    f = StatefulFilter(sos, (3, 2), init=init)
    edges = [0, *sorted(cuts), 600]
    parts = [f.step(SIGNAL[..., a:b]) for a, b in itertools.pairwise(edges)]
    np.testing.assert_allclose(np.concatenate(parts, axis=-1), whole, rtol=1e-9, atol=1e-9)


def test_stateful_filter_matches_scipy_row_by_row():
    sos = highpass_sos(0.3, FS)
    y = StatefulFilter(sos, (3, 2)).step(SIGNAL)
    np.testing.assert_allclose(y[1, 0], signal.sosfilt(sos, SIGNAL[1, 0]))


def test_step_init_has_no_dc_transient():
    x = np.full((2, 512), 100.0)
    y = StatefulFilter(lowpass_sos(10.0, FS), (2,), init="step").step(x)
    np.testing.assert_allclose(y, 100.0, rtol=1e-6)
    assert abs(StatefulFilter(lowpass_sos(10.0, FS), (2,)).step(x)[0, 0]) < 50  # zeros init starts low


def test_reset_one_session_only():
    f = StatefulFilter(lowpass_sos(5.0, FS), (2,))
    f.step(np.ones((2, 100)))
    f.reset([0])
    y = f.step(np.zeros((2, 1)))
    assert y[0, 0] == 0.0
    assert y[1, 0] != 0.0


def test_bandpass_passes_band_and_rejects_outside():
    t = np.arange(int(10 * FS)) / FS
    sos = bandpass_sos(11.0, 16.0, FS)
    inside = zero_phase(np.sin(2 * np.pi * 13 * t), sos)
    outside = zero_phase(np.sin(2 * np.pi * 3 * t), sos)
    assert np.std(inside[500:-500]) > 0.6
    assert np.std(outside[500:-500]) < 0.01


def test_notch_removes_mains():
    t = np.arange(int(10 * FS)) / FS
    y = zero_phase(np.sin(2 * np.pi * 50 * t), notch_sos(50.0, FS, harmonics=2))
    assert np.std(y[500:-500]) < 0.05


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bandpass_sos(30.0, 10.0, FS), "low < high"),
        (lambda: lowpass_sos(200.0, FS), "expected < 128 Hz"),
        (lambda: highpass_sos(1.0, -5), "'fs'"),
        (lambda: StatefulFilter(np.ones(5)), "second-order sections"),
        (lambda: StatefulFilter(lowpass_sos(5.0, FS), (2,)).step(np.ones((3, 10))), "Invalid block shape"),
    ],
    ids=["band-order", "above-nyquist", "negative-fs", "bad-sos", "bad-block"],
)
def test_bad_input_is_rejected(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()


def test_moving_stats_match_direct_computation():
    x = RNG.normal(size=(2, 50))
    y = RNG.normal(size=(2, 50))
    n = 7
    i = 20
    seg = slice(i - n // 2, i - n // 2 + n)
    np.testing.assert_allclose(moving_mean(x, n)[:, i], x[:, seg].mean(axis=1))
    np.testing.assert_allclose(moving_rms(x, n)[:, i], np.sqrt((x[:, seg] ** 2).mean(axis=1)))
    np.testing.assert_allclose(moving_corr(x, y, n)[0, i], np.corrcoef(x[0, seg], y[0, seg])[0, 1])
    assert moving_mean(np.ones(10), 4)[0] == 1.0  # edges average what is there


def test_resample_and_runs():
    t = np.arange(1000) / 100.0
    y = resample(np.sin(2 * np.pi * 2 * t), 100.0, 256.0)
    assert y.size == 2560
    row, start, stop = runs(np.array([[0, 1, 1, 0, 1], [1, 0, 0, 0, 0]], dtype=bool))
    assert row.tolist() == [0, 0, 1]
    assert start.tolist() == [1, 4, 0]
    assert stop.tolist() == [3, 5, 1]


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, 300), max_size=6))
def test_bin_accumulator_chunking(cuts):
    x = RNG.normal(size=(2, 300))
    whole = BinAccumulator((2,), 25).step(x)
    acc = BinAccumulator((2,), 25)
    edges = [0, *sorted(cuts), 300]
    parts = [acc.step(x[:, a:b]) for a, b in itertools.pairwise(edges)]
    np.testing.assert_allclose(np.concatenate([p[0] for p in parts], axis=-1), whole[0])
    np.testing.assert_allclose(np.concatenate([p[1] for p in parts], axis=-1), whole[1])
