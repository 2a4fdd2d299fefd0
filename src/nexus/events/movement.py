"""Body movement from a 3-axis accelerometer: offline and batched streaming.

Activity is computed per one-second bin as the root of the summed per-axis variances (the
dynamic acceleration, gravity removed), in milli-g. A movement is a run of seconds with
activity ≥ ``threshold_mg`` (gaps shorter than ``max_gap_s`` bridged) lasting at least
``min_duration_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError
from nexus.dsp.moving import BinAccumulator
from nexus.events._kernels import movement_events
from nexus.events.common import BoolArray, FloatArray, WindowedStream, check_fs
from nexus.events.table import EventBatch, EventResults

__all__ = ["MovementParams", "MovementStream", "activity_per_second", "detect_movements"]

EXTRA = ("peak_mg", "mean_mg")
MAX_EVENT_S = 120.0  # longer movements are reported from the last 120 s only (streaming)


@dataclass(frozen=True)
class MovementParams:
    """Movement thresholds: activity in milli-g, durations in s."""

    threshold_mg: float = 20.0
    min_duration_s: float = 1.0
    max_gap_s: float = 2.0


def activity_per_second(acc_sum: FloatArray, acc_sq: FloatArray, n: int) -> FloatArray:
    """Dynamic acceleration (milli-g) per bin from per-axis sums, shape (..., 3, bins) → (..., bins)."""
    var = np.maximum(acc_sq / n - (acc_sum / n) ** 2, 0.0)
    return np.sqrt(var.sum(axis=-2))


def _movement_core(act: FloatArray, fs: float, mask: BoolArray, p: MovementParams) -> EventBatch:
    """The movements of a window of activity (rows, bins) at ``fs`` bins per s, in one compiled pass per row.

    See :func:`nexus.events._kernels.movement_events` (the NumPy form it equals is in the tests).
    """
    r, a, b, peak, total = movement_events(
        np.ascontiguousarray(act, dtype=np.float64), np.ascontiguousarray(mask, dtype=bool), float(p.threshold_mg),
        round(p.max_gap_s * fs), float(fs), float(p.min_duration_s),
    )
    return EventBatch("movement", session=r, channel=np.zeros_like(r), onset=a / fs, duration=(b - a) / fs,
                      extra={"peak_mg": peak, "mean_mg": total / np.maximum(b - a, 1)})


def detect_movements(acc: npt.ArrayLike, fs: float, params: MovementParams | None = None,
                     channel: str = "Acc") -> EventResults:
    """Detect body movements offline.

    Parameters
    ----------
    acc : array, shape (3, n_samples)
        Accelerometer X, Y, Z, in milli-g.
    fs : float
        Sampling rate, in Hz (≥ 1; one-second bins of ``round(fs)`` samples).
    params : MovementParams, optional
        Thresholds.
    channel : str
        Name written in the ``channel`` column.

    Returns
    -------
    EventResults
        One row per movement.

    Notes
    -----
    Columns of ``.events``: ``onset``, ``duration`` (s, whole seconds), ``description``
    (``"movement"``), ``channel``, ``peak_mg`` and ``mean_mg`` (peak and mean activity, milli-g).
    """
    x = np.asarray(acc, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 3:
        raise InvalidInputError(f"Invalid accelerometer data: expected shape (3, n_samples), got {x.shape}.")
    if not np.isfinite(x).all():
        raise InvalidInputError("Invalid accelerometer data: it contains NaN or infinite values.")
    fs = check_fs(fs, 1.0)
    n = max(1, round(fs))
    s, sq = BinAccumulator((1, 3), n).step(x[None])
    act = activity_per_second(s, sq, n)
    ev = _movement_core(act, 1.0, np.ones_like(act, dtype=bool), params or MovementParams())
    return EventResults("movement", ev.to_frame([channel]), x.shape[1] / fs)


class MovementStream:
    """Batched streaming movement detector; blocks are (n_sessions, 3, n_samples) in milli-g.

    Movements are reported when they end (at most ``max_gap_s + hop_s`` + 1 s late).
    """

    def __init__(self, n_sessions: int, fs: float, params: MovementParams | None = None,
                 hop_s: float = 2.0) -> None:
        fs = check_fs(fs, 1.0)
        self.params = params or MovementParams()
        self.n = max(1, round(fs))
        self._acc = BinAccumulator((n_sessions, 3), self.n)
        self._stream = WindowedStream(
            lambda a, f, m: _movement_core(a, f, m, self.params), "movement", n_sessions, 1.0,
            left_s=MAX_EVENT_S, right_s=self.params.max_gap_s + 1.0, hop_s=hop_s, extra_names=EXTRA,
            confirm_by_end=True,
        )

    def step(self, block: npt.ArrayLike) -> EventBatch:
        """Add a block (n_sessions, 3, n_samples); return the movements that ended."""
        s, sq = self._acc.step(block)
        return self._stream.step(activity_per_second(s, sq, self.n))

    def flush(self) -> EventBatch:
        """Return the movements still held back at the end of the stream."""
        return self._stream.flush()

    def reset(self, sessions: npt.ArrayLike) -> None:
        """Forget the signal of some sessions."""
        idx = np.asarray(sessions, dtype=np.intp).ravel()
        self._acc.reset(idx)
        self._stream.reset(idx)
