"""The compiled biquad kernels equal scipy's sosfilt / sosfiltfilt bit for bit."""

import numpy as np
import pytest
from scipy import signal

from nexus.dsp.filters import StatefulFilter, bandpass_sos, highpass_sos, notch_sos, zero_phase


@pytest.mark.parametrize("shape", [(20, 300), (3, 2, 50), (9, 2), (4, 4, 33), (1, 5), (7, 2), (17, 1)])
@pytest.mark.parametrize("design", ["band4", "band2", "high1", "notch"])
def test_zero_phase_and_stateful_equal_scipy(shape, design):
    sos = {"band4": bandpass_sos(11.5, 15.5, 100.0), "band2": bandpass_sos(0.3, 1.5, 100.0, order=2),
           "high1": highpass_sos(0.3, 256.0, order=1), "notch": notch_sos(50.0, 256.0)}[design]
    x = np.random.default_rng(1).normal(size=shape) * 50.0
    n = shape[-1]
    padlen = min(3 * (2 * len(sos) + 1), max(n - 1, 0))
    if n >= 2:
        assert np.array_equal(zero_phase(x, sos), signal.sosfiltfilt(sos, x, axis=-1, padlen=padlen))
    f = StatefulFilter(sos, shape[:-1], init="step")
    y = np.concatenate([f.step(x[..., a : a + 3]) for a in range(0, n, 3)], axis=-1)
    zi = signal.sosfilt_zi(sos).reshape((len(sos),) + (1,) * (len(shape) - 1) + (2,)) * x[..., 0][None, ..., None]
    ref, zf = signal.sosfilt(sos, x, axis=-1, zi=zi)
    assert np.array_equal(y, ref)
    assert np.array_equal(f.zi, zf)
