"""Rapid eye movements from the two EOG channels (LOC, ROC): offline and batched streaming.

Conjugate eye movements deflect LOC and ROC in opposite directions. Both channels are band-passed
to 0.5–5 Hz (zero phase); a rapid eye movement is a stretch where the two have opposite signs
(their product is negative), whose largest geometric-mean deflection ``sqrt(-LOC·ROC)`` lies in
50–325 µV and which lasts 0.3–1.2 s (amplitude and duration windows as YASA's ``rem_detect``;
the extent rule is ours).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError
from nexus.dsp.filters import bandpass_sos, zero_phase
from nexus.dsp.moving import runs
from nexus.events.common import BoolArray, FloatArray, WindowedStream, check_fs, segment_argext, stage_mask
from nexus.events.table import EventBatch, EventResults

__all__ = ["REMParams", "REMStream", "detect_rems"]

EXTRA = ("peak_s", "amp_uv", "loc_uv", "roc_uv")


@dataclass(frozen=True)
class REMParams:
    """Parameters of the REM detector: band in Hz, amplitude in µV, duration in s."""

    freq: tuple[float, float] = (0.5, 5.0)
    amplitude: tuple[float, float] = (50.0, 325.0)
    duration: tuple[float, float] = (0.3, 1.2)


def _rem_core(x: FloatArray, fs: float, mask: BoolArray, p: REMParams) -> EventBatch:
    f = zero_phase(x, bandpass_sos(*p.freq, fs=fs, order=2))  # (rows, 2, n)
    loc, roc = f[:, 0], f[:, 1]
    prod = -loc * roc
    amp = np.sqrt(np.maximum(prod, 0.0))
    r, a, b = runs(prod > 0)
    n = prod.shape[-1]
    inner = (a > 0) & (b < n)
    r, a, b = r[inner], a[inner], b[inner]
    peak, pidx = segment_argext(amp, r, a, b, find_max=True)
    dur = (b - a) / fs
    good = (peak >= p.amplitude[0]) & (peak <= p.amplitude[1]) & (dur >= p.duration[0]) & (dur <= p.duration[1])
    if good.any():
        good &= mask[r, pidx]
    r, a, dur, pidx, peak = r[good], a[good], dur[good], pidx[good], peak[good]
    return EventBatch(
        "rem", session=r, channel=np.zeros_like(r), onset=a / fs, duration=dur,
        extra={"peak_s": pidx / fs, "amp_uv": peak, "loc_uv": loc[r, pidx], "roc_uv": roc[r, pidx]},
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

    - ``onset``, ``duration``: the stretch of opposite-sign deflections, in s
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
    ev = _rem_core(np.stack([a, b])[None], fs, mask, p)
    ev.session = np.zeros_like(ev.session)
    return EventResults("rem", ev.to_frame([channel]), a.size / fs)


class REMStream:
    """Batched streaming REM detector; blocks are (n_sessions, 2, n_samples) with LOC then ROC, in µV."""

    def __init__(self, n_sessions: int, fs: float, params: REMParams | None = None, hop_s: float = 5.0) -> None:
        fs = check_fs(fs, 16.0)
        self.params = params or REMParams()
        self._stream = WindowedStream(
            lambda x, f, m: _rem_core(x, f, m, self.params), "rem", n_sessions, fs, inner_shape=(2,),
            left_s=4.0, right_s=3.0, hop_s=hop_s, extra_names=EXTRA,
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
