"""The live stager's smoothing history and running robust scaling.

YASA's centred 7.5-min triangular smoothing becomes its trailing half (current epoch and the 7
before it), the 2-min past mean stays as it is, and the night-wide robust z-score becomes a
running one: median and 5th/95th percentiles of the night so far, from a history of at most 128
epochs per session that is thinned by half whenever it fills (so it always spans the whole night
evenly), refreshed every few epochs for a rotating share of the sessions, and blended with a
population prior (``live_prior.json``, made by ``bench/live_prior.py`` from synthetic nights) that
weighs as much as ``prior_epochs`` epochs, so that the first hour is not scaled by wake alone, plus
:data:`REST_WEIGHT` epochs for every epoch of the expected night not seen yet: the target is the
night-wide scaling of the offline stager, and the night so far is a biased sample of it (a night
with much N3 in its first hours would otherwise scale its deep sleep by deep sleep and call it N2).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nexus.staging.live._layout import FloatArray

_HIST = 7  # completed epochs kept for the trailing smoothing
_TRIANG_PAST = np.arange(7, 0, -1) / 8.0  # weights of the 1..7 previous epochs (current: 1)
_NORM_HIST = 128  # epochs kept per session for the running robust scaling (thinned by half when full)
_NORM_EVERY = 5  # refresh the scaling of each session every this many epochs (after the first _NORM_WARM)
_NORM_WARM = 20
REST_WEIGHT = 0.25
"""Weight of the prior, in epochs, per epoch of the expected night still to come."""
PRIOR_FILE = Path(__file__).resolve().parents[1] / "live_prior.json"


class RunningScaling:
    """Raw features of the latest closed epochs and the running scaling of the smoothed ones, per session.

    Parameters
    ----------
    n_sessions : int
        Sessions.
    raw_names : list of str
        Names of the raw features (``"<kind>_<feature>"``).
    prior : mapping
        Population quantiles (5, 50, 95 %) keyed ``"<feature>_c7"`` and ``"<feature>_p2"``.
    prior_epochs : float
        How many epochs of a session's own history the prior is worth.
    row0 : int
        Index of the first session in the whole stager (the rotating refresh uses it).
    night_epochs : float
        Expected epochs in the night: the prior also stands in, :data:`REST_WEIGHT` epochs each,
        for those of them not seen yet (0: the prior weighs ``prior_epochs`` only).
    """

    def __init__(
        self,
        n_sessions: int,
        raw_names: list[str],
        prior: Mapping[str, Sequence[float]],
        prior_epochs: float,
        row0: int = 0,
        night_epochs: float = 0.0,
    ) -> None:
        self.n_sessions = n_sessions
        self.prior_epochs = prior_epochs
        self.night_epochs = night_epochs
        self._row0 = row0
        s = n_sessions
        n_raw = len(raw_names)
        self._hist = np.full((s, _HIST, n_raw), np.nan)  # raw features of the last completed epochs
        # running robust scaling: thinned history of the smoothed features, and its quantiles 5/50/95
        self._norm_hist = np.full((s, _NORM_HIST, 2, n_raw), np.nan, dtype=np.float32)
        self._norm_len = 0
        self._norm_stride = 1
        self._q = np.full((s, 2, n_raw, 3), np.nan)
        self._prior = np.full((2, n_raw, 3), np.nan)
        for i, name in enumerate(raw_names):
            for j, suffix in enumerate(("c7", "p2")):
                if f"{name}_{suffix}" in prior:
                    self._prior[j, i] = np.asarray(prior[f"{name}_{suffix}"], dtype=np.float64)
        self._epochs_seen = np.zeros(s)  # epochs since each session (re)started
        self._hist_sums = _history_sums(self._hist)
        self._scale: tuple[FloatArray, FloatArray] | None = None

    @property
    def hist_sums(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Weighted sums and weights of the closed epochs for the trailing smoothing (see :func:`_history_sums`)."""
        return self._hist_sums

    def close_epoch(self, raw: FloatArray, bad: npt.NDArray[np.bool_], smooth: FloatArray, n_epochs: int) -> None:
        """Add the closing epoch (the ``n_epochs``-th) to the history; refresh the quantiles of some sessions."""
        keep = np.where(bad[:, None], np.nan, raw)
        self._hist = np.concatenate([self._hist[:, 1:], keep[:, None, :]], axis=1)
        self._hist_sums = _history_sums(self._hist)
        self._track_quantiles(smooth, ~bad, n_epochs)

    def _track_quantiles(self, v: FloatArray, ok: npt.NDArray[np.bool_], n_epochs: int) -> None:
        """Add this epoch to the thinned history; refresh the quantiles of some sessions."""
        self._epochs_seen += 1
        self._scale = None
        if (n_epochs - 1) % self._norm_stride == 0:
            if self._norm_len == _NORM_HIST:  # full: keep every other epoch, record half as often
                kept = self._norm_hist[:, ::2].copy()
                self._norm_hist[:] = np.nan
                self._norm_hist[:, : kept.shape[1]] = kept
                self._norm_len = kept.shape[1]
                self._norm_stride *= 2
            self._norm_hist[:, self._norm_len] = np.where(ok[:, None, None], v, np.nan)
            self._norm_len += 1
        if n_epochs <= _NORM_WARM:
            rows = np.arange(self.n_sessions)
        else:
            glob = np.arange(self.n_sessions) + self._row0  # index in the whole stager (shards)
            rows = np.flatnonzero(glob % _NORM_EVERY == n_epochs % _NORM_EVERY)
        if rows.size:
            self._q[rows] = _quantiles(self._norm_hist[rows, : self._norm_len])

    def scaling(self) -> tuple[FloatArray, FloatArray]:
        """Centre (NaN: none yet) and spread of the running robust scaling, (s, 2, f).

        They change only when an epoch closes or a session is reset, so they are kept until then.
        """
        if self._scale is None:
            m = np.minimum(float(self._norm_len * self._norm_stride), self._epochs_seen)[:, None, None, None]
            w0 = self.prior_epochs + REST_WEIGHT * np.maximum(self.night_epochs - m, 0.0)
            q = np.where(np.isfinite(self._q), self._q, self._prior)
            if self.prior_epochs > 0 or self.night_epochs > 0:
                own = m / (w0 + m)  # (s, 1, 1, 1): the share of the session's own quantiles
                q = np.where(np.isfinite(self._prior), self._prior + own * (q - self._prior), q)
            with np.errstate(invalid="ignore"):
                spread = q[..., 2] - q[..., 0]
                spread = np.where(np.isfinite(spread) & (spread >= 1e-12), spread, 1.0)
            self._scale = (np.where(np.isfinite(q[..., 1]), q[..., 1], np.nan), spread)
        return self._scale

    def reset(self, idx: npt.NDArray[np.intp]) -> None:
        """Forget the history and scaling of the sessions ``idx``."""
        self._hist[idx] = np.nan
        self._hist_sums = _history_sums(self._hist)
        self._scale = None
        self._norm_hist[idx] = np.nan
        self._q[idx] = np.nan
        self._epochs_seen[idx] = 0.0


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
