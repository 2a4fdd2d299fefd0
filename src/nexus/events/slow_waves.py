"""Slow oscillations (slow waves) of N2/N3: offline detection and a batched streaming detector.

Definition (after Massimini et al. 2004 and YASA's ``sw_detect`` defaults): the EEG is
band-passed to 0.3–1.5 Hz (zero phase); a slow oscillation is a negative half-wave between a
down-going and an up-going zero crossing, followed by the positive half-wave up to the next
down-going crossing, with

- negative half-wave 0.3–1.5 s long and its trough (the *down-state*) between -40 and -200 µV,
- positive half-wave 0.1–1 s long and its peak (the *up-state*) between 10 and 150 µV,
- peak-to-peak amplitude 75–350 µV.

The streaming detector reports confirmed oscillations a few seconds late (zero-phase filter in
a sliding window, identical to offline) and, for the dreamscape, tracks the latest down-state
causally (a carried-state band-pass), so closed-loop stimulation does not wait for confirmation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError
from nexus.dsp.filters import StatefulFilter, bandpass_sos
from nexus.dsp.longrow import zero_phase_any
from nexus.events._kernels import slow_wave_events
from nexus.events.common import (
    BoolArray,
    FloatArray,
    WindowedStream,
    as_2d,
    check_fs,
    finite,
    stage_mask,
)
from nexus.events.table import EventBatch, EventResults

__all__ = ["DownStates", "SlowWaveParams", "SlowWaveStream", "detect_slow_waves"]

EXTRA = ("neg_peak_s", "neg_amp_uv", "pos_peak_s", "pos_amp_uv", "ptp_uv", "slope_uv_s", "freq_hz")


@dataclass(frozen=True)
class SlowWaveParams:
    """Parameters of the slow-oscillation detector; amplitudes in µV, durations in s, band in Hz."""

    freq: tuple[float, float] = (0.3, 1.5)
    dur_neg: tuple[float, float] = (0.3, 1.5)
    dur_pos: tuple[float, float] = (0.1, 1.0)
    amp_neg: tuple[float, float] = (40.0, 200.0)
    amp_pos: tuple[float, float] = (10.0, 150.0)
    amp_ptp: tuple[float, float] = (75.0, 350.0)

    def __post_init__(self) -> None:
        for name in ("freq", "dur_neg", "dur_pos", "amp_neg", "amp_pos", "amp_ptp"):
            lo, hi = getattr(self, name)
            if not 0 <= lo < hi:
                raise InvalidInputError(
                    f"Invalid value for '{name}': expected (min, max) with 0 <= min < max, got ({lo}, {hi})."
                )


def _sw_core(x: FloatArray, fs: float, mask: BoolArray, p: SlowWaveParams) -> EventBatch:
    """The slow oscillations of every row of ``x`` (rows, samples) in µV, where ``mask`` allows their trough.

    Band-pass (zero phase), then the candidate half-waves, their criteria and columns in one compiled pass
    per row (:func:`nexus.events._kernels.slow_wave_events`; the NumPy form is in the tests).
    """
    (f,) = zero_phase_any(x, bandpass_sos(*p.freq, fs=fs, order=2))
    n = f.shape[-1]
    ranges = [np.asarray(v, dtype=np.float64) for v in (p.dur_neg, p.dur_pos, p.amp_neg, p.amp_pos, p.amp_ptp)]
    r, c = slow_wave_events(np.ascontiguousarray(f.reshape(-1, n)), np.ascontiguousarray(mask, dtype=np.bool_),
                            float(fs), *ranges)
    return EventBatch(
        "slow_oscillation",
        session=r,
        channel=np.zeros_like(r),
        onset=c[0],
        duration=c[1],
        extra={
            "neg_peak_s": c[2],
            "neg_amp_uv": c[3],
            "pos_peak_s": c[4],
            "pos_amp_uv": c[5],
            "ptp_uv": c[6],
            "slope_uv_s": c[7],
            "freq_hz": c[8],
        },
    )


def detect_slow_waves(
    data: npt.ArrayLike,
    fs: float,
    ch_names: Sequence[str] | None = None,
    stages: npt.ArrayLike | None = None,
    include: Sequence[int] | None = (2, 3),
    params: SlowWaveParams | None = None,
) -> EventResults:
    """Detect slow oscillations offline.

    Parameters
    ----------
    data : array, shape (n_samples,) or (n_channels, n_samples)
        EEG in µV.
    fs : float
        Sampling rate, in Hz (≥ 10).
    ch_names : sequence of str, optional
        Channel names.
    stages : array of int, optional
        Hypnogram, one stage per sample or per 30-s epoch.
    include : sequence of int
        Stages searched when ``stages`` is given (default N2, N3).
    params : SlowWaveParams, optional
        Detector parameters.

    Returns
    -------
    EventResults
        One row per slow oscillation.

    Notes
    -----
    Columns of ``.events``:

    - ``onset``: down-going zero crossing, in s; ``duration``: to the next down-going crossing, in s
    - ``description``: ``"slow_oscillation"``; ``channel``: channel name
    - ``neg_peak_s``, ``neg_amp_uv``: time (s) and value (µV, negative) of the down-state trough
    - ``pos_peak_s``, ``pos_amp_uv``: time (s) and value (µV) of the up-state peak
    - ``ptp_uv``: peak-to-peak amplitude, in µV
    - ``slope_uv_s``: ``ptp_uv`` over the trough-to-peak time, in µV/s
    - ``freq_hz``: 1 / duration, in Hz
    """
    x = as_2d(data, "EEG")
    fs = check_fs(fs, 10.0)
    p = params or SlowWaveParams()
    names = list(ch_names) if ch_names is not None else [f"CH{i}" for i in range(x.shape[0])]
    if len(names) != x.shape[0]:
        raise InvalidInputError(f"Got {len(names)} channel names for {x.shape[0]} channels; give one name per row.")
    mask = np.ascontiguousarray(np.broadcast_to(stage_mask(stages, x.shape[1], fs, include), x.shape))
    ev = _sw_core(x, fs, mask, p)
    ev.channel, ev.session = ev.session, np.zeros_like(ev.session)
    return EventResults("slow_oscillation", ev.to_frame(names), x.shape[1] / fs)


@dataclass
class DownStates:
    """Latest causally detected down-state of every session (NaN where none yet).

    Attributes
    ----------
    time : ndarray, shape (n_sessions,)
        Time of the trough, in s since the stream started.
    amp_uv : ndarray, shape (n_sessions,)
        Trough value of the causally band-passed EEG (0.3–1.5 Hz), in µV (negative).
    value_uv : ndarray, shape (n_sessions,)
        Last sample of the causally band-passed EEG, in µV (for phase estimation downstream).
    new : ndarray of bool, shape (n_sessions,)
        True where a down-state was found in the last block.
    """

    time: FloatArray
    amp_uv: FloatArray
    value_uv: FloatArray
    new: npt.NDArray[np.bool_]


class SlowWaveStream:
    """Batched streaming slow-oscillation detector, with causal down-state tracking.

    Parameters
    ----------
    n_sessions : int
        Number of sessions (leading axis of every block).
    fs : float
        Sampling rate, in Hz.
    params : SlowWaveParams, optional
        Detector parameters.
    down_threshold_uv : float
        Causal down-state threshold: troughs of the band-passed EEG below ``-down_threshold_uv``
        (default 40 µV, the offline minimum) are reported in :attr:`down_states`.
    hop_s : float
        How often confirmed detection runs, in s.
    """

    def __init__(
        self,
        n_sessions: int,
        fs: float,
        params: SlowWaveParams | None = None,
        down_threshold_uv: float = 40.0,
        hop_s: float = 5.0,
    ) -> None:
        fs = check_fs(fs, 10.0)
        self.params = params or SlowWaveParams()
        self.fs = fs
        self._stream = WindowedStream(
            lambda x, f, m: _sw_core(x, f, m, self.params),
            "slow_oscillation",
            n_sessions,
            fs,
            left_s=5.0,
            right_s=4.0,
            hop_s=hop_s,
            extra_names=EXTRA,
            gated=True,
        )
        self._filter = StatefulFilter(bandpass_sos(*self.params.freq, fs=fs, order=2), (n_sessions,), init="step")
        self._tail = np.zeros((n_sessions, 2))
        self.down_threshold_uv = float(down_threshold_uv)
        nan = np.full(n_sessions, np.nan)
        self.down_states = DownStates(nan.copy(), nan.copy(), np.zeros(n_sessions), np.zeros(n_sessions, bool))

    def step(self, block: npt.ArrayLike, mask: npt.ArrayLike | None = None) -> EventBatch:
        """Add a block (n_sessions, n_samples) of EEG in µV; return newly confirmed slow oscillations.

        :attr:`down_states` is updated at once from the causal filter (no look-ahead delay
        beyond one sample).
        """
        x = np.asarray(block, dtype=np.float64)
        if x.ndim == 3 and x.shape[1] == 1:
            x = x[:, 0]
        events = self._stream.step(x, mask)
        t_first = (self._stream.n_seen - x.shape[-1]) / self.fs
        y = self._filter.step(finite(x))
        z = np.concatenate([self._tail, y], axis=1)  # two samples of history confirm a trough
        trough = (z[:, 1:-1] < z[:, :-2]) & (z[:, 1:-1] <= z[:, 2:]) & (z[:, 1:-1] < -self.down_threshold_uv)
        if mask is not None:
            mm = np.asarray(mask, dtype=bool)
            trough &= mm[:, None] if mm.ndim == 1 else np.concatenate([mm[:, :1], mm[:, :-1]], axis=1)
        has: npt.NDArray[np.bool_] = np.asarray(trough.any(axis=1))
        last = trough.shape[1] - 1 - np.argmax(trough[:, ::-1], axis=1)
        ds = self.down_states
        ds.new = has
        # trough column k of z[:, 1:-1] is the sample at t_first + (k - 1) / fs
        ds.time = np.where(has, t_first + (last - 1) / self.fs, ds.time)
        ds.amp_uv = np.where(has, z[np.arange(z.shape[0]), last + 1], ds.amp_uv)
        ds.value_uv = y[:, -1] if y.shape[1] else ds.value_uv
        self._tail = z[:, -2:]
        return events

    def flush(self) -> EventBatch:
        """Return the slow oscillations still held back at the end of the stream."""
        return self._stream.flush()

    def reset(self, sessions: npt.ArrayLike) -> None:
        """Forget the signal and down-state history of some sessions."""
        idx = np.asarray(sessions, dtype=np.intp).ravel()
        self._stream.reset(idx)
        self._filter.reset(idx)
        self._tail[idx] = 0.0
        self.down_states.time[idx] = np.nan
        self.down_states.amp_uv[idx] = np.nan
