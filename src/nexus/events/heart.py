"""Heart rate and heart-rate variability from the ECG: R-peaks, RR intervals, HR, RMSSD, surges.

R-peaks are found as in the Pan–Tompkins family: band-pass 5–20 Hz (zero phase), squared
derivative, 120 ms moving average; a peak is the largest value within ±250 ms (refractory
period) that exceeds 30 % of the largest value within ±2 s and 2.5 times the mean over 4 s, and
whose band-passed ECG reaches 50 µV within ±50 ms (no heart rate is made up from noise).
The ECG's polarity does not matter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.dsp.filters import bandpass_sos
from nexus.dsp.longrow import zero_phase_any
from nexus.dsp.moving import runs, window_samples
from nexus.events._kernels import beat_candidates
from nexus.events.common import BoolArray, FloatArray, WindowedStream, as_2d, check_fs
from nexus.events.table import EventBatch

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["HeartRateResults", "HeartRateStream", "detect_heartbeats"]

EXTRA = ("rr_s", "hr_bpm")
MIN_QRS_UV = 50.0  # R waves are 0.5-2 mV; below 50 µV (band-passed) it is noise or no ECG
RR_RANGE_S = (0.3, 2.0)  # 30–200 bpm: RR intervals outside are gaps or misdetections


def _candidates(f: FloatArray, fs: float, mask: BoolArray) -> BoolArray:
    """R-peak candidates of the band-passed ECG ``f`` (rows, samples), in one compiled pass per row.

    See :func:`nexus.events._kernels.beat_candidates` (the NumPy/SciPy form it equals is in the tests).
    """
    out = np.zeros(f.shape, dtype=bool)
    n = f.shape[-1]
    if n == 0:
        return out
    beat_candidates(
        np.ascontiguousarray(f.reshape(-1, n)),
        float(fs),
        window_samples(0.12, fs),
        window_samples(0.5, fs),
        window_samples(4.0, fs),
        window_samples(4.0, fs),
        np.ascontiguousarray(np.broadcast_to(mask, f.shape).reshape(-1, n)),
        out.reshape(-1, n),
    )
    return out


def _beat_core(x: FloatArray, fs: float, mask: BoolArray) -> EventBatch:
    (f,) = zero_phase_any(x, bandpass_sos(5.0, min(20.0, 0.45 * fs), fs=fs, order=2))
    r, idx = np.nonzero(_candidates(f, fs, mask))
    # a QRS is large: at least MIN_QRS_UV within ±50 ms on the band-passed ECG (noise alone is not)
    # (the ±50 ms maximum, gathered at the candidate peaks only: as maximum_filter1d, "nearest" edges)
    w = window_samples(0.1, fs)
    cols = np.minimum(np.maximum(idx[:, None] + (np.arange(w) - w // 2), 0), f.shape[-1] - 1)  # (np.clip's)
    amp = np.abs(f[r[:, None], cols]).max(axis=1) if idx.size else np.zeros(0)
    big = amp >= MIN_QRS_UV
    r, idx = r[big], idx[big]
    t = idx / fs
    rr = np.full(t.size, np.nan)
    same = np.zeros(t.size, dtype=bool)
    if t.size > 1:
        same[1:] = r[1:] == r[:-1]
        rr[1:] = np.where(same[1:], np.diff(t), np.nan)
    rr = np.where((rr >= RR_RANGE_S[0]) & (rr <= RR_RANGE_S[1]), rr, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        hr = 60.0 / rr
    return EventBatch(
        "r_peak",
        session=r,
        channel=np.zeros_like(r),
        onset=t,
        duration=np.zeros(t.size),
        extra={"rr_s": rr, "hr_bpm": hr},
    )


class HeartRateResults:
    """R-peaks of one ECG with heart-rate summaries.

    Attributes
    ----------
    beats : pandas.DataFrame
        One row per R-peak: ``onset`` (s), ``rr_s`` (interval from the previous beat, s; NaN
        when implausible, outside 0.3–2 s) and ``hr_bpm`` (60 / RR).
    duration_s : float
        Length of the ECG, in s.
    """

    def __init__(self, beats: pd.DataFrame, duration_s: float, channel: str) -> None:
        self.beats = beats
        self.duration_s = float(duration_s)
        self.channel = channel

    def __len__(self) -> int:
        return len(self.beats)

    def summary(self, window_s: float = 30.0) -> pd.DataFrame:
        """Heart rate and HRV per window (default one 30-s epoch).

        Returns
        -------
        pandas.DataFrame
            ``onset``, ``duration`` (s), ``description`` (``"heart_rate"``), ``channel``,
            ``hr_bpm`` (mean heart rate, 60 / mean RR), ``rmssd_ms`` (root mean square of
            successive RR differences, in ms) and ``n_beats``.
        """
        import pandas as pd

        window_s = check_number("window_s", window_s, gt=0, unit="s")
        n_win = max(1, int(np.ceil(self.duration_s / window_s)))
        t = self.beats["onset"].to_numpy()
        rr = self.beats["rr_s"].to_numpy()
        w = np.minimum((t // window_s).astype(np.int64), n_win - 1)
        ok = np.isfinite(rr)
        cnt = np.bincount(w[ok], minlength=n_win)
        sum_rr = np.bincount(w[ok], weights=rr[ok], minlength=n_win)
        drr = np.diff(rr)
        okd = np.isfinite(drr) & (w[1:] == w[:-1])
        sq = np.bincount(w[1:][okd], weights=drr[okd] ** 2, minlength=n_win)
        nd = np.bincount(w[1:][okd], minlength=n_win)
        with np.errstate(invalid="ignore", divide="ignore"):
            hr = np.where(cnt > 0, 60.0 / (sum_rr / np.maximum(cnt, 1)), np.nan)
            rmssd = np.where(nd > 0, 1000.0 * np.sqrt(sq / np.maximum(nd, 1)), np.nan)
        onset = np.arange(n_win) * window_s
        return pd.DataFrame(
            {
                "onset": onset,
                "duration": np.minimum(window_s, self.duration_s - onset),
                "description": "heart_rate",
                "channel": self.channel,
                "hr_bpm": hr,
                "rmssd_ms": rmssd,
                "n_beats": np.bincount(w, minlength=n_win),
            }
        )

    def surges(
        self, rise_bpm: float = 15.0, rise_ratio: float = 1.2, min_duration_s: float = 10.0, baseline_s: float = 300.0
    ) -> pd.DataFrame:
        """Heart-rate surges: HR above its baseline for at least ``min_duration_s``.

        The HR (resampled at 1 Hz, median of 5 beats) must exceed both baseline + ``rise_bpm``
        and baseline × ``rise_ratio``; the baseline is the median HR over the preceding
        ``baseline_s`` seconds. Columns: ``onset``, ``duration``, ``description``
        (``"hr_surge"``), ``channel``, ``hr_bpm`` (peak), ``baseline_bpm``.
        """
        import pandas as pd

        cols = ["onset", "duration", "description", "channel", "hr_bpm", "baseline_bpm"]
        b = self.beats.dropna(subset=["hr_bpm"])
        n = int(self.duration_s)
        if len(b) < 5 or n < 2:
            return pd.DataFrame(columns=cols)
        hr_beat = b["hr_bpm"].rolling(5, center=True, min_periods=1).median().to_numpy()
        grid = np.arange(n, dtype=np.float64)
        hr = np.interp(grid, b["onset"].to_numpy(), hr_beat)
        base = pd.Series(hr).rolling(int(baseline_s), min_periods=30).median().shift(1).bfill().to_numpy()
        up = (hr >= base + rise_bpm) & (hr >= base * rise_ratio)
        _, a, z = runs(up)
        keep = (z - a) >= min_duration_s
        a, z = a[keep], z[keep]
        peak = np.array([hr[i:j].max() for i, j in zip(a, z, strict=True)])  # one per surge
        return pd.DataFrame(
            {
                "onset": a.astype(float),
                "duration": (z - a).astype(float),
                "description": "hr_surge",
                "channel": self.channel,
                "hr_bpm": peak,
                "baseline_bpm": base[a],
            },
            columns=cols,
        )


def detect_heartbeats(ecg: npt.ArrayLike, fs: float, channel: str = "ECG") -> HeartRateResults:
    """Detect R-peaks in one ECG channel (µV) sampled at ``fs`` Hz (≥ 50) offline.

    Returns
    -------
    HeartRateResults
        Beats, per-window heart rate and RMSSD (:meth:`HeartRateResults.summary`) and surges.
    """
    x = as_2d(np.asarray(ecg, dtype=np.float64).ravel(), "ECG")
    fs = check_fs(fs, 50.0)
    ev = _beat_core(x, fs, np.ones_like(x, dtype=bool))
    df = ev.to_frame([channel])[["onset", "rr_s", "hr_bpm"]]
    return HeartRateResults(df, x.shape[1] / fs, channel)


class HeartRateStream:
    """Batched streaming R-peak detector; blocks are (n_sessions, n_samples) of ECG in µV.

    ``step`` returns the new beats (``description`` ``"r_peak"``) with ``rr_s`` and ``hr_bpm``,
    up to ``hop_s`` + 2.5 s after they happen. :meth:`current` gives every session's heart rate
    and RMSSD over its latest beats (the last ``history`` RR intervals are kept per session).
    """

    def __init__(self, n_sessions: int, fs: float, hop_s: float = 5.0, history: int = 128) -> None:
        fs = check_fs(fs, 50.0)
        self._stream = WindowedStream(
            _beat_core, "r_peak", n_sessions, fs, left_s=3.0, right_s=2.5, hop_s=hop_s, extra_names=EXTRA, gated=True
        )
        self.history = int(check_number("history", history, ge=2))
        self._t = np.full((n_sessions, self.history), np.nan)  # beat times, ring per session
        self._rr = np.full((n_sessions, self.history), np.nan)
        self._count = np.zeros(n_sessions, dtype=np.int64)

    def _remember(self, ev: EventBatch) -> None:
        if not len(ev):
            return
        # events come sorted by session then onset: rank of each beat within its session
        first = np.r_[0, np.flatnonzero(np.diff(ev.session)) + 1]
        sizes = np.diff(np.r_[first, len(ev)])
        rank = np.arange(len(ev)) - np.repeat(first, sizes)
        pos = (self._count[ev.session] + rank) % self.history
        self._t[ev.session, pos] = ev.onset
        self._rr[ev.session, pos] = ev.extra["rr_s"]
        np.add.at(self._count, ev.session, 1)

    def step(self, block: npt.ArrayLike, mask: npt.ArrayLike | None = None) -> EventBatch:
        """Add a block (n_sessions, n_samples) of ECG; return the newly confirmed beats."""
        ev = self._stream.step(block, mask)
        self._remember(ev)
        return ev

    def flush(self) -> EventBatch:
        """Return the beats still held back at the end of the stream."""
        ev = self._stream.flush()
        self._remember(ev)
        return ev

    def current(self, window_s: float = 30.0) -> tuple[FloatArray, FloatArray]:
        """Heart rate (bpm) and RMSSD (ms) of every session over its beats of the last ``window_s``.

        The window ends at the latest confirmed beat of each session. NaN where fewer than two
        plausible RR intervals fall in it.

        Returns
        -------
        hr_bpm, rmssd_ms : ndarray, shape (n_sessions,)
        """
        window_s = check_number("window_s", window_s, gt=0, unit="s")
        last = np.nanmax(np.where(np.isnan(self._t), -np.inf, self._t), axis=1)
        inside = (self._t > (last - window_s)[:, None]) & np.isfinite(self._rr)
        rr = np.where(inside, self._rr, np.nan)
        n = inside.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            hr = np.where(n >= 2, 60.0 / np.nanmean(np.where(n[:, None] > 0, rr, 0.0), axis=1), np.nan)
            # successive differences in time order: sort each session's ring by beat time
            order = np.argsort(np.where(inside, self._t, np.inf), axis=1)
            rs = np.take_along_axis(rr, order, axis=1)
            d = np.diff(rs, axis=1)
            nd = np.isfinite(d).sum(axis=1)
            rmssd = np.where(nd >= 1, 1000.0 * np.sqrt(np.nansum(d * d, axis=1) / np.maximum(nd, 1)), np.nan)
        return hr, rmssd

    def reset(self, sessions: npt.ArrayLike) -> None:
        """Forget the signal and beat history of some sessions."""
        idx = np.asarray(sessions, dtype=np.intp).ravel()
        self._stream.reset(idx)
        self._t[idx] = np.nan
        self._rr[idx] = np.nan
        self._count[idx] = 0
