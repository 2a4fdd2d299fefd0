"""Sleep spindles: offline detection and a batched streaming detector.

The method follows Lacourse et al. (2018, J Neurosci Methods 316) as YASA describes it: a
sample belongs to a spindle when, after a ~100 ms smoothing, all three (``min_criteria``) of
these criteria hold

1. relative sigma power (sigma-band power / 1–30 Hz power over 1 s; YASA: 2 s) ≥ ``rel_pow`` (0.2);
2. moving correlation (0.3 s) between the sigma-filtered and the broadband signal ≥ ``corr`` (0.65);
3. moving RMS (0.3 s) of the sigma-filtered signal ≥ its trimmed mean + ``rms`` (1.5) × trimmed SD
   (10 % cut each side, capped at 10 µV),

events closer than 500 ms are merged and only those lasting 0.5–2 s are kept. This is an
independent, vectorised implementation (IIR filters and cumulative-sum windows, all channels
and sessions at once); it is not YASA's code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.dsp.filters import bandpass_sos
from nexus.dsp.longrow import zero_phase_any
from nexus.dsp.moving import window_samples
from nexus.events._kernels import log_bins, spindle_candidates, spindle_events, spindle_features
from nexus.events.common import (
    BoolArray,
    FloatArray,
    WindowedStream,
    as_2d,
    check_fs,
    stage_mask,
)
from nexus.events.table import EventBatch, EventResults

__all__ = ["SpindleParams", "SpindleStream", "detect_spindles"]

EXTRA = ("peak_s", "amp_uv", "rms_uv", "freq_hz", "rel_power")

# log-spaced bins of the moving RMS, in µV, for trimmed statistics that can be accumulated
_EDGES = np.geomspace(1e-2, 1e3, 601)
_CENTRES = np.sqrt(_EDGES[:-1] * _EDGES[1:])
_LOG_E0 = float(np.log(_EDGES[0]))
_INV_LOG_STEP = float((_EDGES.size - 1) / (np.log(_EDGES[-1]) - _LOG_E0))


class SpindleParams:
    """Parameters of the spindle detector (defaults after Lacourse et al. 2018 / YASA).

    Parameters
    ----------
    freq_sp : tuple of float
        Sigma band, in Hz.
    freq_broad : tuple of float
        Broadband, in Hz.
    duration : tuple of float
        Accepted spindle durations, in s.
    min_distance : float
        Events closer than this are merged, in s.
    rel_pow, corr, rms : float
        Thresholds of relative sigma power, moving correlation and moving RMS (in trimmed SDs).
    min_criteria : int
        How many of the three criteria must hold (after a 100 ms smoothing): 3 (default) is
        YASA's rule; 2 is "at least two out of three" (more recall, more false positives).
    rel_pow_window : float
        Window of the relative sigma power, in s. YASA uses a 2-s STFT; our default 1 s dilutes
        short (0.5–1 s) spindles less (chosen on synthetic night seed 1; see bench/spindles.py).
    """

    def __init__(
        self,
        freq_sp: tuple[float, float] = (11.5, 15.5),
        freq_broad: tuple[float, float] = (1.0, 30.0),
        duration: tuple[float, float] = (0.5, 2.0),
        min_distance: float = 0.5,
        rel_pow: float = 0.2,
        corr: float = 0.65,
        rms: float = 1.5,
        min_criteria: int = 3,
        rel_pow_window: float = 1.0,
    ) -> None:
        if not (0 < freq_sp[0] < freq_sp[1]) or not (0 < freq_broad[0] < freq_broad[1]):
            raise InvalidInputError(f"Invalid bands {freq_sp} / {freq_broad}: expected (low, high) with low < high.")
        if not 0 < duration[0] < duration[1]:
            raise InvalidInputError(f"Invalid value for 'duration': expected (min, max) in s, got {duration}.")
        self.freq_sp = freq_sp
        self.freq_broad = freq_broad
        self.duration = duration
        self.min_distance = check_number("min_distance", min_distance, ge=0, unit="s")
        self.rel_pow = check_number("rel_pow", rel_pow, ge=0, le=1)
        self.corr = check_number("corr", corr, ge=-1, le=1)
        self.rms = check_number("rms", rms)
        self.min_criteria = int(check_number("min_criteria", min_criteria, ge=1, le=3))
        self.rel_pow_window = check_number("rel_pow_window", rel_pow_window, gt=0, unit="s")


def _bin_index(v: FloatArray) -> npt.NDArray[np.intp]:
    """Index of the log-spaced bin of ``_EDGES`` holding each value (clipped to the end bins).

    Equal to ``searchsorted(_EDGES, v, side="right") - 1`` (clipped): a logarithm gives the
    bin, one comparison with each neighbouring edge corrects its rounding.
    """
    nb = _CENTRES.size
    g = (np.log(np.clip(v, _EDGES[0] * 0.5, _EDGES[-1] * 2.0)) - _LOG_E0) * _INV_LOG_STEP
    b = np.clip(g.astype(np.intp), 0, nb - 1)
    b -= (v < _EDGES[b]) & (b > 0)
    b += (v >= _EDGES[b + 1]) & (b < nb - 1)
    return b


def rms_histogram(mrms: FloatArray, mask: BoolArray) -> npt.NDArray[np.int64]:
    """Counts of moving-RMS values (µV) per row in log-spaced bins, masked samples only."""
    hist = np.zeros((mrms.shape[0], _CENTRES.size), dtype=np.int64)
    if mrms.shape[-1]:  # one compiled pass: the bins of _bin_index, masked samples only
        log_bins(np.ascontiguousarray(mrms, dtype=np.float64), np.ascontiguousarray(mask, dtype=np.bool_),
                 _EDGES, _EDGES[0] * 0.5, _EDGES[-1] * 2.0, _LOG_E0, _INV_LOG_STEP, hist)
    return hist


def rms_threshold(hist: npt.NDArray[np.int64], k: float, cut: float = 0.10, cap: float = 10.0) -> FloatArray:
    """Trimmed mean + ``k`` × trimmed SD of the moving RMS from its histogram, capped; per row, in µV."""
    h = hist.astype(np.float64)
    total = h.sum(axis=1, keepdims=True)
    c = np.cumsum(h, axis=1)
    lo, hi = cut * total, (1 - cut) * total
    # weight of each bin inside the [cut, 1-cut] quantile range (partial bins at the cuts)
    w = np.clip(np.minimum(c, hi) - np.maximum(c - h, lo), 0.0, None)
    sw = w.sum(axis=1)
    safe = np.where(sw > 0, sw, 1.0)
    mean = (w * _CENTRES).sum(axis=1) / safe
    sd = np.sqrt(np.maximum((w * (_CENTRES - mean[:, None]) ** 2).sum(axis=1) / safe, 0.0))
    thr = np.minimum(mean + k * sd, cap)
    return np.where(sw > 0, thr, np.inf)


def _features(x: FloatArray, fs: float, p: SpindleParams) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Broadband and sigma signals, (relative sigma power, moving correlation) and moving RMS of sigma."""
    broad, sigma = zero_phase_any(x, bandpass_sos(*p.freq_broad, fs=fs, order=4),
                                  bandpass_sos(*p.freq_sp, fs=fs, order=4))
    n = x.shape[-1]
    rc = np.zeros((2, *x.shape))
    mrms = np.zeros(x.shape)
    if n:  # the moving sums and windows in one compiled pass per row
        spindle_features(
            np.ascontiguousarray(broad.reshape(-1, n)),
            np.ascontiguousarray(sigma.reshape(-1, n)),
            window_samples(p.rel_pow_window, fs),
            window_samples(0.3, fs),
            rc[0].reshape(-1, n),
            rc[1].reshape(-1, n),
            mrms.reshape(-1, n),
        )
    return broad, sigma, rc, mrms


def _spindle_core(
    x: FloatArray,
    fs: float,
    mask: BoolArray,
    p: SpindleParams,
    hist_rows: npt.NDArray[np.int64] | None = None,
    feats: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = None,
) -> tuple[EventBatch, FloatArray, BoolArray]:
    """Detect spindles in every row of ``x`` (rows, samples). Returns events, moving RMS and mask."""
    broad, sigma, rc, mrms = _features(x, fs, p) if feats is None else feats
    hist = rms_histogram(mrms, mask) if hist_rows is None else hist_rows
    thr = rms_threshold(hist, p.rms)
    # the criteria met per sample, averaged over 100 ms, above min_criteria - 1: one compiled pass
    passed = np.empty(mrms.shape, dtype=np.bool_)
    if mrms.shape[-1]:
        spindle_candidates(rc[0], rc[1], mrms, np.ascontiguousarray(thr, dtype=np.float64),
                           np.ascontiguousarray(mask, dtype=np.bool_), float(p.rel_pow), float(p.corr),
                           window_samples(0.1, fs), p.min_criteria - 1, passed)
    return _spindle_events(broad, sigma, rc[0], passed, fs, p), mrms, mask


def _spindle_events(broad: FloatArray, sigma: FloatArray, relpow: FloatArray, passed: BoolArray, fs: float,
                    p: SpindleParams) -> EventBatch:
    """The spindles of a window (rows, samples) from the samples that passed the criteria.

    Runs of ``passed`` (gaps shorter than ``min_distance`` bridged) of the allowed durations, with their columns,
    in one compiled pass per row (:func:`nexus.events._kernels.spindle_events`; the NumPy form is in the tests).
    """
    f64 = [np.ascontiguousarray(a, dtype=np.float64) for a in (broad, sigma, relpow)]
    row, c = spindle_events(*f64, np.ascontiguousarray(passed, dtype=np.bool_), float(fs), round(p.min_distance * fs),
                            float(p.duration[0]), float(p.duration[1]))
    return EventBatch(
        "spindle",
        session=row,
        channel=np.zeros_like(row),
        onset=c[0],
        duration=c[1],
        extra={"peak_s": c[2], "amp_uv": c[3], "rms_uv": c[4], "freq_hz": c[5], "rel_power": c[6]},
    )


def detect_spindles(
    data: npt.ArrayLike,
    fs: float,
    ch_names: Sequence[str] | None = None,
    stages: npt.ArrayLike | None = None,
    include: Sequence[int] | None = (1, 2, 3),
    params: SpindleParams | None = None,
) -> EventResults:
    """Detect sleep spindles offline.

    Parameters
    ----------
    data : array, shape (n_samples,) or (n_channels, n_samples)
        EEG in µV.
    fs : float
        Sampling rate, in Hz (≥ 64).
    ch_names : sequence of str, optional
        Channel names (default ``"CH0"``, …).
    stages : array of int, optional
        Hypnogram, one stage per sample or per 30-s epoch (W=0 … R=4).
    include : sequence of int
        Stages searched when ``stages`` is given (default N1, N2, N3).
    params : SpindleParams, optional
        Detector parameters.

    Returns
    -------
    EventResults
        One row per spindle.

    Notes
    -----
    Columns of ``.events``:

    - ``onset``, ``duration``: start and length of the spindle, in s
    - ``description``: ``"spindle"``; ``channel``: channel name
    - ``peak_s``: time of the largest sigma-band deflection, in s
    - ``amp_uv``: peak-to-peak amplitude of the 1–30 Hz signal, in µV
    - ``rms_uv``: RMS of the sigma-filtered signal, in µV
    - ``freq_hz``: mean frequency from sigma zero crossings, in Hz
    - ``rel_power``: mean relative sigma power (0–1)
    """
    x = as_2d(data, "EEG")
    fs = check_fs(fs, 64.0)
    p = params or SpindleParams()
    names = list(ch_names) if ch_names is not None else [f"CH{i}" for i in range(x.shape[0])]
    if len(names) != x.shape[0]:
        raise InvalidInputError(f"Got {len(names)} channel names for {x.shape[0]} channels; give one name per row.")
    mask = np.broadcast_to(stage_mask(stages, x.shape[1], fs, include), x.shape)
    ev, _, _ = _spindle_core(x, fs, np.ascontiguousarray(mask), p)
    ev.channel, ev.session = ev.session, np.zeros_like(ev.session)
    return EventResults("spindle", ev.to_frame(names), x.shape[1] / fs)


class SpindleStream:
    """Batched streaming spindle detector.

    Parameters
    ----------
    n_sessions : int
        Number of sessions (leading axis of every block).
    fs : float
        Sampling rate, in Hz.
    n_channels : int
        EEG channels per session.
    params : SpindleParams, optional
        Detector parameters.
    hop_s : float
        How often the detection runs, in s (events are reported at most ``hop_s + 3`` s late).

    Notes
    -----
    The RMS threshold uses the moving RMS of all the data seen so far per session and channel
    (accumulated in a histogram), so the first minute is less reliable than offline detection
    over a whole night; afterwards the two agree.
    """

    def __init__(
        self,
        n_sessions: int,
        fs: float,
        n_channels: int = 1,
        params: SpindleParams | None = None,
        hop_s: float = 5.0,
    ) -> None:
        self.params = params or SpindleParams()
        fs = check_fs(fs, 64.0)
        self._stream = WindowedStream(
            self._core,
            "spindle",
            n_sessions,
            fs,
            n_channels=n_channels,
            left_s=3.0,
            right_s=3.0,
            hop_s=hop_s,
            extra_names=EXTRA,
            gated=True,
        )
        self._hist = np.zeros((n_sessions * n_channels, _CENTRES.size), dtype=np.int64)

    def _core(self, x: FloatArray, fs: float, mask: BoolArray) -> EventBatch:
        s = self._stream
        feats = _features(x, fs, self.params)
        # the stretch confirmed by this evaluation enters the RMS statistics exactly once
        a, b = s.done - s.win_start, min(s.until, s.n_seen) - s.win_start
        if b > a:
            self._hist[s.rows] += rms_histogram(feats[3][:, a:b], mask[:, a:b])
        ev, _, _ = _spindle_core(x, fs, mask, self.params, hist_rows=self._hist[s.rows], feats=feats)
        return ev

    @property
    def latency_s(self) -> float:
        """Worst-case report delay after a spindle ends, in s."""
        return self._stream.latency_s

    def step(self, block: npt.ArrayLike, mask: npt.ArrayLike | None = None) -> EventBatch:
        """Add a block (n_sessions, [n_channels,] n_samples) of EEG in µV; return new spindles.

        ``mask`` (n_sessions,) or (n_sessions, n_samples) says where spindles may occur (e.g. the
        live stage is N2/N3). Events carry ``session``, ``channel``, ``onset`` and ``duration`` in s
        since the stream started and the columns of :func:`detect_spindles`.
        """
        return self._stream.step(block, mask)

    def flush(self) -> EventBatch:
        """Return the spindles still held back at the end of the stream."""
        return self._stream.flush()

    def reset(self, sessions: npt.ArrayLike) -> None:
        """Forget the signal and RMS statistics of some sessions."""
        self._stream.reset(sessions)
        idx = np.asarray(sessions, dtype=np.intp).ravel()
        c = self._stream.n_channels
        self._hist[(idx[:, None] * c + np.arange(c)).ravel()] = 0
