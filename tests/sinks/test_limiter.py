"""The output limiter's gain law, pinned with values worked out by hand.

A constant (DC) block makes the applied gain directly visible: ``y / x`` is the gain ramp. The ceiling is
-20 dBFS (amplitude 0.1) unless said otherwise, so a block of peak 0.5 needs a gain of 0.1 / 0.5 = 0.2.
These tests check the gain itself, not only that the final clip keeps the output under the ceiling.
"""

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.sinks.limiter import HARD_CEILING_DBFS, Limiter, db_to_amp


def test_db_to_amp_known_values():
    assert db_to_amp(0.0) == pytest.approx(1.0)
    assert db_to_amp(-20.0) == pytest.approx(0.1, rel=1e-12)
    assert db_to_amp(-40.0) == pytest.approx(0.01, rel=1e-12)
    assert db_to_amp(20 * np.log10(0.5)) == pytest.approx(0.5, rel=1e-12)  # -6.02 dB halves
    np.testing.assert_allclose(db_to_amp([-20, -40]), [0.1, 0.01], rtol=1e-12)


def test_loud_block_is_scaled_uniformly_not_clipped():
    lim = Limiter(-20.0, fs=1000.0)
    x = 0.5 * np.sin(2 * np.pi * 5 * np.arange(200) / 1000)
    y = lim.process(x)
    assert y.dtype == np.float32
    # attack at once: the whole block gets the gain 0.1 / peak; a clipped sine would be flat-topped instead
    peak = np.max(np.abs(x))
    np.testing.assert_allclose(y, x * (0.1 / peak), rtol=1e-6, atol=1e-9)
    assert np.max(np.abs(y)) == pytest.approx(0.1, rel=1e-6)


def test_release_ramps_the_gain_linearly_at_the_release_rate():
    fs, n = 1000.0, 100
    lim = Limiter(-20.0, fs=fs, release_db_per_s=20.0)
    np.testing.assert_allclose(lim.process(np.full(n, 0.5)), 0.1, rtol=1e-6)  # gain 0.2
    # quiet block: the gain may rise by 20 dB/s * 0.1 s = 2 dB, i.e. by a factor 10**(2/20) = 10**0.1
    y = lim.process(np.full(n, 0.01)) / 0.01
    expected = np.linspace(0.2, 0.2 * 10**0.1, n)  # from the old gain at the first sample to the new at the last
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    # the next block starts where this one ended
    y = lim.process(np.full(n, 0.01)) / 0.01
    np.testing.assert_allclose(y, np.linspace(0.2 * 10**0.1, 0.2 * 10**0.2, n), rtol=1e-6)


def test_release_reaches_unity_and_stops_there():
    lim = Limiter(-20.0, fs=1000.0, release_db_per_s=20.0)
    lim.process(np.full(100, 0.5))  # gain 0.2; back to 1.0 needs 20*log10(5) = 13.98 dB = 6.99 blocks of 2 dB
    for k in range(1, 7):
        y = lim.process(np.full(100, 0.01)) / 0.01
        assert y[-1] == pytest.approx(0.2 * 10 ** (0.1 * k), rel=1e-6)
    y = lim.process(np.full(100, 0.01)) / 0.01
    assert y[-1] == pytest.approx(1.0, rel=1e-6)  # capped at unity, not 0.2 * 10**0.7 = 1.0024
    assert np.all(y <= 1.0 + 1e-6)
    np.testing.assert_allclose(lim.process(np.full(100, 0.01)), 0.01, rtol=1e-6)


def test_release_stops_at_what_the_block_allows():
    lim = Limiter(-20.0, fs=1000.0, release_db_per_s=20.0)
    lim.process(np.full(100, 0.5))  # gain 0.2
    # peak 0.4 allows 0.25, less than the 0.2 * 10**0.1 = 0.2518 that release would reach
    y = lim.process(np.full(100, 0.4)) / 0.4
    np.testing.assert_allclose(y, np.linspace(0.2, 0.25, 100), rtol=1e-6)


def test_default_release_is_20_db_per_second_at_48_khz():
    lim = Limiter(-20.0)
    lim.process(np.full(4800, 0.5))  # 0.1 s at 48 kHz, gain 0.2
    y = lim.process(np.full(4800, 0.01)) / 0.01
    assert y[0] == pytest.approx(0.2, rel=1e-6)
    assert y[-1] == pytest.approx(0.2 * 10**0.1, rel=1e-6)  # 2 dB in 0.1 s


def test_a_louder_block_attacks_at_once_and_a_quieter_one_does_not():
    lim = Limiter(-20.0, fs=1000.0)
    lim.process(np.full(50, 0.2))  # gain 0.5
    np.testing.assert_allclose(lim.process(np.full(50, 1.0)), 0.1, rtol=1e-6)  # gain 0.1 from the first sample
    y = lim.process(np.full(50, 0.4)) / 0.4  # allows 0.25, release is slower: rises from 0.1
    assert y[0] == pytest.approx(0.1, rel=1e-6)
    assert np.all(np.diff(y) > 0)


def test_stereo_blocks_share_one_gain_set_by_the_louder_channel():
    lim = Limiter(-20.0, fs=1000.0)
    x = np.column_stack([np.full(100, 0.5), np.full(100, -0.05)])
    y = lim.process(x)
    assert y.shape == (100, 2) and y.dtype == np.float32
    np.testing.assert_allclose(y, x * 0.2, rtol=1e-6)
    y = lim.process(np.full((100, 2), 0.01)) / 0.01
    np.testing.assert_allclose(y[:, 0], y[:, 1])
    np.testing.assert_allclose(y[:, 0], np.linspace(0.2, 0.2 * 10**0.1, 100), rtol=1e-6)


def test_rounding_overshoot_is_clipped_symmetrically():
    lim = Limiter(-20.0, fs=1000.0)
    c, p = lim.ceiling, 0.263
    assert p * (c / p) > c  # this peak's gain overshoots the ceiling by one rounding step, so the clip acts
    y = lim.process(np.array([p, -p, 0.05]))
    np.testing.assert_allclose(y, [c, -c, 0.05 * c / p], rtol=1e-6)


def test_non_finite_samples_become_silence_without_affecting_the_rest():
    lim = Limiter(-20.0)
    y = lim.process(np.array([np.nan, np.inf, -np.inf, 0.05, -0.03]))
    np.testing.assert_array_equal(y, np.array([0, 0, 0, 0.05, -0.03], dtype=np.float32))
    assert lim.n_limited == 0


def test_single_sample_and_empty_blocks():
    lim = Limiter(-20.0)
    y = lim.process([5.0])
    np.testing.assert_allclose(y, [0.1], rtol=1e-6)
    e = lim.process(np.zeros(0))
    assert e.shape == (0,) and e.dtype == np.float32
    z = lim.process(np.zeros(10))
    assert z.dtype == np.float32 and not z.any()


def test_n_limited_counts_input_samples_above_the_ceiling():
    lim = Limiter(-20.0)
    assert lim.n_limited == 0
    lim.process(np.array([0.5, -0.2, lim.ceiling, -lim.ceiling, 0.05]))  # at the ceiling is not above it
    assert lim.n_limited == 2
    lim.process(np.array([0.3, 0.01]))
    assert lim.n_limited == 3


def test_ceiling_is_the_lower_of_request_and_hard_ceiling():
    assert Limiter(-30.0).ceiling_dbfs == -30.0
    assert Limiter(-30.0).ceiling == pytest.approx(db_to_amp(-30.0))
    assert Limiter(0.0).ceiling_dbfs == HARD_CEILING_DBFS
    assert Limiter(0.0).ceiling == pytest.approx(db_to_amp(HARD_CEILING_DBFS))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ceiling_dbfs": 0.5}, r"'ceiling_dbfs': expected <= 0 dBFS"),
        ({"fs": 0.0}, r"'fs': expected > 0 Hz"),
        ({"release_db_per_s": 0.0}, r"'release_db_per_s': expected > 0 dB/s"),
        ({"release_db_per_s": -5.0}, r"'release_db_per_s': expected > 0 dB/s"),
    ],
    ids=["ceiling-above-full-scale", "fs-zero", "no-release", "negative-release"],
)
def test_invalid_settings_are_refused(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        Limiter(**kwargs)


def test_low_but_positive_rates_are_accepted():
    assert Limiter(fs=0.5).fs == 0.5
    assert Limiter(release_db_per_s=0.5).release_db_per_s == 0.5
