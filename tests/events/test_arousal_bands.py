"""The arousal detector's per-second EEG features against scipy: the fast power of a sine is its power through the
documented 8-12 Hz and 16-30 Hz Butterworth band-passes (-3 dB edges, two order-4 halves each, summed before
squaring) and the sigma power its power through 11-16 Hz, offline and block by block alike."""

import numpy as np
import pytest
from scipy import signal

from nexus.events.arousals import _Features, _night_features

FS = 256.0
A = 20.0  # µV: a sine's mean square is A² / 2


def _gain(f, lo, hi):
    sos = signal.butter(4, [lo, hi], btype="bandpass", fs=FS, output="sos")
    return signal.sosfreqz(sos, worN=[f], fs=FS)[1][0]


@pytest.mark.parametrize("f", [6.0, 10.0, 14.0, 20.0, 29.0, 31.0, 40.0])
def test_fast_and_sigma_power_of_a_sine_are_its_power_through_the_documented_bands(f):
    t = np.arange(int(30 * FS)) / FS
    x = (A * np.sin(2 * np.pi * f * t))[None]
    fast_ref = A**2 / 2 * abs(_gain(f, 8.0, 12.0) + _gain(f, 16.0, 30.0)) ** 2
    sigma_ref = A**2 / 2 * abs(_gain(f, 11.0, 16.0)) ** 2
    fast, sigma, _ = _night_features(x, np.zeros_like(x), FS)
    live = _Features(1, FS)
    got = [live.step(b, np.zeros_like(b)) for b in np.array_split(x, range(100, x.shape[1], 100), axis=1)]
    live_fast = np.concatenate([g[0] for g in got], axis=1)
    for series in (fast[0, 10:], live_fast[0, 10:]):  # after the filters' start
        np.testing.assert_allclose(series, fast_ref, rtol=0.01, atol=1e-3)
    np.testing.assert_allclose(sigma[0, 10:], sigma_ref, rtol=0.01, atol=1e-3)
