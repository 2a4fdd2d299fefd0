"""Moving-window statistics through cumulative sums, plus resampling and envelopes.

Every function works along the last axis and is batched over any leading axes, with cost
independent of the window length (one cumulative sum per call).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt
from scipy import signal

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "BinAccumulator",
    "corr_from_moments",
    "cumulative",
    "envelope",
    "moving_corr",
    "moving_mean",
    "moving_rms",
    "resample",
    "runs",
    "window_mean",
    "window_samples",
]


def window_samples(seconds: float, fs: float, minimum: int = 1) -> int:
    """Length of a window of ``seconds`` at ``fs`` Hz, in samples (at least ``minimum``)."""
    return max(int(minimum), round(float(seconds) * float(fs)))


def _bounds(n_total: int, n_win: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    start = np.arange(n_total) - n_win // 2
    return np.clip(start, 0, n_total), np.clip(start + n_win, 0, n_total)


def cumulative(x: npt.ArrayLike) -> FloatArray:
    """Cumulative sums along the last axis with a leading 0 (float64): shape (..., n + 1).

    One such array serves :func:`window_mean` for any number of window lengths.
    """
    a = np.asarray(x, dtype=np.float64)
    c = np.empty((*a.shape[:-1], a.shape[-1] + 1))
    c[..., 0] = 0.0
    np.cumsum(a, axis=-1, out=c[..., 1:])
    return c


def window_mean(c: FloatArray, n: int) -> FloatArray:
    """Centred moving average over ``n`` samples from cumulative sums ``c`` (see :func:`cumulative`).

    Equal to :func:`moving_mean` of the summed signal (same edge rule, same arithmetic).
    """
    n = int(n)
    if n < 1:
        raise InvalidInputError(f"Invalid value for 'n': expected a window of >= 1 sample, got {n}.")
    size = c.shape[-1] - 1
    if size <= 0:
        return np.zeros((*c.shape[:-1], 0))
    h = n // 2
    if size < n:  # every output is an edge case
        lo, hi = _bounds(size, n)
        return (c[..., hi] - c[..., lo]) / (hi - lo)
    out = np.empty((*c.shape[:-1], size))
    # interior: full windows, as contiguous slices (no gathers on the hot path)
    np.subtract(c[..., n:], c[..., : size - n + 1], out=out[..., h : size - n + h + 1])
    out[..., h : size - n + h + 1] /= n
    edge = np.r_[0:h, size - n + h + 1 : size]
    if edge.size:  # the windows clipped by the ends of the data (the bounds of these samples only)
        lo = np.clip(edge - h, 0, size)
        hi = np.clip(edge - h + n, 0, size)
        out[..., edge] = (c[..., hi] - c[..., lo]) / (hi - lo)
    return out


def moving_mean(x: npt.ArrayLike, n: int) -> FloatArray:
    """Centred moving average over ``n`` samples along the last axis.

    Near the edges the mean is taken over the samples available, so the output has the
    input's shape and no edge bias towards zero.
    """
    a = np.asarray(x, dtype=np.float64)
    n = int(n)
    if n < 1:
        raise InvalidInputError(f"Invalid value for 'n': expected a window of >= 1 sample, got {n}.")
    if a.shape[-1] == 0:
        return a.copy()
    return window_mean(cumulative(a), n)


def moving_rms(x: npt.ArrayLike, n: int) -> FloatArray:
    """Centred moving root mean square over ``n`` samples (same units as ``x``)."""
    a = np.asarray(x, dtype=np.float64)
    return np.sqrt(np.maximum(moving_mean(a * a, n), 0.0))


def moving_corr(x: npt.ArrayLike, y: npt.ArrayLike, n: int) -> FloatArray:
    """Centred moving Pearson correlation of ``x`` and ``y`` over ``n`` samples (-1..1; 0 where flat)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape:
        raise InvalidInputError(f"Cannot correlate arrays of shapes {a.shape} and {b.shape}: expected equal shapes.")
    c = cumulative(np.stack([a, b, a * b, a * a, b * b]))
    return corr_from_moments(*window_mean(c, n))


def corr_from_moments(ma: FloatArray, mb: FloatArray, mab: FloatArray, maa: FloatArray, mbb: FloatArray) -> FloatArray:
    """Pearson correlation (-1..1; 0 where flat) from windowed means of x, y, x·y, x² and y²."""
    cov = mab - ma * mb
    va = np.maximum(maa - ma * ma, 0.0)
    vb = np.maximum(mbb - mb * mb, 0.0)
    den = np.sqrt(va * vb)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 1e-12, cov / np.where(den > 1e-12, den, 1.0), 0.0)
    return np.clip(r, -1.0, 1.0)


def resample(x: npt.ArrayLike, fs: float, target_fs: float) -> FloatArray:
    """Resample along the last axis from ``fs`` to ``target_fs`` Hz (polyphase, anti-aliased)."""
    fs = check_number("fs", fs, gt=0, unit="Hz")
    target_fs = check_number("target_fs", target_fs, gt=0, unit="Hz")
    a = np.asarray(x, dtype=np.float64)
    if fs == target_fs:
        return a.copy()
    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    return np.asarray(signal.resample_poly(a, ratio.numerator, ratio.denominator, axis=-1))


def envelope(x: npt.ArrayLike) -> FloatArray:
    """Amplitude envelope (modulus of the analytic signal) along the last axis."""
    a = np.asarray(x, dtype=np.float64)
    if a.shape[-1] == 0:
        return a.copy()
    return np.abs(signal.hilbert(a, axis=-1))


def runs(mask: npt.ArrayLike) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Find runs of True along the last axis of a boolean array.

    Returns
    -------
    row, start, stop : ndarray of int
        For each run: the flat index of its row (over the leading axes, C order), its first
        sample and one past its last sample.
    """
    m = np.asarray(mask, dtype=bool)
    m2 = m.reshape(-1, m.shape[-1]) if m.ndim else m.reshape(1, 1)
    # each row padded with False at both ends: its changes alternate start, stop, start, stop…
    padded = np.zeros((m2.shape[0], m2.shape[1] + 2), dtype=bool)
    padded[:, 1:-1] = m2
    row, at = np.nonzero(padded[:, 1:] != padded[:, :-1])
    return row[0::2], at[0::2], at[1::2]


class BinAccumulator:
    """Sums and sums of squares over consecutive bins of ``n_per_bin`` samples, fed block by block.

    Batched over leading axes; samples left over at the end of a block are carried to the next,
    so feeding a stream in chunks gives the same bins as feeding it whole.

    Parameters
    ----------
    leading_shape : tuple of int
        Shape of the axes before the sample axis.
    n_per_bin : int
        Samples per bin (e.g. ``round(fs)`` for one-second bins).
    """

    def __init__(self, leading_shape: tuple[int, ...], n_per_bin: int) -> None:
        if int(n_per_bin) < 1:
            raise InvalidInputError(f"Invalid value for 'n_per_bin': expected >= 1, got {n_per_bin}.")
        self.n = int(n_per_bin)
        self.leading_shape = tuple(leading_shape)
        # the open bin's samples, filled in place (no re-copy of the carried samples per block)
        self._open = np.zeros((*self.leading_shape, self.n))
        self._fill = 0
        self._sq = np.zeros(0)  # scratch for the squares of a completed open bin

    def step(self, block: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Add samples; return ``(sum, sum_of_squares)`` of each completed bin, shape (*leading, n_bins)."""
        x = np.asarray(block, dtype=np.float64)
        n, size = x.shape[-1], self.n
        sums: list[FloatArray] = []
        squares: list[FloatArray] = []
        pos = 0
        if self._fill:
            pos = min(size - self._fill, n)
            self._open[..., self._fill : self._fill + pos] = x[..., :pos]
            self._fill += pos
            if self._fill < size:
                empty = np.zeros((*self.leading_shape, 0))
                return empty, empty.copy()
            # the open bin is full: reduce it where it lies (no copy), before it takes new samples
            if self._sq.shape != self._open.shape:
                self._sq = np.empty_like(self._open)
            full = self._open[..., None, :]
            sums.append(full.sum(axis=-1))
            squares.append(np.multiply(full, full, out=self._sq[..., None, :]).sum(axis=-1))
            self._fill = 0
        k = (n - pos) // size
        if k:
            full = x[..., pos : pos + k * size].reshape(*self.leading_shape, k, size)
            sums.append(full.sum(axis=-1))
            squares.append((full * full).sum(axis=-1))
        rest = n - pos - k * size
        if rest:
            self._open[..., :rest] = x[..., pos + k * size :]
            self._fill = rest
        if not sums:
            empty = np.zeros((*self.leading_shape, 0))
            return empty, empty.copy()
        if len(sums) == 1:
            return sums[0], squares[0]
        return np.concatenate(sums, axis=-1), np.concatenate(squares, axis=-1)

    def reset(self, index: npt.ArrayLike) -> None:
        """Drop the carried samples of some rows (a fresh stream starts at a bin boundary)."""
        self._open[np.asarray(index, dtype=np.intp)] = 0.0
