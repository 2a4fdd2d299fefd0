"""CLAS gating: a physiological maximum and minimum, corrupt samples, and timing on an irregular train."""

import numpy as np
import pytest
from pydantic import ValidationError

from nexus.dreamscape.controller import Controller
from nexus.dreamscape.schema import Clas, Limits, Program, Scene

FS = 100.0
N3 = np.eye(5)[3][None]


def _program(**clas):
    return Program(dreamscape=1, name="clas", scenes={"deep": Scene(clas=Clas(**clas))}, rules={"N3": "deep"},
                   limits=Limits(max_stim_per_min=60.0))


def _train(seconds, seed=0, amp=60.0):
    """Slow waves with cycle-to-cycle varying period and amplitude, plus a little noise; returns x, up-state times.

    Each cycle k of period P_k is ``-A_k cos(2π (t - s_k) / P_k)``: the down-state trough at its start s_k and
    the up-state peak at s_k + P_k / 2 (the hand-derived oracle). Value and slope are continuous across cycles
    where the amplitude is shared, so the oracle peak is exact up to the noise.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    x = np.zeros(t.size)
    s, peaks, periods = 0.0, [], []
    while s < seconds:
        p = float(rng.uniform(0.75, 1.5))
        a = amp * float(rng.uniform(0.8, 1.25))
        m = (t >= s) & (t < s + p)
        x[m] = -a * np.cos(2 * np.pi * (t[m] - s) / p)
        peaks.append(s + p / 2)
        periods.append(p)
        s += p
    return x + rng.normal(0, 3, t.size), np.array(peaks), np.array(periods)


def _clicks(x, program=None, step=25, latency=0.05):
    ctrl = Controller([program or _program()], FS, latency_s=latency)
    out = []
    for a in range(0, x.size, step):
        out += [c for c in ctrl.step((a + step) / FS, eeg=x[None, a : a + step], probs=N3) if c.kind == "click"]
    return np.array([c.t for c in out]), ctrl


def test_clicks_land_on_the_true_up_states_of_an_irregular_train():
    x, peaks, periods = _train(120)
    clicks, _ = _clicks(x)
    assert clicks.size >= 20
    k = np.searchsorted(peaks, clicks)
    k = np.where((k > 0) & ((k == peaks.size) | (np.abs(clicks - peaks[np.maximum(k - 1, 0)])
                                                  < np.abs(clicks - peaks[np.minimum(k, peaks.size - 1)]))), k - 1, k)
    err_deg = 360.0 * (clicks - peaks[k]) / periods[k]  # phase error against the nearest true up-state peak
    assert np.mean(np.abs(err_deg) <= 45.0) >= 0.9  # inside the 90° up-state window
    assert abs(np.mean(err_deg)) <= 15.0


@pytest.mark.parametrize("scale", [1e26, 1e200], ids=["1e28uV", "1e202uV"])
def test_absurd_amplitudes_never_click(scale):
    x, _, _ = _train(60)
    assert _clicks(x)[0].size > 0  # the same waves at a physiological size do click
    clicks, ctrl = _clicks(x * scale)  # an envelope of ~1e28 µV: a corrupt physical range
    assert clicks.size == 0
    assert not [d for d in ctrl.decisions if d.kind in ("click", "clas_rate")]


def test_above_the_physiological_maximum_no_click_and_a_hold_after():
    x, _, _ = _train(60, amp=60.0)
    big = x.copy()
    big[int(20 * FS) : int(30 * FS)] *= 12.0  # a 10-s stretch with an envelope of ~500 µV: an artefact
    clicks, _ = _clicks(big)
    assert clicks.size > 0
    assert not np.any((clicks > 20.0) & (clicks < 30.0 + 3.0))  # nothing during it, nor 3 s after
    assert np.any(clicks > 33.0)  # then CLAS goes on
    # the maximum is a setting: raised above the artefact, the stretch clicks again
    loose = _clicks(big, _program(max_amplitude_uv=1000.0))[0]
    assert np.any((loose > 20.0) & (loose < 30.0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_corrupt_samples_never_click_and_clicks_resume(bad):
    x, _, _ = _train(60)
    y = x.copy()
    y[int(20 * FS) : int(25 * FS) : 7] = bad  # scattered corrupt samples for 5 s
    with np.errstate(all="raise"):  # no overflow or invalid operation anywhere in the CLAS path
        clicks, _ = _clicks(y)
    assert not np.any((clicks > 20.0) & (clicks < 25.0 + 1.0))  # and the estimator's warm-up after the last
    assert np.any(clicks > 27.0) and np.any(clicks < 20.0)


def test_small_waves_and_shallow_down_states_do_not_click():
    x, _, _ = _train(60, amp=12.0)  # an envelope of ~12 µV: below the minimum
    assert _clicks(x)[0].size == 0
    x, _, _ = _train(60, amp=60.0)
    # a down-state threshold deeper than the waves (~60 µV) forbids every click; the default allows them
    assert _clicks(x, _program(min_down_state_uv=150.0))[0].size == 0
    assert _clicks(x, _program())[0].size > 0


def test_gate_settings_are_validated():
    with pytest.raises(ValidationError, match="max_amplitude_uv"):
        Clas(max_amplitude_uv=10.0)
    with pytest.raises(ValidationError, match="min_down_state_uv"):
        Clas(min_down_state_uv=-5.0)
