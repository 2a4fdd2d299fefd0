"""Per-window signal features of a lane of sessions, accumulated block by block.

Blocks of any length (``(sessions, channels, samples)`` in µV) are folded into running sums; once a
session has gathered one window (1 s by default) its features are read out and its sums start
again. Nothing here loops over samples or sessions in Python: every block costs one compiled pass
over the whole lane (:mod:`nexus.monitor._kernels`), one matrix product for the mains DFT and a few
NumPy operations on the per-channel results.

Features per session and channel (window ``w``): sample count, mean, standard deviation, minimum,
maximum and how many samples sit exactly on each of them, non-finite samples, largest and mean
absolute first difference, samples in blocks that are all exact zeros, and the amplitude (µV) of
the 50 and 60 Hz components (one coherent DFT bin over the window, phase-continuous across
blocks) and of the bins 3 Hz either side. Per session: how many samples repeat, on every
electrophysiology channel at once, a sample 2-6 places earlier (a clock that repeats samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.montage import channel_role
from nexus.monitor._kernels import N_STATS, block_stats, repeat_hits, rotate_dft

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

LINE_HZ: tuple[float, ...] = (50.0, 60.0)
LINE_SIDE_HZ = 3.0  # reference bins at ±3 Hz: mains hum is a line, ECG harmonics and EMG are not
JITTER_LAGS = 6  # clock jitter repeats or skips 1-6 samples
STAGGER_PHASES = 10
"""The first window of slot ``k`` is longer by ``(k % 10) / 10`` of a window, so that the slots of a lane whose
sessions started together close their windows on different ticks (a tenth of them per 0.1-s tick) instead of
all on one: the per-window work of a thousand beds is spread evenly over the second."""


def channel_type(name: str) -> str:
    """``exg`` (EEG, EOG, EMG), ``ecg``, ``resp``, ``acc`` or ``other``: the monitor's thresholds per channel.

    The role comes from :func:`nexus.core.montage.channel_role`.
    """
    role = channel_role(name)
    if role in ("eeg", "eog", "emg"):
        return "exg"
    return role if role is not None else "other"


@dataclass
class WindowFeatures:
    """Features of one window for a subset of sessions (rows), arrays of shape (rows, channels)."""

    rows: IntArray
    t0: FloatArray  # window start per row, session time in s
    t1: FloatArray  # window end
    n: FloatArray  # samples per row
    mean: FloatArray
    std: FloatArray
    mn: FloatArray
    mx: FloatArray
    at_mn: FloatArray  # samples exactly at the minimum
    at_mx: FloatArray
    zero_frac: FloatArray
    nonfinite: FloatArray
    maxdiff: FloatArray
    meandiff: FloatArray
    hum: FloatArray  # (rows, channels, len(line_hz)) amplitude in µV
    hum_side: FloatArray  # the same 3 Hz either side (RMS of the two), in µV
    jitter: FloatArray  # (rows,) samples repeating an earlier one on every electrophysiology channel
    line_hz: FloatArray  # frequencies of the last axis of ``hum``


class WindowAccumulator:
    """Running per-window sums of a lane.

    Parameters
    ----------
    capacity, n_channels : int
        Lane size.
    fs : float
        Sampling rate in Hz.
    window : int
        Samples per window.
    line_hz : sequence of float
        Mains frequencies to measure (those above 0.45 × ``fs`` are skipped by the caller).
    jitter_rows : ndarray of int
        Channels compared for repeated samples (electrophysiology, at least 3 to be used).
    """

    def __init__(
        self, capacity: int, n_channels: int, fs: float, window: int, line_hz: tuple[float, ...], jitter_rows: IntArray
    ) -> None:
        S, C = capacity, n_channels
        self.fs, self.window = float(fs), int(window)
        self.line_hz = np.asarray(line_hz, dtype=float)
        # bins measured: each mains frequency, then its neighbours below and above
        self.bins = np.concatenate([self.line_hz, self.line_hz - LINE_SIDE_HZ, self.line_hz + LINE_SIDE_HZ])
        self.jitter_rows = np.asarray(jitter_rows, dtype=np.int64)
        self.n = np.zeros(S, dtype=np.int64)
        self.samples = np.zeros(S, dtype=np.int64)  # samples since the slot's reset (phase of the DFT)
        self.sum = np.zeros((S, C))
        self.sq = np.zeros((S, C))
        self.mn = np.full((S, C), np.inf)
        self.mx = np.full((S, C), -np.inf)
        self.at_mn = np.zeros((S, C))
        self.at_mx = np.zeros((S, C))
        self.zeros = np.zeros((S, C))
        self.nonfinite = np.zeros((S, C))
        self.maxdiff = np.zeros((S, C))
        self.absdiff = np.zeros((S, C))
        self.dft = np.zeros((S, C, 2 * self.bins.size))
        self.jitter = np.zeros(S)
        self.tail = np.zeros((S, C, JITTER_LAGS))  # last samples of the previous block
        self.has_tail = np.zeros(S, dtype=bool)
        self._basis: dict[int, FloatArray] = {}
        self.first_extra = self._stagger(np.arange(S))
        """Samples added to each slot's first window (see :data:`STAGGER_PHASES`)."""

    def reset(self, slots: IntArray) -> None:
        """Forget everything about ``slots`` (a new session starts there)."""
        self._clear(slots)
        self.first_extra[slots] = self._stagger(slots)
        self.samples[slots] = 0
        self.has_tail[slots] = False
        self.tail[slots] = 0.0

    def _clear(self, rows: IntArray) -> None:
        self.n[rows] = 0
        for a in (self.sum, self.sq, self.at_mn, self.at_mx, self.zeros, self.nonfinite, self.maxdiff, self.absdiff):
            a[rows] = 0.0
        self.mn[rows] = np.inf
        self.mx[rows] = -np.inf
        self.dft[rows] = 0.0
        self.jitter[rows] = 0.0

    def _dft_basis(self, n: int) -> FloatArray:
        b = self._basis.get(n)
        if b is None:
            k = np.arange(n)[:, None] / self.fs
            ph = 2 * np.pi * k * self.bins[None, :]
            b = np.ascontiguousarray(np.concatenate([np.cos(ph), -np.sin(ph)], axis=1))  # (n, 2F)
            self._basis[n] = b
        return b

    def add(self, x: FloatArray, rows: IntArray) -> BoolArray:
        """Fold block ``x`` (rows, channels, samples; non-finite samples allowed) into ``rows``' sums.

        Returns a boolean (rows, channels) array: which rows and channels had non-finite samples.
        """
        n = x.shape[-1]
        R, C = x.shape[:2]
        if n == 0:
            return np.zeros((R, C), dtype=bool)
        r: slice | IntArray = slice(None) if self.n.size == R else rows  # the whole lane: views, no gathers
        has = self.has_tail[r]
        tail = self.tail[r]
        stats = np.empty((R, C, N_STATS))
        x = np.ascontiguousarray(x, dtype=np.float64)
        block_stats(x, np.ascontiguousarray(tail[..., -1]), np.ascontiguousarray(has), stats)
        nonfinite = stats[..., 6]
        bad = nonfinite > 0
        if bad.any():  # rare: the DFT, the repeats and the tail below see the non-finite samples as 0, as the sums did
            self.nonfinite[r] += nonfinite
            x = np.where(np.isfinite(x), x, 0.0)
        bmx, bmn = stats[..., 2], stats[..., 3]
        mx, mn, amx, amn = self.mx[r], self.mn[r], self.at_mx[r], self.at_mn[r]
        self.n[r] += n
        self.sum[r] += stats[..., 0]
        self.sq[r] += stats[..., 1]
        self.at_mx[r] = np.where(bmx > mx, stats[..., 4], np.where(bmx == mx, amx + stats[..., 4], amx))
        self.at_mn[r] = np.where(bmn < mn, stats[..., 5], np.where(bmn == mn, amn + stats[..., 5], amn))
        self.mx[r] = np.maximum(mx, bmx)
        self.mn[r] = np.minimum(mn, bmn)
        # lost samples come as whole blocks of exact zeros: counted per block, without another pass
        self.zeros[r] += np.where((bmx == 0.0) & (bmn == 0.0), n, 0)
        self.maxdiff[r] = np.maximum(self.maxdiff[r], stats[..., 7])
        self.absdiff[r] += stats[..., 8]
        if self.bins.size:
            # the block's DFT on its own time axis (one matrix product), turned to the session's sample clock
            part = np.matmul(x.reshape(R * C, n), self._dft_basis(n)).reshape(R, C, -1)
            cycles0 = (self.samples[r, None] * self.bins[None, :] / self.fs) % 1.0  # (rows, F)
            turned = np.empty_like(part)
            rotate_dft(part, cycles0, turned)
            self.dft[r] += turned
        if self.jitter_rows.size >= 3:
            self._jitter(x, tail, has, r, R, n)
        if n >= JITTER_LAGS:
            self.tail[r] = x[..., n - JITTER_LAGS :]
        else:
            self.tail[r] = np.concatenate([tail, x], axis=-1)[..., -JITTER_LAGS:]
        self.has_tail[r] = True
        self.samples[r] += n
        return bad

    def _jitter(self, x: FloatArray, tail: FloatArray, has: BoolArray, r: slice | IntArray, R: int, n: int) -> None:
        """Count samples that repeat, on every compared channel, the sample 2-6 places earlier.

        Lag 1 is left out (flat or lost channels repeat the previous sample); a repeat must come
        while some channel moves (one compiled pass: :func:`~nexus.monitor._kernels.repeat_hits`).
        """
        hits = np.empty(R)
        repeat_hits(x, np.ascontiguousarray(tail), np.ascontiguousarray(has), self.jitter_rows, hits)
        self.jitter[r] += hits

    def _stagger(self, slots: IntArray) -> IntArray:
        return (np.asarray(slots, dtype=np.int64) % STAGGER_PHASES) * (self.window // STAGGER_PHASES)

    def ready(self, rows: IntArray) -> IntArray:
        """The rows among ``rows`` that have gathered a full window (the first one a little longer, staggered)."""
        return rows[self.n[rows] >= self.window + self.first_extra[rows]]

    def take(self, rows: IntArray, t_end: FloatArray) -> WindowFeatures:
        """Read out the window of ``rows`` (ending at session times ``t_end``) and start new ones."""
        n = self.n[rows].astype(float)
        nn = n[:, None]
        mean = self.sum[rows] / nn
        var = np.maximum(self.sq[rows] / nn - mean * mean, 0.0)
        F, L = self.bins.size, self.line_hz.size
        dft = self.dft[rows]
        amp = 2.0 * np.hypot(dft[..., :F], dft[..., F:]) / nn[..., None]
        hum = amp[..., :L]
        side = np.sqrt(0.5 * (amp[..., L : 2 * L] ** 2 + amp[..., 2 * L :] ** 2))
        f = WindowFeatures(
            rows=rows,
            t0=t_end - n / self.fs,
            t1=t_end.copy(),
            n=n,
            mean=mean,
            std=np.sqrt(var),
            mn=self.mn[rows].copy(),
            mx=self.mx[rows].copy(),
            at_mn=self.at_mn[rows].copy(),
            at_mx=self.at_mx[rows].copy(),
            zero_frac=self.zeros[rows] / nn,
            nonfinite=self.nonfinite[rows].copy(),
            maxdiff=self.maxdiff[rows].copy(),
            meandiff=self.absdiff[rows] / nn,
            hum=hum,
            hum_side=side,
            jitter=self.jitter[rows].copy(),
            line_hz=self.line_hz,
        )
        self.first_extra[rows] = 0
        self._clear(rows)
        return f
