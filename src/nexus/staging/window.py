"""YASA's staging features of a window, from block statistics: the one implementation, offline and live.

A window of band-passed 100-Hz samples is reduced to per-block sufficient statistics
(:func:`~nexus.staging._kernels.block_stats`: power sums, difference sums, sign changes, ordinal
pattern counts, quartiles, Higuchi lag sums) and Welch segments (5 s, 2.5-s steps, Hamming). The
segments' periodograms give a median PSD and its band integrals (:func:`band_integrals`), and the
features come from the blocks' sums and the integrals
(:func:`~nexus.staging._kernels.window_features`):

* offline (:func:`epoch_features`): each 30-s epoch is one block that stands alone (``edge``),
  so the features are YASA's per-epoch definitions exactly (equal to antropy's and to scipy's
  Welch, tested against both);
* live (:class:`~nexus.staging.live.blocks.BlockStatistics`): the last six 5-s blocks of a
  stream, each with the samples just before it, whose sums give the features of the last 30 s
  with every sample's difference and pattern counted across the block joins, and Higuchi's
  pairs per offset taken as N / k.

numpy only at import; the offline path imports only scipy.integrate (for the band weights), not scipy.signal.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]

FS: float = 100.0
"""Sampling rate of the features, in Hz."""
SEG = 500
"""Welch segment: 5 s at 100 Hz (frequency resolution 0.2 Hz)."""
STEP = 250
"""Welch step: 2.5 s."""
N_BINS = 151
"""PSD bins kept, 0..30 Hz at 0.2 Hz."""
KMAX = 10
"""Higuchi's largest lag."""

BANDS: tuple[tuple[float, float, str], ...] = (
    (0.4, 1.0, "sdelta"),
    (1.0, 4.0, "fdelta"),
    (4.0, 8.0, "theta"),
    (8.0, 12.0, "alpha"),
    (12.0, 16.0, "sigma"),
    (16.0, 30.0, "beta"),
)
"""Relative-power bands in Hz (edges included), as YASA."""

# layout of the per-block statistics (one row of block_stats' output)
S_POW = slice(0, 4)  # Σx, Σx², Σx³, Σx⁴
S_DX = slice(4, 6)  # Σdx, Σdx²
S_DDX = slice(6, 8)  # Σddx, Σddx²
S_NZC, S_NZCD = 8, 9  # sign changes of x and of dx
S_PERM = slice(10, 18)  # counts of the 8 order-3 codes
S_Q = slice(18, 20)  # block q25, q75
S_HIG = slice(20, 20 + KMAX)  # Higuchi lag sums, k = 1..KMAX
S_NAN = 20 + KMAX  # the block had missing samples
N_STATS = S_NAN + 1

_CHUNK = 32  # epochs whose segments and spectra are computed together (they stay in the CPU cache)


def median_bias(n: int) -> float:
    """Bias of the median of ``n`` χ²₂ periodogram values relative to their mean (as scipy's Welch)."""
    ii = 2.0 * np.arange(1.0, (n - 1) // 2 + 1)
    return float(1.0 + np.sum(1.0 / (ii + 1.0) - 1.0 / ii))


@lru_cache(maxsize=4)
def median_pairs(n: int) -> npt.NDArray[np.int64]:
    """Comparators of the selection network for the median of ``n`` segments."""
    from nexus.staging._kernels import median_network

    return median_network(n)


@lru_cache(maxsize=1)
def hamming() -> FloatArray:
    """The periodic Hamming window of a Welch segment, equal bit for bit to scipy's ``get_window("hamming", SEG)``.

    The same operations as scipy's general cosine window (tested equal), without importing
    scipy.signal, which costs a fresh offline process most of a second.
    """
    fac = np.linspace(-np.pi, np.pi, SEG + 1, dtype=np.float64)
    w = np.zeros(SEG + 1, dtype=np.float64)
    for k, a in enumerate((0.54, 1.0 - 0.54)):
        w += a * np.cos(k * fac)
    return w[:-1]


@lru_cache(maxsize=1)
def band_weights() -> FloatArray:
    """Weights over the PSD bins 0.4..30 Hz: Simpson's rule of the broad band and of each band, trapezoid rule.

    Rows: total power (Simpson), the bands of :data:`BANDS` (Simpson over their bins, edges
    included), absolute power (trapezoid); the rules are linear, so applying them to the
    identity gives their weights.
    """
    from scipy.integrate import simpson

    n = N_BINS - 2
    f_in = np.arange(2, N_BINS) * 0.2
    w = np.zeros((len(BANDS) + 2, n))
    eye = np.eye(n)
    w[0] = simpson(eye, dx=0.2, axis=-1)
    for i, (lo, hi, _name) in enumerate(BANDS):
        band = np.flatnonzero((f_in >= lo - 1e-9) & (f_in <= hi + 1e-9))
        w[1 + i, band] = simpson(eye[np.ix_(band, band)], dx=0.2, axis=-1)
    w[-1] = np.trapezoid(eye, dx=0.2, axis=-1)
    return w


def epoch_features(epochs: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """The :data:`~nexus.staging._kernels.WINDOW_FEATURES` of every epoch, each one block on its own.

    Parameters
    ----------
    epochs : ndarray, shape (n_rows, n_samples)
        Band-passed epochs in µV at :data:`FS` (30-s epochs: 3000 samples, 11 Welch segments).

    Returns
    -------
    features : ndarray, shape (n_rows, 21)
        Columns :data:`~nexus.staging._kernels.WINDOW_FEATURES`; NaN where a ratio is undefined.
    nan_rows : ndarray of bool, shape (n_rows,)
        All False (missing samples are the caller's artefact rule).
    """
    from nexus.staging import _kernels as K

    x = np.asarray(epochs, dtype=np.float64)
    rows, n = x.shape
    n_seg = (n - SEG) // STEP + 1 if n >= SEG else 0
    if n_seg % 2 == 0:
        raise InvalidInputError(
            f"Epochs of {n} samples give {n_seg} Welch segments of {SEG}; the features need an odd number "
            f"(30-s epochs at {FS:g} Hz: 3000 samples)."
        )
    w = hamming()
    scale = 2.0 / (FS * (w * w).sum())
    pairs, weights, inv_bias = median_pairs(n_seg), band_weights(), 1.0 / median_bias(n_seg)
    slots = np.arange(n_seg)
    starts = KMAX + STEP * slots
    stats = np.zeros((rows, 1, N_STATS))  # column S_NAN stays 0
    ints = np.empty((rows, len(BANDS) + 2))
    chunk = min(rows, _CHUNK)
    y = np.empty((chunk, KMAX + n))
    seg = np.empty((chunk, n_seg, SEG))
    psd = np.empty((chunk, n_seg, N_BINS))
    med = np.empty((chunk, N_BINS))
    for a in range(0, rows, _CHUNK):
        m = min(a + _CHUNK, rows) - a
        # the block after KMAX copies of its first sample: with edge=True nothing before the
        # block counts; copies of the first sample keep the terms dropped from the sums small
        y[:m, KMAX:] = x[a : a + m]
        y[:m, :KMAX] = x[a : a + m, :1]
        K.block_stats(y[:m], KMAX, n, KMAX, stats[a : a + m, 0], starts, w, seg[:m], True)
        K.power(np.fft.rfft(seg[:m], axis=-1), N_BINS, scale, psd[:m], slots)
        K.median(psd[:m], pairs, med[:m])
        K.weighted_sums(med[:m], 2, weights, inv_bias, ints[a : a + m])
    feats = np.empty((rows, len(K.WINDOW_FEATURES)))
    nan_rows = np.empty(rows, dtype=bool)
    K.window_features(stats, ints, n, KMAX, feats, nan_rows, True)
    return feats, nan_rows
