"""Cortical arousals after the AASM rule: offline and batched streaming.

AASM: an abrupt shift of EEG frequency (alpha, theta or > 16 Hz, not spindles) lasting at least
3 s, after at least 10 s of stable sleep; in REM sleep it also needs an increase of chin EMG.
Our operational version, on one-second bins:

- the *fast power* is the power of the EEG in 8–12 Hz plus 16–30 Hz (causal band-pass filters,
  so the live form computes the very same values), the EMG level is the chin EMG RMS;
- a bin is *shifted* when its fast power is ≥ ``ratio`` (3) times the mean of the 30 s before
  it (ending 2 s before);
- a bin whose fast power is below its 11–16 Hz (sigma) power is not shifted (spindles are not
  arousals);
- an arousal is a run of shifted bins (1-s gaps bridged) lasting 3–15 s, all in sleep (longer
  ones, or ones that run into a wake epoch, are awakenings), preceded by ≥ 10 s of sleep without
  another arousal;
- in REM, the largest EMG RMS during the arousal must be ≥ ``emg_ratio`` (1.5) times the mean EMG
  RMS of the preceding 30 s; without a chin EMG, no arousal is scored in REM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.core.stages import Stage, stage_in
from nexus.dsp.filters import StatefulFilter, bandpass_sos, highpass_sos
from nexus.dsp.longrow import causal_stretches
from nexus.dsp.moving import BinAccumulator
from nexus.events._kernels import arousal_events
from nexus.events.common import (
    BoolArray,
    FloatArray,
    WindowedStream,
    as_2d,
    check_fs,
    epochs_to_samples,
    finite,
)
from nexus.events.table import EventBatch, EventResults

__all__ = ["ArousalParams", "ArousalStream", "detect_arousals"]

EXTRA = ("fast_ratio", "emg_ratio")
SLEEP = (int(Stage.N1), int(Stage.N2), int(Stage.N3), int(Stage.R))
_BINS_PER_STRETCH = 1024  # one-second bins reduced together by _night_features (a few MB of scratch)


@dataclass(frozen=True)
class ArousalParams:
    """Arousal thresholds: power ratio, EMG ratio, durations in s."""

    ratio: float = 3.0
    emg_ratio: float = 1.5
    min_duration_s: float = 3.0
    max_duration_s: float = 15.0
    min_sleep_before_s: float = 10.0
    baseline_s: float = 30.0
    baseline_gap_s: float = 2.0


class _Features:
    """Per-second fast and sigma EEG power (µV²) and chin EMG RMS (µV), computed causally block by block."""

    def __init__(self, rows: int, fs: float) -> None:
        self.n = max(1, round(fs))
        self.f_alpha = StatefulFilter(bandpass_sos(8.0, 12.0, fs=fs), (rows,))
        self.f_beta = StatefulFilter(bandpass_sos(16.0, min(30.0, 0.45 * fs), fs=fs), (rows,))
        self.f_sigma = StatefulFilter(bandpass_sos(11.0, 16.0, fs=fs), (rows,))
        self.f_emg = StatefulFilter(highpass_sos(min(10.0, 0.2 * fs), fs=fs), (rows,))
        self.acc = BinAccumulator((rows, 3), self.n)
        self._scratch = np.empty((rows, 3, 0))
        self._beta = np.empty((rows, 0))

    def filters(self) -> tuple[StatefulFilter, ...]:
        return (self.f_alpha, self.f_beta, self.f_sigma, self.f_emg)

    def step(self, eeg: FloatArray, emg: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        rows, n = eeg.shape
        if self._scratch.shape[-1] != n:  # kept between blocks of the same length (no fresh pages per block)
            self._scratch = np.empty((rows, 3, n))
            self._beta = np.empty((rows, n))
        feats = self._scratch
        # the filters write straight into the rows of the stacked features
        self.f_alpha.step(eeg, out=feats[:, 0])
        feats[:, 0] += self.f_beta.step(eeg, out=self._beta)
        self.f_sigma.step(eeg, out=feats[:, 1])
        self.f_emg.step(emg, out=feats[:, 2])
        s, sq = self.acc.step(feats)
        emg_rms = np.sqrt(np.maximum(sq[:, 2] / self.n - (s[:, 2] / self.n) ** 2, 0.0))
        return sq[:, 0] / self.n, sq[:, 1] / self.n, emg_rms


def _night_features(eeg: FloatArray, emg: FloatArray, fs: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:meth:`_Features.step` of a fresh :class:`_Features` over a whole night, bit for bit.

    The three EEG bands run side by side in one compiled causal pass (the EMG high-pass in a
    second), without the copies of :func:`scipy.signal.sosfilt`, a stretch of bins at a time with
    the filters' state carried (:func:`~nexus.dsp.longrow.causal_stretches`); each stretch is
    reduced to the same one-second bins (the same contiguous per-bin sums as the accumulator's):
    no night-long filtered, stacked or squared copies.
    """
    feats = _Features(eeg.shape[0], fs)
    rows, n = eeg.shape
    size = feats.n
    k = n // size  # whole bins; the samples after them stay in the accumulator's open bin, unused
    fast_sq, sigma_sq, emg_s, emg_sq = (np.empty((rows, k)) for _ in range(4))
    stretch = _BINS_PER_STRETCH * size
    # the filters run a stretch of bins at a time, their state carried: no night-long filtered copies
    bands = causal_stretches(eeg, feats.f_alpha.sos, feats.f_beta.sos, feats.f_sigma.sos, stretch=stretch,
                             stop=k * size)
    high = causal_stretches(emg, feats.f_emg.sos, stretch=stretch, stop=k * size)
    for (a, (alpha, beta, sigma)), (_, (emg_f,)) in zip(bands, high, strict=True):
        b0, b1 = a // size, a // size + alpha.shape[-1] // size
        v = np.add(alpha, beta).reshape(rows, b1 - b0, size)
        fast_sq[:, b0:b1] = (v * v).sum(axis=-1)
        v = sigma.reshape(rows, b1 - b0, size)
        sigma_sq[:, b0:b1] = (v * v).sum(axis=-1)
        v = emg_f.reshape(rows, b1 - b0, size)
        emg_s[:, b0:b1] = v.sum(axis=-1)
        emg_sq[:, b0:b1] = (v * v).sum(axis=-1)
    emg_rms = np.sqrt(np.maximum(emg_sq / feats.n - (emg_s / feats.n) ** 2, 0.0))
    return fast_sq / feats.n, sigma_sq / feats.n, emg_rms


class _StageBins:
    """Per-bin sums of a stage held constant over each block, without repeating it per sample.

    The bins equal those of a :class:`~nexus.dsp.moving.BinAccumulator` fed ``n`` copies of
    the stage per block. Stage codes are small integers, so every sum is exact and equals the accumulator's.
    """

    def __init__(self, rows: int, n_per_bin: int) -> None:
        self.n = int(n_per_bin)
        self._carry = np.zeros(rows)  # sum of the open bin so far
        self._fill = 0

    def step(self, stage: FloatArray, n: int) -> FloatArray:
        """Add ``n`` samples of ``stage`` (rows,); return the sums of the completed bins (rows, n_bins)."""
        parts = []
        pos = 0
        if self._fill:
            pos = min(self.n - self._fill, n)
            self._carry = self._carry + stage * pos
            self._fill += pos
            if self._fill < self.n:
                return np.zeros((stage.size, 0))
            parts.append(self._carry[:, None])
            self._fill = 0
        k = (n - pos) // self.n
        if k:
            parts.append(np.repeat((stage * self.n)[:, None], k, axis=1))
        rest = n - pos - k * self.n
        self._carry = stage * rest
        self._fill = rest
        return np.concatenate(parts, axis=1) if parts else np.zeros((stage.size, 0))

    def reset(self, index: npt.ArrayLike) -> None:
        """Drop the open bin of some rows."""
        self._carry[np.asarray(index, dtype=np.intp)] = 0.0


def _trailing_mean(x: FloatArray, length: int, gap: int) -> FloatArray:
    """Mean of x over [t - gap - length, t - gap) per row (NaN where fewer than half are available).

    The rule of the baselines (the compiled core computes it at the samples it needs).
    """
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    t = np.arange(x.shape[1])
    hi = np.minimum(np.maximum(t - gap, 0), x.shape[1])  # (np.clip on integers, without its checks per call)
    lo = np.minimum(np.maximum(t - gap - length, 0), x.shape[1])
    cnt = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt >= max(1, length // 2), (c[:, hi] - c[:, lo]) / np.maximum(cnt, 1), np.nan)


def _arousal_core(feat: FloatArray, fs: float, sleep: BoolArray, p: ArousalParams) -> EventBatch:
    """The arousals of a window of one-second features, in one compiled pass per row.

    ``feat`` (rows, 4, seconds): fast power, EMG RMS (NaN without EMG), REM flag, sigma power; ``fs`` = 1 Hz.
    See :func:`nexus.events._kernels.arousal_events` (the NumPy form it equals is in the tests).
    """
    r, a, b, peak, emg_ratio = arousal_events(
        np.ascontiguousarray(feat, dtype=np.float64), np.ascontiguousarray(sleep, dtype=bool), float(p.ratio),
        float(p.emg_ratio), float(p.min_duration_s), float(p.max_duration_s), round(p.min_sleep_before_s),
        round(p.baseline_s), round(p.baseline_gap_s), 2,
    )
    return EventBatch(
        "arousal",
        session=r,
        channel=np.zeros(r.size, dtype=np.intp),
        onset=a / fs,
        duration=(b - a).astype(np.float64),
        extra={"fast_ratio": peak, "emg_ratio": emg_ratio},
    )


def _stage_per_second(stages: npt.ArrayLike | None, n_sec: int, fs: float, n_samples: int) -> npt.NDArray[np.int64]:
    if stages is None:
        return np.full(n_sec, int(Stage.N2))
    s = np.asarray(stages).astype(np.int64).ravel()
    if s.size != n_samples:
        s = epochs_to_samples(s, n_samples, fs)
    return s[(np.arange(n_sec) * round(fs)).clip(0, n_samples - 1)]


def detect_arousals(
    eeg: npt.ArrayLike,
    fs: float,
    stages: npt.ArrayLike | None = None,
    emg: npt.ArrayLike | None = None,
    params: ArousalParams | None = None,
    channel: str = "EEG",
) -> EventResults:
    """Detect cortical arousals offline.

    Parameters
    ----------
    eeg : array, shape (n_samples,)
        One EEG channel, in µV.
    fs : float
        Sampling rate, in Hz (≥ 64).
    stages : array of int, optional
        Hypnogram, per sample or per 30-s epoch. Without it every second counts as (non-REM) sleep.
    emg : array, shape (n_samples,), optional
        Chin EMG in µV at the same rate; needed to score arousals in REM.
    params : ArousalParams, optional
        Thresholds.
    channel : str
        Name written in the ``channel`` column.

    Returns
    -------
    EventResults
        One row per arousal.

    Notes
    -----
    Columns of ``.events``: ``onset``, ``duration`` (s, whole seconds), ``description``
    (``"arousal"``), ``channel``, ``fast_ratio`` (peak fast-power ratio to the 30-s baseline) and
    ``emg_ratio`` (peak EMG RMS over its baseline; NaN without EMG).
    """
    x = as_2d(np.asarray(eeg, dtype=np.float64).ravel(), "EEG")
    fs = check_fs(fs, 64.0)
    if emg is not None:
        e = as_2d(np.asarray(emg, dtype=np.float64).ravel(), "EMG")
        if e.shape != x.shape:
            raise InvalidInputError(f"EMG has {e.shape[1]} samples but EEG {x.shape[1]}; resample it to the EEG rate.")
    p = params or ArousalParams()
    fast, sigma, emg_rms = _night_features(x, e if emg is not None else np.zeros_like(x), fs)
    n_sec = fast.shape[1]
    st = _stage_per_second(stages, n_sec, fs, x.shape[1])
    if emg is None:
        emg_rms = np.full_like(emg_rms, np.nan)
    feat = np.stack([fast, emg_rms, (st == int(Stage.R))[None].astype(float), sigma], axis=1)
    ev = _arousal_core(feat, 1.0, np.isin(st, SLEEP)[None], p)
    return EventResults("arousal", ev.to_frame([channel]), x.shape[1] / fs)


class ArousalStream:
    """Batched streaming arousal detector.

    Parameters
    ----------
    n_sessions : int
        Number of sessions.
    fs : float
        Sampling rate of EEG and EMG, in Hz.
    params : ArousalParams, optional
        Thresholds.
    hop_s : float
        How often the detection runs, in s.

    Notes
    -----
    Arousals are reported when they end, about ``hop_s`` + 3 s later. The features are causal
    and identical to the offline ones, so streaming and offline detections match.
    """

    def __init__(self, n_sessions: int, fs: float, params: ArousalParams | None = None, hop_s: float = 5.0) -> None:
        fs = check_fs(fs, 64.0)
        self.params = params or ArousalParams()
        self.n_sessions = int(check_number("n_sessions", n_sessions, ge=1))
        self._feat = _Features(self.n_sessions, fs)
        self._stages = _StageBins(self.n_sessions, self._feat.n)
        left = self.params.baseline_s + self.params.baseline_gap_s + self.params.max_duration_s + 15.0
        self._stream = WindowedStream(
            lambda f, s, m: _arousal_core(f, s, m, self.params),
            "arousal",
            self.n_sessions,
            1.0,
            inner_shape=(4,),
            left_s=left,
            right_s=3.0,
            hop_s=hop_s,
            extra_names=EXTRA,
            confirm_by_end=True,
        )

    def step(self, eeg: npt.ArrayLike, stages: npt.ArrayLike, emg: npt.ArrayLike | None = None) -> EventBatch:
        """Add one block per session and return the arousals that ended.

        Parameters
        ----------
        eeg : ndarray, shape (n_sessions, n_samples)
            EEG, in µV.
        stages : ndarray of int, shape (n_sessions,)
            Current live stage of each session (W=0 … R=4).
        emg : ndarray, shape (n_sessions, n_samples), optional
            Chin EMG, in µV (NaN rows where a session has none).
        """
        x = finite(np.asarray(eeg, dtype=np.float64))
        if x.shape[0] != self.n_sessions or x.ndim != 2:
            raise InvalidInputError(f"Invalid EEG block shape {x.shape}: expected ({self.n_sessions}, n_samples).")
        st = np.asarray(stages, dtype=np.float64).reshape(self.n_sessions)
        e = np.full_like(x, np.nan) if emg is None else np.asarray(emg, dtype=np.float64)
        no_emg = ~np.isfinite(e).all(axis=1)
        fast, sigma, emg_rms = self._feat.step(x, finite(e))
        stage_sec = np.rint(self._stages.step(st, x.shape[1]) / self._feat.n)
        emg_rms[no_emg] = np.nan
        feat = np.stack([fast, emg_rms, (stage_sec == int(Stage.R)).astype(float), sigma], axis=1)
        return self._stream.step(feat, stage_in(stage_sec, SLEEP))

    def flush(self) -> EventBatch:
        """Return the arousals still held back at the end of the stream."""
        return self._stream.flush()

    def reset(self, sessions: npt.ArrayLike) -> None:
        """Forget the signal, filters and baselines of some sessions (a new client in that bed)."""
        idx = np.asarray(sessions, dtype=np.intp).ravel()
        for f in self._feat.filters():
            f.reset(idx)
        self._feat.acc.reset(idx)
        self._stages.reset(idx)
        self._stream.reset(idx)
