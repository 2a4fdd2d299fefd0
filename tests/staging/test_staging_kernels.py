import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=4, max_size=600),
    st.booleans(),
)
def test_compiled_quartiles_equal_numpy_percentiles(values, coarse):
    from nexus.staging._select import quartiles

    x = np.asarray(values)
    if coarse:
        x = np.round(x / 2e5)  # few distinct values: long runs of ties
    out = np.empty(2)
    quartiles(x.copy(), x.size, out)
    np.testing.assert_allclose(out, np.percentile(x, [25, 75]), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("n", [3, 5, 11])
def test_median_network_selects_the_median_of_every_binary_input(n):
    from nexus.staging._kernels import median_network

    pairs = median_network(n)
    codes = np.arange(2**n)
    v = (codes[:, None] >> np.arange(n)[None, :]) & 1  # every 0/1 input (0-1 principle)
    for i, j in pairs:
        lo, hi = np.minimum(v[:, i], v[:, j]), np.maximum(v[:, i], v[:, j])
        v[:, i], v[:, j] = lo, hi
    np.testing.assert_array_equal(v[:, n // 2], np.sort((codes[:, None] >> np.arange(n)) & 1, axis=1)[:, n // 2])


def test_compiled_median_equals_numpy_median():
    from nexus.staging._kernels import median, median_network

    x = np.random.default_rng(0).gamma(1.0, size=(7, 11, 151)).astype(np.float32)
    x[2, :, :5] = 1.0  # ties
    out = np.empty((7, 151), dtype=np.float32)
    median(x, median_network(11), out)
    np.testing.assert_array_equal(out, np.median(x, axis=1))


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e30, 1e30, allow_nan=False), st.integers(-3, 3))
def test_float32_thresholds_make_the_same_decisions(t, ulps):
    from nexus.staging.model import _float32_floor

    t32 = _float32_floor(np.array([t, np.inf]))
    x = np.float32(t)  # the float32 values next to the threshold decide
    for _ in range(abs(ulps)):
        x = np.nextafter(x, np.float32(np.sign(ulps) * np.inf))
    assert (np.float64(x) <= np.float64(t)) == (x <= t32[0])
    assert t32[1] == np.inf


def test_layout_generic_biquads_equal_scipy_for_float32_views():
    from scipy import signal

    from nexus.dsp._biquad import sosfilt_rows

    sos = signal.butter(8, 34.0, fs=256.0, output="sos")
    x = np.random.default_rng(2).normal(0, 40, size=(3, 21, 300)).astype(np.float32).transpose(1, 0, 2)
    rows = x.reshape(-1, 300)[::2]  # a strided view of float32 rows
    zi = np.random.default_rng(3).normal(size=(len(sos), rows.shape[0], 2))
    out = np.empty(rows.shape)
    ref, zf = signal.sosfilt(sos, rows.astype(np.float64), axis=-1, zi=zi)
    sosfilt_rows(rows, sos, zi, out)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(zi, zf)


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_fused_multiply_add_biquads_equal_scipy_within_rounding(backward):
    from scipy import signal

    from nexus.dsp._biquad import WIDTH, cascade_fma

    sos = signal.butter(8, 34.0, fs=256.0, output="sos")
    rng = np.random.default_rng(4)
    tile = rng.normal(0, 40, size=(400, WIDTH)) + 300.0  # an offset, as electrodes have
    zi = rng.normal(size=(len(sos), WIDTH, 2))
    rows = tile.T[:, ::-1] if backward else tile.T
    ref, zf = signal.sosfilt(sos, rows, axis=-1, zi=zi)
    z0, z1 = zi[..., 0].copy(), zi[..., 1].copy()
    cascade_fma(tile, sos, z0, z1, 0, len(tile), backward)
    out = tile.T[:, ::-1] if backward else tile.T
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(np.stack([z0, z1], axis=-1), zf, rtol=1e-12, atol=1e-9)
