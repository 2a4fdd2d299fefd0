"""The CLAS calibration's reference band (dsp.phase.reference_band): the compiled pass on short rows."""

import numpy as np
import pytest
from scipy import signal

from nexus.dsp.phase import SO_BAND_HZ, reference_band


@pytest.mark.parametrize("fs", [100.0, 256.0])
@pytest.mark.parametrize(("rows", "seconds"), [(1, 9.0), (3, 9.0), (20, 9.0), (2, 0.5), (4, 200.0)])
def test_reference_band_equals_scipy_sosfiltfilt(fs, rows, seconds):
    # the former form: scipy's sosfiltfilt with its default (odd, 3 x taps) padding, bit for bit
    x = np.random.default_rng(rows).normal(0.0, 40.0, (rows, round(seconds * fs) + 1))
    sos = signal.butter(2, SO_BAND_HZ, btype="bandpass", fs=fs, output="sos")
    want = signal.sosfiltfilt(sos, x, axis=-1)
    np.testing.assert_array_equal(reference_band(x, fs), want)
    np.testing.assert_array_equal(reference_band(x[0], fs), want[0])  # one row, 1-D


def test_reference_band_of_a_row_too_short_to_pad_is_refused_as_by_scipy():
    with pytest.raises(ValueError, match="padlen"):
        reference_band(np.zeros((2, 15)), 100.0)


@pytest.mark.parametrize("f_hz", [0.3, 1.0, 3.0])
def test_reference_band_passes_a_sine_by_its_squared_gain(f_hz):
    # an independent oracle: forward-backward filtering scales a steady sine by |H(f)|^2 with no phase shift
    fs = 100.0
    t = np.arange(round(20 * fs)) / fs
    x = np.stack([np.sin(2 * np.pi * f_hz * t), np.cos(2 * np.pi * f_hz * t)])
    sos = signal.butter(2, SO_BAND_HZ, btype="bandpass", fs=fs, output="sos")
    _, h = signal.sosfreqz(sos, worN=[f_hz], fs=fs)
    mid = slice(round(8 * fs), round(12 * fs))  # far from the ends' transients
    np.testing.assert_allclose(reference_band(x, fs)[:, mid], np.abs(h[0]) ** 2 * x[:, mid], atol=2e-3)
