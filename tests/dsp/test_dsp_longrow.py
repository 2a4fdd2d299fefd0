"""Whole-night filters (nexus.dsp.longrow) are bit-identical to scipy's, whatever the shape."""

import numpy as np
import pytest
from scipy import signal

from nexus.core.errors import InvalidInputError
from nexus.dsp.filters import bandpass_sos, highpass_sos, zero_phase
from nexus.dsp.longrow import causal_long, causal_stretches, zero_phase_any, zero_phase_long

FS = 256.0
BROAD, SIGMA = bandpass_sos(1.0, 30.0, fs=FS, order=4), bandpass_sos(11.5, 15.5, fs=FS, order=4)
SLOW = bandpass_sos(0.3, 1.5, fs=FS, order=2)


def _night(shape, seed=0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(size=shape), axis=-1) + 40.0  # drifting, with an offset: the padding matters


@pytest.mark.parametrize("shape", [(1,), (2,), (3,), (50,), (70_000,), (2, 70_000), (1, 2, 9_000)], ids=str)
def test_zero_phase_long_equals_sosfiltfilt(shape):
    x = _night(shape)
    got = zero_phase_long(x, BROAD, SIGMA)
    for sos, g in zip((BROAD, SIGMA), got, strict=True):
        padlen = min(3 * (2 * len(sos) + 1), shape[-1] - 1)
        assert g.shape == x.shape
        assert np.array_equal(g, signal.sosfiltfilt(sos, x, axis=-1, padlen=padlen))


@pytest.mark.parametrize("shape", [(1,), (5,), (70_000,), (3, 20_000)], ids=str)
def test_causal_long_equals_sosfilt_from_rest(shape):
    x = _night(shape, seed=1)
    emg = highpass_sos(10.0, fs=FS)
    (a, b), (c,) = causal_long(x, BROAD, SIGMA), causal_long(x, emg)
    assert np.array_equal(a, signal.sosfilt(BROAD, x, axis=-1))
    assert np.array_equal(b, signal.sosfilt(SIGMA, x, axis=-1))
    assert np.array_equal(c, signal.sosfilt(emg, x, axis=-1))


@pytest.mark.parametrize("shape", [(1, 1), (1, 70_000), (16, 300)], ids=str)
def test_zero_phase_any_mixes_section_counts_and_shapes(shape):
    # filters of 4 and 2 sections in one call; short rows go to the tiled kernels, long ones to the lanes
    x = _night(shape, seed=2)
    got = zero_phase_any(x, BROAD, SLOW)
    assert np.array_equal(got[0], zero_phase(x, BROAD))
    assert np.array_equal(got[1], zero_phase(x, SLOW))


def test_bad_filters_are_refused_by_name():
    with pytest.raises(InvalidInputError, match="second-order sections of one shape"):
        zero_phase_long(np.zeros(100), BROAD, SLOW)
    with pytest.raises(InvalidInputError, match="second-order sections of one shape"):
        zero_phase_long(np.zeros(100), np.ones((2, 5)), np.ones((2, 5)))  # one shape, but not sections
    with pytest.raises(InvalidInputError, match=r"^Invalid signal: expected samples along the last axis"):
        causal_long(np.float64(1.0), BROAD)
    with pytest.raises(InvalidInputError, match=r"^Invalid signal: .* got a scalar"):
        zero_phase_any(np.float64(1.0), BROAD)


def test_an_empty_signal_gives_empty_outputs():
    a, b = zero_phase_long(np.zeros((3, 0)), BROAD, SIGMA)
    assert a.shape == b.shape == (3, 0)


@pytest.mark.parametrize(("shape", "route"), [
    ((16, 300), "tiles"), ((8, 300), "tiles"), ((7, 300), "lanes"), ((300,), "lanes"), ((1, 2), "lanes"),
    ((1, 1), "scipy"), ((9, 1 << 16), "tiles"), ((8, (1 << 16) + 1), "lanes"), ((1, 2, 9_000), "lanes"),
], ids=str)
@pytest.mark.parametrize("filters", [(BROAD, SIGMA), (BROAD, SLOW)], ids=["same-sections", "mixed"])
def test_zero_phase_any_sends_few_long_rows_to_the_lanes_and_many_short_ones_to_the_tiles(
        monkeypatch, shape, route, filters):
    import nexus.dsp.longrow as longrow

    seen: list[str] = []
    tiles, lanes = longrow.zero_phase, longrow.zero_phase_long
    monkeypatch.setattr(longrow, "zero_phase", lambda x, s: seen.append("tiles" if x.shape[-1] > 1 else "scipy")
                        or tiles(x, s))
    monkeypatch.setattr(longrow, "zero_phase_long", lambda x, *s: seen.append("lanes") or lanes(x, *s))
    x = _night(shape, seed=3)
    got = zero_phase_any(x, *filters)
    assert set(seen) == {route}
    for sos, g in zip(filters, got, strict=True):
        assert np.array_equal(g, zero_phase(x, sos))


@pytest.mark.parametrize(("shape", "stretch", "stop"), [((70_000,), 3_000, None), ((3, 20_000), 7_001, 19_500),
                                                        ((1, 5), 2, None), ((2, 10), 4, 0)], ids=str)
def test_causal_stretches_carry_the_state_into_bit_identical_pieces(shape, stretch, stop):
    x = _night(shape, seed=4)
    whole = [signal.sosfilt(s, x, axis=-1)[..., :stop] for s in (BROAD, SIGMA)]
    starts, pieces = [], [[], []]
    for a, outs in causal_stretches(x, BROAD, SIGMA, stretch=stretch, stop=stop):
        starts.append(a)
        for p, o in zip(pieces, outs, strict=True):
            assert o.shape[:-1] == x.shape[:-1] and o.shape[-1] <= stretch
            p.append(o)
    n = whole[0].shape[-1]
    assert starts == list(range(0, n, stretch))
    for w, p in zip(whole, pieces, strict=True):
        got = np.concatenate(p, axis=-1) if p else np.zeros((*x.shape[:-1], 0))
        assert np.array_equal(got, w)
