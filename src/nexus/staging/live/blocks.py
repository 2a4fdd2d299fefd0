"""The live stager's block statistics: per-5-s sufficient statistics and a Welch PSD ring of the last 30 s.

Each 5-s block of filtered samples is reduced, in one compiled pass per row
(:func:`~nexus.staging._kernels.block_stats`), to power sums, difference sums, sign changes,
ordinal-pattern counts, quartiles and Higuchi curve lengths, and to the periodograms of its
Welch segments (5 s, 2.5-s steps). The features of the last 30 s (YASA's per-epoch features)
come from the six latest blocks' statistics and the median of the 11 latest periodograms
(:meth:`BlockStatistics.window_features`), so that each update touches only the newest 5 s.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft

from nexus.staging import _kernels as K
from nexus.staging import features as F
from nexus.staging._kernels import WINDOW_FEATURES
from nexus.staging.live._layout import (
    _BLOCK,
    _BLOCKS_PER_EPOCH,
    _KMAX,
    _N_BINS,
    _N_SEG,
    _SEG,
    _STEP,
    FloatArray,
    _any,
)
from nexus.staging.offline import FLAT_STD_UV
from nexus.staging.window import N_STATS, S_NAN, band_weights, hamming, median_bias, median_pairs

_CHUNK = 128  # rows whose block statistics and spectra are computed together (their segments stay in cache)


class BlockStatistics:
    """Statistics and spectra of the latest 5-s blocks of every (session, kind).

    Parameters
    ----------
    n_sessions : int
        Sessions.
    kinds : tuple of str
        Channel kinds, in buffer-row order.
    """

    def __init__(self, n_sessions: int, kinds: tuple[str, ...]) -> None:
        self.n_sessions = n_sessions
        self.kinds = kinds
        s, c = n_sessions, len(kinds)
        self._blocks_since_reset = np.full(s, _BLOCKS_PER_EPOCH)
        # windowed Welch segments of a chunk of rows
        self._seg = np.empty((0, 2, _SEG), dtype=np.float32)
        self._stats = np.full((s, c, _BLOCKS_PER_EPOCH, N_STATS), np.nan)
        # PSD ring of the last 11 segments, bins last (the median network runs along them);
        # single precision halves the median's memory traffic
        self._psd = np.full((s, c, _N_SEG, _N_BINS), np.nan, dtype=np.float32)
        self._n_seg = 0
        self.raw_names = [f"{k}_{f}" for k in self.kinds for f in F.feature_names(k)]
        # raw feature columns in the (kind, WINDOW_FEATURES) layout of the window features
        self._raw_cols = np.array(
            [
                ci * len(WINDOW_FEATURES) + WINDOW_FEATURES.index(f)
                for ci, k in enumerate(self.kinds)
                for f in F.feature_names(k)
            ],
            dtype=np.int64,
        )

    def add(self, y: FloatArray, at: int, nan: npt.NDArray[np.bool_], n_blocks: int) -> None:
        """Reduce the block at column ``at`` of ``y`` (the ``n_blocks``-th of the night) into the rings."""
        # rings written in place (sums and medians do not depend on the order of their slots);
        # the block is one Welch segment (_SEG = _BLOCK), the other one straddles the previous block
        starts = [at] if n_blocks == 0 else [at - _STEP, at]
        slot = n_blocks % _BLOCKS_PER_EPOCH
        self._stats[:, :, slot] = self._block_stats_and_psd(y, at, nan, starts)
        self._blocks_since_reset += 1

    def _block_stats_and_psd(
        self, y: FloatArray, at: int, nan: npt.NDArray[np.bool_], starts: Sequence[int]
    ) -> FloatArray:
        """Statistics of the 5-s block at column ``at`` of ``y``; PSD of its segments at ``starts`` into the PSD ring.

        The statistics are those of :func:`~nexus.staging._kernels.block_stats`; the PSD is the
        one-sided Welch-style periodogram, bins 0..30 Hz. A chunk of rows at a time: each chunk's
        windowed segments are transformed while they are still in the CPU cache. The PSD is float32
        in µV²/Hz: single precision is ample for a power spectrum and halves the memory traffic of
        the FFT and of the median.
        """
        s, c = self.n_sessions, len(self.kinds)
        rows, n_seg = s * c, len(starts)
        if self._seg.shape[0] != min(rows, _CHUNK):
            self._seg = np.empty((min(rows, _CHUNK), 2, _SEG), dtype=np.float32)
        w = hamming()
        scale = np.float32(2.0 / (F.FS * (w * w).sum()))
        slots = (self._n_seg + np.arange(n_seg)) % _N_SEG
        ring = self._psd.reshape(rows, _N_SEG, _N_BINS)
        flat = np.empty((rows, N_STATS))
        first = np.asarray(starts, dtype=np.int64)
        for a in range(0, rows, _CHUNK):
            b = min(a + _CHUNK, rows)
            seg = self._seg[: b - a, :n_seg]
            K.block_stats(y[a:b], at, _BLOCK, _KMAX, flat[a:b], first, w, seg, False)
            K.power(sp_fft.rfft(seg, axis=-1), _N_BINS, scale, ring[a:b], slots)
        self._n_seg += n_seg
        out = flat.reshape(s, c, N_STATS)
        out[..., S_NAN] = _any(nan, -1)[:, None]
        return out

    # ------------------------------------------------------------------ features of the last 30 s
    def window_features(self) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Raw features of the last 30 s, (s, n_raw), and which sessions' windows are artefact."""
        s = self.n_sessions
        feats3, bad = self._features_of_window(self._band_integrals())
        std, abspow = feats3[..., WINDOW_FEATURES.index("std")], feats3[..., WINDOW_FEATURES.index("abspow")]
        with np.errstate(invalid="ignore"):
            bad |= (std < FLAT_STD_UV).any(axis=1)
        bad |= ~np.isfinite(std).all(axis=1) | ~np.isfinite(abspow).all(axis=1)
        bad |= self._blocks_since_reset < _BLOCKS_PER_EPOCH  # a new sleeper: not 30 s of their own yet
        return feats3.reshape(s, -1)[:, self._raw_cols], bad

    def _features_of_window(self, ints: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """The :data:`WINDOW_FEATURES` of every (session, kind), (s, c, 21), and which sessions had missing samples.

        From the block statistics of the last 30 s and the band integrals ``ints`` (s, c, 8)
        (:func:`~nexus.staging._kernels.window_features`).
        """
        s, c = self.n_sessions, len(self.kinds)
        feats = np.empty((s * c, len(WINDOW_FEATURES)))
        nan_rows = np.empty(s * c, dtype=bool)
        stats = self._stats.reshape(s * c, _BLOCKS_PER_EPOCH, N_STATS)
        K.window_features(stats, ints.reshape(s * c, -1), _BLOCK, _KMAX, feats, nan_rows, False)
        return feats.reshape(s, c, -1), _any(nan_rows.reshape(s, c), 1)

    def _band_integrals(self) -> FloatArray:
        """Broad-band, band and absolute power of the last 30 s (Welch median PSD, 0.4-30 Hz): (s, c, 8)."""
        s, c = self._psd.shape[:2]
        n_seg = min(self._n_seg, _N_SEG)
        if n_seg < _N_SEG:  # first epoch of the night: the slots fill from 0
            med = np.median(self._psd[:, :, :n_seg], axis=2).reshape(s * c, _N_BINS)
        else:
            med = np.empty((s * c, _N_BINS), dtype=np.float32)
            K.median(self._psd.reshape(s * c, _N_SEG, _N_BINS), median_pairs(_N_SEG), med)
        # Simpson (total, bands) and trapezoid (abspow) rules are weighted sums over the bins;
        # the median is bias-corrected as scipy's Welch
        weights = band_weights()
        out = np.empty((s * c, weights.shape[0]))
        K.weighted_sums(med, 2, weights, 1.0 / median_bias(n_seg), out)
        return out.reshape(s, c, -1)

    def reset(self, idx: npt.NDArray[np.intp]) -> None:
        """Forget the blocks of the sessions ``idx``: artefact until 30 s of their new data."""
        self._blocks_since_reset[idx] = 0
        self._stats[idx] = np.nan
        self._psd[idx] = np.nan
