"""Live (causal) sleep staging, batched across sessions.

:class:`LiveStager` takes blocks of ``(n_sessions, n_channels, n_samples)`` as they stream in and,
every 5 s of data, re-estimates the stage of the epoch in progress for every session at once.
Each estimate uses only samples up to its own end:

* signals are resampled to 100 Hz with a causal anti-alias filter and linear interpolation,
  then band-passed 0.4-30 Hz with a causal IIR filter whose state is carried between blocks;
* YASA's per-epoch features are computed from per-5-s-block sufficient statistics (power sums,
  sign changes, ordinal patterns, Higuchi curve lengths, block quartiles) and from 5-s Welch
  segments with 2.5-s steps, so each update touches only the newest 5 s of samples;
* YASA's centred 7.5-min triangular smoothing becomes its trailing half (current epoch and the
  7 before it), the 2-min past mean stays as it is, and the night-wide robust z-score becomes a
  running one: median and 5th/95th percentiles of the night so far, from a history of at most
  128 epochs per session that is thinned by half whenever it fills (so it always spans the whole
  night evenly), refreshed every few epochs for a rotating share of the sessions, and blended
  with a population prior (``live_prior.json``, made by ``bench/live_prior.py`` from synthetic
  nights) that weighs as much as ``prior_epochs`` epochs, so that the first hour is not scaled
  by wake alone;
* ``time_hour`` is the time since the session started; ``time_norm`` divides it by the expected
  night length (``night_hours``).

The per-epoch stage is final once the epoch has ended (``LiveEstimate.final``); the stages of
finished epochs are kept (:meth:`LiveStager.hypnogram`). All state lives in arrays with the
session on the leading axis; there is no per-session Python loop. Large batches are split into
shards of sessions staged side by side on threads (``workers``, one per CPU core by default;
the per-sample filters and statistics are compiled numba kernels that release the GIL), with the
same estimates as one shard.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft
from scipy import signal
from scipy.integrate import simpson

from nexus.core.checks import check_number, check_option
from nexus.core.errors import InvalidInputError
from nexus.core.stages import EPOCH_S, Stage
from nexus.dsp._biquad import WIDTH
from nexus.staging import _kernels as K
from nexus.staging import features as F
from nexus.staging._kernels import WINDOW_FEATURES, median_network
from nexus.staging.model import load_model, model_name
from nexus.staging.offline import FLAT_STD_UV, KINDS, MIN_DURATION_S, MIN_FS, StagingResult

FloatArray = npt.NDArray[np.float64]
_T = TypeVar("_T")

BLOCK_S: float = 5.0
"""Re-estimation period and block length, in seconds of data."""
_BLOCK = 500  # samples per block at 100 Hz
_BLOCKS_PER_EPOCH = 6
_SEG = 500  # Welch segment (5 s at 100 Hz)
_STEP = 250  # Welch step (2.5 s)
_N_SEG = 11  # segments per 30-s epoch
_N_BINS = 151  # PSD bins 0..30 Hz at 0.2 Hz
_KMAX = 10
_HIST = 7  # completed epochs kept for the trailing smoothing
_LP_HZ = 34.0  # causal low-pass corner (Butterworth, order 8), in Hz
_MA_LEN = 183  # boxcar length of the high-pass (3 cascaded: -6 dB near 0.2 Hz like MNE's 0.4-Hz edge)
_HP_DELAY = 3 * (_MA_LEN - 1) // 2  # 273 samples = 2.73 s
_TRIANG_PAST = np.arange(7, 0, -1) / 8.0  # weights of the 1..7 previous epochs (current: 1)
_NORM_HIST = 128  # epochs kept per session for the running robust scaling (thinned by half when full)
_NORM_EVERY = 5  # refresh the scaling of each session every this many epochs (after the first _NORM_WARM)
_NORM_WARM = 20
_HISTORY = _SEG - _STEP  # filtered samples kept before the next block (the straddling segment's first half)
_CHUNK = 128  # rows whose block statistics and spectra are computed together (their segments stay in cache)
PRIOR_FILE = Path(__file__).with_name("live_prior.json")
MIN_SHARD: int = 128
"""Fewest sessions per shard when a :class:`LiveStager` splits its sessions over threads."""


_HK = np.arange(1, _KMAX + 1, dtype=np.float64)  # Higuchi lags
# block-stat layout
_S_POW = slice(0, 4)  # Σx, Σx², Σx³, Σx⁴
_S_DX = slice(4, 6)  # Σdx, Σdx²
_S_DDX = slice(6, 8)  # Σddx, Σddx²
_S_NZC, _S_NZCD = 8, 9
_S_PERM = slice(10, 18)
_S_Q = slice(18, 20)  # block q25, q75
_S_HIG = slice(20, 20 + _KMAX)  # Σ|x[i] − x[i−k]|, k = 1..10
_S_NAN = 20 + _KMAX
_N_STATS = _S_NAN + 1


@dataclass(frozen=True)
class LiveEstimate:
    """The latest estimate for every session.

    Attributes
    ----------
    epoch_index : ndarray of int64, shape (n_sessions,)
        Index of the epoch the estimate is for (the epoch in progress, or the one just finished).
    stage : ndarray of int8, shape (n_sessions,)
        Most probable stage (0..4), -1 (artefact) or -2 (not enough data yet).
    probabilities : ndarray, shape (n_sessions, 5)
        Probability of W, N1, N2, N3, R (NaN rows where ``stage`` < 0).
    final : bool
        True when the estimate closes an epoch (its stage is then stored in the hypnogram).
    t : float
        Seconds of data seen since the sessions started.
    """

    epoch_index: npt.NDArray[np.int64]
    stage: npt.NDArray[np.int8]
    probabilities: FloatArray
    final: bool
    t: float

    @property
    def confidence(self) -> FloatArray:
        """Highest probability per session (NaN where there is no estimate)."""
        with np.errstate(invalid="ignore"):
            return np.max(self.probabilities, axis=1)


class _Shard:
    """Causal staging of one shard of sessions: the filter front-end, block statistics, running scaling, model.

    Built by :class:`LiveStager` (which checks the arguments); ``row0`` is the index of the
    shard's first session in the whole stager (the rotating refresh of the scaling uses it).
    """

    def __init__(
        self,
        n_sessions: int,
        fs: float,
        channels: tuple[str, ...],
        night_s: float,
        prior: Mapping[str, Sequence[float]],
        prior_epochs: float,
        row0: int = 0,
    ) -> None:
        self.n_sessions = n_sessions
        self.fs = fs
        self.channels = channels
        self.night_s = night_s
        self.prior_epochs = prior_epochs
        self.kinds = tuple(k for k in KINDS if k in self.channels)
        self._rows = [self.channels.index(k) for k in self.kinds]
        self.model = load_model(self.kinds, False)
        self.n_blocks = 0
        self.n_epochs = 0
        self._row0 = row0
        self._last: LiveEstimate | None = None
        s, c = self.n_sessions, len(self.kinds)
        # causal low-pass at the input rate (anti-alias and 30-Hz edge in one), then interpolation to
        # 100 Hz, then a linear-phase high-pass (delay minus a triple moving average): linear phase
        # keeps wave shapes (skewness) as the offline zero-phase filter does, at a delay of _HP_DELAY
        self._resample = self.fs != F.FS
        self._lp = signal.butter(8, _LP_HZ, fs=self.fs, output="sos")
        self._lp_zi = np.zeros((s, c, self._lp.shape[0], 2))
        # high-pass tails in tiles of WIDTH rows, lanes last (rows = session · kinds + kind): the
        # filter chain reads and writes a tile's tails as contiguous memory
        n_tiles = -(-s * c // WIDTH)
        self._ma_tails = np.zeros((n_tiles, 3, _MA_LEN - 1, WIDTH))
        self._delay_tail = np.zeros((n_tiles, _HP_DELAY, WIDTH))
        self._fresh = np.ones(s, dtype=bool)  # sessions whose filters start at the next sample
        self._prev = np.zeros((s, c))  # last low-passed sample (for interpolation across blocks)
        self._phase = 0.0  # position of the next 100-Hz sample, in input samples from the block start
        self._chans = np.asarray(self._rows, dtype=np.int64)
        # filtered 100-Hz samples, one row per (session, kind): the block to process next starts at
        # column _y_pos, after _HISTORY columns of the samples before it (zeros at the start);
        # the filter chain writes its output straight in, and blocks are read from it as views
        self._y = np.zeros((s * c, _HISTORY + 4 * _BLOCK))
        self._y_nan = np.zeros((s, self._y.shape[1]), dtype=bool)  # missing samples, per session
        self._y_pos = self._y_len = _HISTORY
        self._blocks_since_reset = np.full(s, _BLOCKS_PER_EPOCH)
        # windowed Welch segments of a chunk of rows
        self._seg = np.empty((0, 2, _SEG), dtype=np.float32)
        self._stats = np.full((s, c, _BLOCKS_PER_EPOCH, _N_STATS), np.nan)
        # PSD ring of the last 11 segments, bins last (the median network runs along them);
        # single precision halves the median's memory traffic
        self._psd = np.full((s, c, _N_SEG, _N_BINS), np.nan, dtype=np.float32)
        self._n_seg = 0
        self._raw_names = [f"{k}_{f}" for k in self.kinds for f in F.feature_names(k)]
        # raw feature columns in the (kind, WINDOW_FEATURES) layout of the window features
        self._raw_cols = np.array(
            [
                ci * len(WINDOW_FEATURES) + WINDOW_FEATURES.index(f)
                for ci, k in enumerate(self.kinds)
                for f in F.feature_names(k)
            ],
            dtype=np.int64,
        )
        n_raw = len(self._raw_names)
        self._hist = np.full((s, _HIST, n_raw), np.nan)  # raw features of the last completed epochs
        # running robust scaling: thinned history of the smoothed features, and its quantiles 5/50/95
        self._norm_hist = np.full((s, _NORM_HIST, 2, n_raw), np.nan, dtype=np.float32)
        self._norm_len = 0
        self._norm_stride = 1
        self._q = np.full((s, 2, n_raw, 3), np.nan)
        self._prior = np.full((2, n_raw, 3), np.nan)
        for i, name in enumerate(self._raw_names):
            for j, suffix in enumerate(("c7", "p2")):
                if f"{name}_{suffix}" in prior:
                    self._prior[j, i] = np.asarray(prior[f"{name}_{suffix}"], dtype=np.float64)
        self._epochs_seen = np.zeros(s)  # epochs since each session (re)started
        self._hist_sums = _history_sums(self._hist)
        self._scale: tuple[FloatArray, FloatArray] | None = None
        # model columns from [raw, c7 norms, p2 norms, time_hour, time_norm]
        cols = [*self._raw_names, *(f"{n}_{w}min_norm" for w in ("c7", "p2") for n in self._raw_names)]
        cols += ["time_hour", "time_norm"]
        self._model_cols = np.array([cols.index(n) for n in self.model.feature_names], dtype=np.int64)
        self._epochs_stage: list[npt.NDArray[np.int8]] = []
        self._epochs_proba: list[FloatArray] = []

    # ------------------------------------------------------------------ input
    def push(self, x: npt.NDArray[np.floating]) -> None:
        """Filter new samples (sessions, channels, n > 0), float32 or float64, into the sample buffer."""
        if self._fresh.any():
            first = x[:, self._rows, 0]
            self._start_state(np.where(np.isfinite(first), first, 0.0), self._fresh)
        n = x.shape[-1]
        pos = self._positions(n)
        m = pos.size
        at = self._reserve(m)
        # no intermediate array: the filter chain writes into the sample buffer; missing samples
        # are filtered as 0, and their mask is built only when there are any
        if self._filter(x, pos, self._y[:, at : at + m]):
            nan_in = _any(~np.isfinite(x), 1)
            self._y_nan[:, at : at + m] = nan_in[:, np.clip(np.round(pos).astype(np.int64), 0, n - 1)]
        self._y_len += m

    def _positions(self, n: int) -> FloatArray:
        """Positions of the next 100-Hz samples among ``n`` new input samples (−1: the previous sample)."""
        if not self._resample:
            return np.arange(n, dtype=np.float64)
        step = self.fs / F.FS
        pos: FloatArray = np.arange(int(np.floor((n - 1 - self._phase) / step)) + 1, dtype=np.float64)
        pos = self._phase + step * pos
        pos = pos[pos <= n - 1]
        self._phase = float(pos[-1] + step - n) if pos.size else self._phase - n
        return pos

    def _reserve(self, m: int) -> int:
        """Make room for ``m`` more samples in the buffer; return the column they start at."""
        cap = self._y.shape[1]
        if self._y_len + m > cap:  # drop the samples no block needs any more
            keep = self._y_pos - _HISTORY
            self._y[:, : self._y_len - keep] = self._y[:, keep : self._y_len]
            self._y_nan[:, : self._y_len - keep] = self._y_nan[:, keep : self._y_len]
            self._y_nan[:, self._y_len - keep :] = False
            self._y_pos -= keep
            self._y_len -= keep
        if self._y_len + m > cap:  # a long push: grow
            grow = self._y_len + m + 2 * _BLOCK - cap
            self._y = np.concatenate([self._y, np.zeros((self._y.shape[0], grow))], axis=1)
            self._y_nan = np.concatenate([self._y_nan, np.zeros((self._y_nan.shape[0], grow), dtype=bool)], axis=1)
        return self._y_len

    def _filter(self, x: npt.NDArray[np.floating], pos: FloatArray, out: FloatArray) -> int:
        """Low-pass, resample and high-pass the new samples ``x`` into ``out``; return how many were missing.

        ``pos`` are the positions of the 100-Hz output samples among the input samples (see
        :meth:`_positions`); the filter state is carried in place (:func:`~nexus.staging._kernels.filter_chain`).
        """
        n = x.shape[-1]
        s, c = self.n_sessions, len(self.kinds)
        i0 = np.floor(pos).astype(np.int64)
        return int(
            K.filter_chain(
                x,
                self._chans,
                self._lp,
                self._lp_zi.reshape(s * c, -1, 2),
                self._prev.reshape(-1),
                i0,
                pos - i0,
                np.minimum(i0 + 1, n - 1),
                self._delay_tail,
                self._ma_tails,
                out,
            )
        )

    def _start_state(self, first: FloatArray, rows: npt.NDArray[np.bool_]) -> None:
        """Start the filters of new sessions in steady state for their first sample (no start-up transient)."""
        f = first[rows]
        self._prev[rows] = f
        self._lp_zi[rows] = signal.sosfilt_zi(self._lp)[None, None, :, :] * f[:, :, None, None]
        c = len(self.kinds)
        r = (np.flatnonzero(rows)[:, None] * c + np.arange(c)).ravel()  # their rows
        self._ma_tails[r // WIDTH, :, :, r % WIDTH] = f.reshape(-1)[:, None, None]
        self._delay_tail[r // WIDTH, :, r % WIDTH] = f.reshape(-1)[:, None]
        self._fresh[rows] = False

    def reset(self, idx: npt.NDArray[np.intp]) -> None:
        """Start the sessions ``idx`` (indices in this shard) afresh."""
        self._fresh[idx] = True
        c = len(self.kinds)
        self._y[(idx[:, None] * c + np.arange(c)).ravel()] = 0.0
        self._y_nan[idx, self._y_pos : self._y_len] = True
        self._blocks_since_reset[idx] = 0
        self._stats[idx] = np.nan
        self._psd[idx] = np.nan
        self._hist[idx] = np.nan
        self._hist_sums = _history_sums(self._hist)
        self._scale = None
        self._norm_hist[idx] = np.nan
        self._q[idx] = np.nan
        self._epochs_seen[idx] = 0.0

    # ------------------------------------------------------------------ per-block work
    def _process_block(self, at: int, nan: npt.NDArray[np.bool_]) -> None:
        # rings written in place (sums and medians do not depend on the order of their slots);
        # the block is one Welch segment (_SEG = _BLOCK), the other one straddles the previous block
        starts = [at] if self.n_blocks == 0 else [at - _STEP, at]
        slot = self.n_blocks % _BLOCKS_PER_EPOCH
        self._stats[:, :, slot] = self._block_stats_and_psd(at, nan, starts)
        self.n_blocks += 1
        self._blocks_since_reset += 1

    def _block_stats_and_psd(self, at: int, nan: npt.NDArray[np.bool_], starts: Sequence[int]) -> FloatArray:
        """Statistics of the 5-s block at column ``at``; PSD of its segments at ``starts`` into the PSD ring.

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
        w = _hamming()
        scale = np.float32(2.0 / (F.FS * (w * w).sum()))
        slots = (self._n_seg + np.arange(n_seg)) % _N_SEG
        ring = self._psd.reshape(rows, _N_SEG, _N_BINS)
        flat = np.empty((rows, _N_STATS))
        first = np.asarray(starts, dtype=np.int64)
        for a in range(0, rows, _CHUNK):
            b = min(a + _CHUNK, rows)
            seg = self._seg[: b - a, :n_seg]
            K.block_stats(self._y[a:b], at, _BLOCK, _KMAX, flat[a:b], first, w, seg)
            K.power(sp_fft.rfft(seg, axis=-1), _N_BINS, scale, ring[a:b], slots)
        self._n_seg += n_seg
        out = flat.reshape(s, c, _N_STATS)
        out[..., _S_NAN] = _any(nan, -1)[:, None]
        return out

    # ------------------------------------------------------------------ features of the last 30 s
    def _window_features(self) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
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
        stats = self._stats.reshape(s * c, _BLOCKS_PER_EPOCH, _N_STATS)
        K.window_features(stats, ints.reshape(s * c, -1), _BLOCK, _KMAX, feats, nan_rows)
        return feats.reshape(s, c, -1), _any(nan_rows.reshape(s, c), 1)

    def _band_integrals(self) -> FloatArray:
        """Broad-band, band and absolute power of the last 30 s (Welch median PSD, 0.4-30 Hz): (s, c, 8)."""
        s, c = self._psd.shape[:2]
        n_seg = min(self._n_seg, _N_SEG)
        if n_seg < _N_SEG:  # first epoch of the night: the slots fill from 0
            med = np.median(self._psd[:, :, :n_seg], axis=2).reshape(s * c, _N_BINS)
        else:
            med = np.empty((s * c, _N_BINS), dtype=np.float32)
            K.median(self._psd.reshape(s * c, _N_SEG, _N_BINS), _median_pairs(), med)
        # Simpson (total, bands) and trapezoid (abspow) rules are weighted sums over the bins;
        # the median is bias-corrected as scipy's Welch
        weights = _band_weights()
        out = np.empty((s * c, weights.shape[0]))
        K.weighted_sums(med, 2, weights, 1.0 / _median_bias(n_seg), out)
        return out.reshape(s, c, -1)

    # ------------------------------------------------------------------ estimate
    def update(self) -> LiveEstimate:
        """Process every complete 5-s block pushed so far and re-estimate the shard's sessions."""
        est = self._last
        while self._y_len - self._y_pos >= _BLOCK:
            at = self._y_pos
            self._process_block(at, self._y_nan[:, at : at + _BLOCK])
            self._y_pos += _BLOCK
            est = self._estimate()
        if est is None:
            s = self.n_sessions
            est = LiveEstimate(
                np.zeros(s, np.int64), np.full(s, Stage.UNS, np.int8), np.full((s, 5), np.nan), False, 0.0
            )
        self._last = est
        return est

    def _estimate(self) -> LiveEstimate:
        raw, bad = self._window_features()
        final = self.n_blocks % _BLOCKS_PER_EPOCH == 0
        t_start = max(self.n_blocks * BLOCK_S - EPOCH_S, 0.0)
        times = np.array([t_start / 3600.0, min(t_start / self.night_s, 1.0)])
        smooth, x = self._model_input(raw, bad, times)
        proba = self.model.predict_proba(x)
        stage = np.argmax(proba, axis=1).astype(np.int8)
        not_ready = self.n_blocks < 2
        stage[bad] = Stage.ART
        proba[bad] = np.nan
        if not_ready:
            stage[:] = Stage.UNS
            proba[:] = np.nan
        epoch_index = np.full(self.n_sessions, (self.n_blocks - 1) // _BLOCKS_PER_EPOCH, dtype=np.int64)
        if final:
            self._close_epoch(raw, bad, smooth, stage, proba)
        return LiveEstimate(epoch_index, stage, proba, final, self.n_blocks * BLOCK_S)

    def _model_input(
        self, raw: FloatArray, bad: npt.NDArray[np.bool_], times: FloatArray
    ) -> tuple[FloatArray, npt.NDArray[np.float32]]:
        """Smoothed features (s, 2, f) and the model's input (s, n_model) float32 (see ``K.model_inputs``)."""
        center, spread = self._scaling()
        smooth = np.empty((self.n_sessions, 2, raw.shape[1]))
        x = np.empty((self.n_sessions, self._model_cols.size), dtype=np.float32)
        K.model_inputs(raw, bad, *self._hist_sums, center, spread, times, self._model_cols, smooth, x)
        return smooth, x

    def _close_epoch(
        self,
        raw: FloatArray,
        bad: npt.NDArray[np.bool_],
        smooth: FloatArray,
        stage: npt.NDArray[np.int8],
        proba: FloatArray,
    ) -> None:
        keep = np.where(bad[:, None], np.nan, raw)
        self._hist = np.concatenate([self._hist[:, 1:], keep[:, None, :]], axis=1)
        self._hist_sums = _history_sums(self._hist)
        self._track_quantiles(smooth, ~bad)
        self._epochs_stage.append(stage.copy())
        self._epochs_proba.append(proba.copy())

    def _track_quantiles(self, v: FloatArray, ok: npt.NDArray[np.bool_]) -> None:
        """Add this epoch to the thinned history; refresh the quantiles of some sessions."""
        self.n_epochs += 1
        self._epochs_seen += 1
        self._scale = None
        if (self.n_epochs - 1) % self._norm_stride == 0:
            if self._norm_len == _NORM_HIST:  # full: keep every other epoch, record half as often
                kept = self._norm_hist[:, ::2].copy()
                self._norm_hist[:] = np.nan
                self._norm_hist[:, : kept.shape[1]] = kept
                self._norm_len = kept.shape[1]
                self._norm_stride *= 2
            self._norm_hist[:, self._norm_len] = np.where(ok[:, None, None], v, np.nan)
            self._norm_len += 1
        if self.n_epochs <= _NORM_WARM:
            rows = np.arange(self.n_sessions)
        else:
            glob = np.arange(self.n_sessions) + self._row0  # index in the whole stager (shards)
            rows = np.flatnonzero(glob % _NORM_EVERY == self.n_epochs % _NORM_EVERY)
        if rows.size:
            self._q[rows] = _quantiles(self._norm_hist[rows, : self._norm_len])

    def _scaling(self) -> tuple[FloatArray, FloatArray]:
        """Centre (NaN: none yet) and spread of the running robust scaling, (s, 2, f).

        They change only when an epoch closes or a session is reset, so they are kept until then.
        """
        if self._scale is None:
            m = np.minimum(float(self._norm_len * self._norm_stride), self._epochs_seen)[:, None, None, None]
            w0 = self.prior_epochs
            q = np.where(np.isfinite(self._q), self._q, self._prior)
            if w0 > 0:
                q = np.where(np.isfinite(self._prior), (w0 * self._prior + m * q) / (w0 + m), q)
            with np.errstate(invalid="ignore"):
                spread = q[..., 2] - q[..., 0]
                spread = np.where(np.isfinite(spread) & (spread >= 1e-12), spread, 1.0)
            self._scale = (np.where(np.isfinite(q[..., 1]), q[..., 1], np.nan), spread)
        return self._scale

    # ------------------------------------------------------------------ results
    def hypnogram(self) -> tuple[npt.NDArray[np.int8], FloatArray]:
        """Final stages (s, epochs) and probabilities (s, epochs, 5) of the shard's finished epochs."""
        if not self._epochs_stage:
            return np.zeros((self.n_sessions, 0), np.int8), np.zeros((self.n_sessions, 0, 5))
        return np.stack(self._epochs_stage, axis=1), np.stack(self._epochs_proba, axis=1)


class LiveStager:
    """Causal sleep staging for many sessions at once (leading axis = session).

    Parameters
    ----------
    n_sessions : int
        Number of sessions staged together.
    fs : float
        Sampling rate of the pushed blocks in Hz (> 80 Hz).
    channels : sequence of str
        Kind of each channel row in the blocks: ``"eeg"`` (required), ``"eog"``, ``"emg"``.
    night_hours : float
        Expected length of the night in hours (for the ``time_norm`` feature).
    prior : mapping, optional
        Population quantiles (5, 50, 95 %) of the smoothed features, keyed ``"<feature>_c7"`` and
        ``"<feature>_p2"``; default: the packaged ``live_prior.json``; ``{}`` for none.
    prior_epochs : float
        How many epochs of the session's own history the prior is worth.
    workers : int, optional
        Threads that share the work: the sessions are split into this many shards (at least
        :data:`MIN_SHARD` sessions each) staged side by side; every filter, kernel and tree walk
        releases the GIL. Default: one per CPU core. Results do not depend on it.

    Examples
    --------
    >>> st = LiveStager(1000, fs=256.0)                       # doctest: +SKIP
    >>> st.push(block)            # (1000, 3, n) in µV          # doctest: +SKIP
    >>> est = st.update()         # every 5 s                  # doctest: +SKIP
    >>> est.stage, est.probabilities                            # doctest: +SKIP
    """

    shard_class: type[_Shard] = _Shard
    """The class of the shards (the tests swap in the array forms of the kernels)."""

    def __init__(
        self,
        n_sessions: int,
        fs: float,
        channels: Sequence[str] = ("eeg", "eog", "emg"),
        *,
        night_hours: float = 8.0,
        prior: Mapping[str, Sequence[float]] | None = None,
        prior_epochs: float = 60.0,
        workers: int | None = None,
    ) -> None:
        self.n_sessions = int(check_number("n_sessions", n_sessions, ge=1))
        n_workers = int(check_number("workers", (os.cpu_count() or 1) if workers is None else workers, ge=1))
        self.fs = check_number("fs", fs, gt=MIN_FS, unit="Hz")
        self.channels = tuple(check_option("channel kind", c, KINDS) for c in channels)
        if "eeg" not in self.channels or len(set(self.channels)) != len(self.channels):
            raise InvalidInputError(
                f"Invalid channels {self.channels}: expected one 'eeg' and optionally one 'eog' and one 'emg'."
            )
        night_s = check_number("night_hours", night_hours, gt=0, unit="h") * 3600.0
        prior_epochs = check_number("prior_epochs", prior_epochs, ge=0)
        self.kinds = tuple(k for k in KINDS if k in self.channels)
        self.model_name = model_name(self.kinds)
        prior = load_prior() if prior is None else prior
        # the sessions are staged in shards of at least MIN_SHARD, side by side on threads
        n_shards = max(1, min(n_workers, self.n_sessions // MIN_SHARD))
        edges = np.linspace(0, self.n_sessions, n_shards + 1).round().astype(int)
        self._slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
        self._shards = [
            self.shard_class(sl.stop - sl.start, self.fs, self.channels, night_s, prior, prior_epochs, sl.start)
            for sl in self._slices
        ]
        self.model = self._shards[0].model
        self._pool: ThreadPoolExecutor | None = None
        if n_shards > 1:
            self._pool = ThreadPoolExecutor(max_workers=n_shards, thread_name_prefix="nexus-stager")
        self._last: LiveEstimate | None = None

    @property
    def n_blocks(self) -> int:
        """5-s blocks processed since the start."""
        return self._shards[0].n_blocks

    @property
    def n_epochs(self) -> int:
        """Epochs closed since the start."""
        return self._shards[0].n_epochs

    def _each(self, work: Callable[[int], _T]) -> list[_T]:
        """``work(i)`` for every shard ``i``: on the pool when there are several."""
        if self._pool is None:
            return [work(i) for i in range(len(self._shards))]
        return list(self._pool.map(work, range(len(self._shards))))

    # ------------------------------------------------------------------ input
    def push(self, block: npt.ArrayLike) -> None:
        """Add new samples for every session.

        Parameters
        ----------
        block : ndarray, shape (n_sessions, n_channels, n_samples)
            New samples in µV at :attr:`fs`, channels in :attr:`channels` order. NaN marks missing
            samples (the epochs they fall in are scored as artefact).
        """
        x = np.asarray(block)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        if x.ndim != 3 or x.shape[0] != self.n_sessions or x.shape[1] != len(self.channels):
            raise InvalidInputError(
                f"Invalid block shape {x.shape}: expected ({self.n_sessions}, {len(self.channels)}, n_samples)."
            )
        if x.shape[2] == 0:
            return
        if len(self._shards) == 1:
            self._shards[0].push(x)
        else:
            self._each(lambda i: self._shards[i].push(x[self._slices[i]]))

    def reset(self, sessions: npt.ArrayLike) -> None:
        """Start some sessions afresh (a new sleeper in the slot): nothing of their past is kept.

        Their filters restart at the next pushed sample, and their estimates are artefact (-1)
        until 30 s of new data have been seen; the other sessions are untouched. Epochs still
        follow the stager's clock.

        Parameters
        ----------
        sessions : array-like of int or bool
            Indices (or a mask) of the sessions to reset.
        """
        idx = np.arange(self.n_sessions)[np.asarray(sessions)]
        for shard, sl in zip(self._shards, self._slices, strict=True):
            mine = idx[(idx >= sl.start) & (idx < sl.stop)] - sl.start
            if mine.size:
                shard.reset(mine)

    # ------------------------------------------------------------------ estimate
    def update(self) -> LiveEstimate:
        """Process every complete 5-s block pushed so far and re-estimate all sessions.

        Returns
        -------
        LiveEstimate
            For the epoch in progress (or just finished). When several blocks were pending, the
            epochs they closed are stored in the hypnogram on the way.
        """
        parts = self._each(lambda i: self._shards[i].update())
        if len(parts) == 1:
            self._last = parts[0]
        else:
            self._last = LiveEstimate(
                np.concatenate([p.epoch_index for p in parts]),
                np.concatenate([p.stage for p in parts]),
                np.concatenate([p.probabilities for p in parts]),
                parts[0].final,
                parts[0].t,
            )
        return self._last

    # ------------------------------------------------------------------ results
    def hypnogram(self) -> tuple[npt.NDArray[np.int8], FloatArray]:
        """Final stages and probabilities of the finished epochs.

        Returns
        -------
        stages : ndarray of int8, shape (n_sessions, n_epochs)
        probabilities : ndarray, shape (n_sessions, n_epochs, 5)
        """
        parts = [sh.hypnogram() for sh in self._shards]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    # ------------------------------------------------------------------ life cycle
    def close(self) -> None:
        """Stop the shards' worker threads (idempotent).

        A stager used after it was closed runs its shards one after the other on the calling thread.
        """
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> LiveStager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _any(a: npt.NDArray[np.bool_], axis: int) -> npt.NDArray[np.bool_]:
    return np.asarray(a.any(axis=axis), dtype=bool)


def load_prior(path: Path = PRIOR_FILE) -> dict[str, list[float]]:
    """The population prior of the running normalisation (empty when the file is missing)."""
    try:
        return dict(json.loads(path.read_text(encoding="utf-8"))["quantiles"])
    except (OSError, ValueError, KeyError):
        return {}


def _history_sums(hist: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Weighted sums and weights of the completed epochs (oldest first) for the trailing smoothing.

    Returns the numerator and weight of the 7-epoch triangular mean and of the 3-epoch past
    mean (the current epoch is added at each update), summed in the order of the whole window.
    """
    ok = np.isfinite(hist)
    x0 = np.where(ok, hist, 0.0)
    w = _TRIANG_PAST[::-1]  # oldest … newest
    num, den = x0[:, 0] * w[0], ok[:, 0] * w[0]
    for j in range(1, _HIST):
        num = num + x0[:, j] * w[j]
        den = den + ok[:, j] * w[j]
    p_num = x0[:, -3] + x0[:, -2] + x0[:, -1]
    p_den = ok[:, -3].astype(np.int64) + ok[:, -2] + ok[:, -1]
    return num, den, p_num, p_den.astype(np.float64)


def _median_bias(n: int) -> float:
    """Bias of the median of ``n`` χ²₂ periodogram values relative to their mean (as scipy's Welch)."""
    ii = 2.0 * np.arange(1.0, (n - 1) // 2 + 1)
    return float(1.0 + np.sum(1.0 / (ii + 1.0) - 1.0 / ii))


def _quantiles(h: npt.NDArray[np.float32]) -> FloatArray:
    """Quantiles 5, 50 and 95 % (linear, as numpy) along axis 1, NaN skipped: (s, n, ...) → (s, ..., 3)."""
    # sorted in single precision along a contiguous axis (the order of the float64 values), NaN last
    srt = np.sort(np.moveaxis(h, 1, -1), axis=-1)  # (s, ..., n)
    cnt = np.isfinite(srt).sum(axis=-1)  # (s, ...)
    out = np.full((*cnt.shape, 3), np.nan)
    for j, tau in enumerate((0.05, 0.5, 0.95)):
        pos = tau * np.maximum(cnt - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(cnt - 1, 0))
        a = np.take_along_axis(srt, lo[..., None], axis=-1)[..., 0].astype(np.float64)
        b = np.take_along_axis(srt, hi[..., None], axis=-1)[..., 0].astype(np.float64)
        out[..., j] = np.where(cnt > 0, a + (pos - lo) * (b - a), np.nan)
    return out


@lru_cache(maxsize=1)
def _median_pairs() -> npt.NDArray[np.int64]:
    return median_network(_N_SEG)


@lru_cache(maxsize=1)
def _band_weights() -> FloatArray:
    """Weights over the PSD bins 0.4..30 Hz: Simpson's rule of the broad band and of each band, trapezoid rule.

    Rows: total power (Simpson), the bands of :data:`nexus.staging.features.BANDS` (Simpson over
    their bins, edges included), absolute power (trapezoid); the rules are linear, so applying
    them to the identity gives their weights.
    """
    n = _N_BINS - 2
    f_in = np.arange(2, _N_BINS) * 0.2
    w = np.zeros((len(F.BANDS) + 2, n))
    eye = np.eye(n)
    w[0] = simpson(eye, dx=0.2, axis=-1)
    for i, (lo, hi, _name) in enumerate(F.BANDS):
        band = np.flatnonzero((f_in >= lo - 1e-9) & (f_in <= hi + 1e-9))
        w[1 + i, band] = simpson(eye[np.ix_(band, band)], dx=0.2, axis=-1)
    w[-1] = np.trapezoid(eye, dx=0.2, axis=-1)
    return w


def _hamming() -> FloatArray:
    return signal.get_window("hamming", _SEG)


def stage_causal(
    signals: Mapping[str, npt.ArrayLike], fs: float | Mapping[str, float], *, block_s: float = BLOCK_S
) -> StagingResult:
    """Stage a recording causally, as :class:`LiveStager` would have done live.

    Parameters
    ----------
    signals : mapping kind → 1-D array
        ``"eeg"`` (required), ``"eog"``, ``"emg"``, in µV. All kinds must share one sampling rate.
    fs : float or mapping kind → float
        Sampling rate(s) in Hz.
    block_s : float
        Seconds of data pushed per update.

    Returns
    -------
    StagingResult
        One stage per complete epoch (the final live estimate of each epoch).
    """
    kinds = tuple(k for k in KINDS if k in signals)
    if "eeg" not in kinds:
        raise InvalidInputError("Sleep staging needs an EEG signal; none was given.")
    rates = {float(fs[k] if isinstance(fs, Mapping) else fs) for k in kinds}
    if len(rates) != 1:
        raise InvalidInputError(
            f"Live staging needs one sampling rate for all channels, got {sorted(rates)} Hz; resample first."
        )
    rate = rates.pop()
    data = np.stack([np.asarray(signals[k], dtype=np.float64) for k in kinds])
    if data.shape[-1] / rate < MIN_DURATION_S:
        raise InvalidInputError(
            f"Recording too short to stage: {data.shape[-1] / rate / 60:.1f} min, expected at least 5 min."
        )
    with LiveStager(1, rate, kinds) as st:
        step = max(round(block_s * rate), 1)
        for i in range(0, data.shape[-1], step):
            st.push(data[None, :, i : i + step])
            st.update()
        stages, proba = st.hypnogram()
    return StagingResult(
        stages=stages[0],
        probabilities=proba[0],
        confidence=np.max(proba[0], axis=1),
        model=f"{st.model_name} (live)",
    )
