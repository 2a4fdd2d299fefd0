"""Rapid eye movements from the two EOG channels (LOC, ROC): offline and batched streaming.

Conjugate eye movements deflect LOC and ROC in opposite directions. Both channels are band-passed
to 0.5–5 Hz (zero phase) and multiplied: ``-LOC·ROC`` peaks at each movement. A rapid eye movement
is a peak of ``-LOC·ROC`` (the largest within 0.3 s) between 50² and 325² µV², with a prominence
≥ 0.8 × 50² µV² over its bases searched within ±0.6 s, whose base-to-base duration is 0.3–1.2 s.
These are YASA's ``rem_detect`` criteria (after Agarwal et al. 2005), implemented here
independently and vectorised over sessions and peaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError
from nexus.dsp.filters import bandpass_sos
from nexus.dsp.longrow import zero_phase_any
from nexus.events._kernels import peaks_at
from nexus.events.common import BoolArray, FloatArray, WindowedStream, check_fs, stage_mask
from nexus.events.table import EventBatch, EventResults

__all__ = ["REMParams", "REMStream", "detect_rems"]

EXTRA = ("peak_s", "amp_uv", "loc_uv", "roc_uv")


@dataclass(frozen=True)
class REMParams:
    """Parameters of the REM detector: band in Hz, amplitude in µV, duration in s."""

    freq: tuple[float, float] = (0.5, 5.0)
    amplitude: tuple[float, float] = (50.0, 325.0)
    duration: tuple[float, float] = (0.3, 1.2)
    relative_prominence: float = 0.8


def _rem_core(x: FloatArray, fs: float, mask: BoolArray, p: REMParams) -> EventBatch:
    return _rem_events(_rem_filter(x, fs, p), fs, mask, p)


def _rem_filter(x: FloatArray, fs: float, p: REMParams) -> FloatArray:
    """LOC and ROC (rows, 2, n) band-passed (zero phase), in µV."""
    (f,) = zero_phase_any(x, bandpass_sos(*p.freq, fs=fs, order=2))
    return f


def _rem_events(f: FloatArray, fs: float, mask: BoolArray, p: REMParams) -> EventBatch:
    """Eye movements in the filtered LOC and ROC ``f`` (rows, 2, n) where ``mask`` (rows, n) allows them."""
    loc, roc = f[:, 0], f[:, 1]
    # > 0 where the eyes deflect LOC and ROC in opposite directions, in µV²; -(a·b) is (-a)·b bit for bit
    negp = np.multiply(loc, roc)
    np.negative(negp, out=negp)
    n = negp.shape[-1]
    dist = max(1, round(p.duration[0] * fs))
    half = max(1, round(p.duration[1] * fs / 2))
    hmin, hmax = p.amplitude[0] ** 2, p.amplitude[1] ** 2
    # samples in the amplitude range and the searched stages, then those that are the largest within
    # ±dist // 2 (maximum_filter1d's peaks, tested only where they could count); their bases are sought next
    r, i = np.nonzero((negp >= hmin) & (negp <= hmax) & mask)
    if i.size:
        is_peak = np.empty(i.size, dtype=np.bool_)
        peaks_at(np.ascontiguousarray(negp.reshape(-1, n)), r, i, dist // 2, is_peak)
        r, i = r[is_peak], i[is_peak]
    keep = (i >= 1) & (i < n - 1)
    r, i = r[keep], i[keep]
    # bases: the lowest point on each side within ±half before a higher sample is met (as a peak's
    # prominence is defined); gathered as (n_peaks, half + 1) windows, no loop over peaks
    top = negp[r, i][:, None]
    offs = np.arange(half + 1)
    li = np.clip(i[:, None] - offs, 0, n - 1)
    ri = np.clip(i[:, None] + offs, 0, n - 1)
    lv, rv = negp[r[:, None], li], negp[r[:, None], ri]
    lv = np.where(np.cumsum(lv > top, axis=1) > 0, np.inf, lv)
    rv = np.where(np.cumsum(rv > top, axis=1) > 0, np.inf, rv)
    la, ra = np.argmin(lv, axis=1), np.argmin(rv, axis=1)
    k = np.arange(i.size)
    prom = top[:, 0] - np.maximum(lv[k, la], rv[k, ra])
    left, right = i - la, i + ra
    dur = (right - left) / fs
    good = (prom >= p.relative_prominence * hmin) & (dur >= p.duration[0]) & (dur < p.duration[1])
    r, i, left, dur = r[good], i[good], left[good], dur[good]
    return EventBatch(
        "rem", session=r, channel=np.zeros_like(r), onset=left / fs, duration=dur,
        extra={"peak_s": i / fs, "amp_uv": np.sqrt(negp[r, i]), "loc_uv": loc[r, i], "roc_uv": roc[r, i]},
    )


def detect_rems(
    loc: npt.ArrayLike,
    roc: npt.ArrayLike,
    fs: float,
    stages: npt.ArrayLike | None = None,
    include: Sequence[int] | None = (4,),
    params: REMParams | None = None,
    channel: str = "LOC-ROC",
) -> EventResults:
    """Detect rapid eye movements offline.

    Parameters
    ----------
    loc, roc : array, shape (n_samples,)
        Left and right outer canthus EOG, in µV.
    fs : float
        Sampling rate, in Hz (≥ 16).
    stages : array of int, optional
        Hypnogram (per sample or per 30-s epoch); with it, only ``include`` stages are searched.
    include : sequence of int
        Stages searched (default R).
    params : REMParams, optional
        Detector parameters.
    channel : str
        Name written in the ``channel`` column.

    Returns
    -------
    EventResults
        One row per eye movement.

    Notes
    -----
    Columns of ``.events``:

    - ``onset``, ``duration``: from the left to the right base of the peak, in s
    - ``description``: ``"rem"``; ``channel``: ``channel``
    - ``peak_s``: time of the largest deflection, in s
    - ``amp_uv``: ``sqrt(-LOC·ROC)`` at the peak, in µV
    - ``loc_uv``, ``roc_uv``: filtered LOC and ROC at the peak, in µV
    """
    a = np.asarray(loc, dtype=np.float64).ravel()
    b = np.asarray(roc, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InvalidInputError(f"LOC and ROC differ in length ({a.size} vs {b.size} samples); give equal lengths.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InvalidInputError("Invalid EOG: it contains NaN or infinite values. Clean the bad segment first.")
    fs = check_fs(fs, 16.0)
    p = params or REMParams()
    mask = stage_mask(stages, a.size, fs, include)[None, :]
    f = _rem_filter(np.stack([a, b])[None], fs, p)  # the stacked copy is freed before the search
    ev = _rem_events(f, fs, mask, p)
    ev.session = np.zeros_like(ev.session)
    return EventResults("rem", ev.to_frame([channel]), a.size / fs)


class REMStream:
    """Batched streaming REM detector; blocks are (n_sessions, 2, n_samples) with LOC then ROC, in µV."""

    def __init__(self, n_sessions: int, fs: float, params: REMParams | None = None, hop_s: float = 5.0) -> None:
        fs = check_fs(fs, 16.0)
        self.params = params or REMParams()
        self._stream = WindowedStream(
            lambda x, f, m: _rem_core(x, f, m, self.params), "rem", n_sessions, fs, inner_shape=(2,),
            left_s=4.0, right_s=3.0, hop_s=hop_s, extra_names=EXTRA, gated=True,
        )

    def step(self, block: npt.ArrayLike, mask: npt.ArrayLike | None = None) -> EventBatch:
        """Add a block (n_sessions, 2, n_samples) of LOC/ROC; return newly confirmed eye movements."""
        return self._stream.step(block, mask)

    def flush(self) -> EventBatch:
        """Return the eye movements still held back at the end of the stream."""
        return self._stream.flush()

    def reset(self, sessions: npt.ArrayLike) -> None:
        """Forget the signal of some sessions."""
        self._stream.reset(sessions)
