"""The recorder's stage probabilities: ``round_rows`` gives Python's ``round(v, n)`` of every value, float for float.

An epoch close of every bed rounds thousands of probabilities in one tick; NumPy's rounding is used where it agrees
with Python's (the journal's values must not change), and Python's where a value sits at a half.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nexus.facility.recorder import round_rows


def _python(x: np.ndarray, n: int) -> list[list[float]]:
    return [[round(v, n) for v in row] for row in np.asarray(x, dtype=np.float64).tolist()]


def _same(a: list[list[float]], b: list[list[float]]) -> bool:  # bit for bit, NaN equal to NaN, -0.0 not 0.0
    return all(x.hex() == y.hex() if not (math.isnan(x) and math.isnan(y)) else True
               for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))


def _halves(n: int) -> np.ndarray:
    """Values written with a 5 in the decimal after the n-th (0.12345, 0.00005, ...) and the floats next to them."""
    k = np.arange(0, 10**n, 7, dtype=np.float64)
    mid = (k + 0.5) / 10.0**n
    return np.concatenate([mid, np.nextafter(mid, 0.0), np.nextafter(mid, 1.0)])


@pytest.mark.parametrize("n", [3, 4], ids=["3-digits", "4-digits"])
def test_round_rows_is_pythons_round_at_and_beside_every_half(n):
    x = _halves(n).reshape(-1, 3)
    assert _same(round_rows(x, n), _python(x, n))
    # the values where NumPy alone would differ are there (0.12345 -> 0.1234 in NumPy, 0.1235 in Python)
    assert np.round(x, n).tolist() != _python(x, n)


def test_round_rows_of_probabilities_odd_values_and_float32():
    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.ones(5), size=2000)
    assert _same(round_rows(probs, 4), _python(probs, 4))
    f32 = probs.astype(np.float32)  # the stager's single-precision rows: rounded as the doubles they are
    assert _same(round_rows(f32, 4), _python(f32, 4))
    odd = np.array([[-0.00004, -0.12345, 1e12 + 0.12345, 2.5e-5, 0.0],
                    [np.nan, np.inf, -np.inf, 0.99995, 1.0]])
    assert _same(round_rows(odd, 4), _python(odd, 4))
    assert round_rows(np.empty((0, 5)), 4) == []


def test_round_rows_calls_python_only_for_the_values_beside_a_half(monkeypatch):
    from nexus.facility import recorder

    sent: list[float] = []

    def counting_round(v: float, n: int) -> float:
        sent.append(v)
        return round(v, n)

    monkeypatch.setattr(recorder, "round", counting_round, raising=False)  # the module's name shadows the builtin
    probs = np.random.default_rng(3).dirichlet(np.ones(5), size=2000)
    assert _same(round_rows(probs, 4), _python(probs, 4))
    assert len(sent) < 10  # not a call per value: at most a stray probability beside a half
    sent.clear()
    grid = _halves(4).reshape(-1, 3)  # every value within an ulp of a half
    assert _same(round_rows(grid, 4), _python(grid, 4))
    assert len(sent) == grid.size
