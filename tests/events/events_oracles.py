"""Reference (NumPy/SciPy) forms of the event detectors' kernels: the oracles they are tested against.

:mod:`nexus.events._kernels` fuses each of these chains of whole-array passes into one compiled
pass per row with the same arithmetic; the tests compare the two.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.ndimage import maximum_filter1d

from nexus.dsp.filters import bandpass_sos
from nexus.dsp.longrow import zero_phase_any
from nexus.dsp.moving import corr_from_moments, cumulative, moving_mean, runs, window_mean, window_samples
from nexus.events._kernels import half_waves as compiled_half_waves
from nexus.events.arousals import ArousalParams, _trailing_mean
from nexus.events.common import BoolArray, FloatArray, fill_short_gaps, finite, segment_argext, segment_reduce
from nexus.events.movement import MovementParams
from nexus.events.slow_waves import SlowWaveParams
from nexus.events.spindles import SpindleParams
from nexus.events.table import EventBatch


def beat_candidates(f: FloatArray, fs: float, mask: BoolArray) -> BoolArray:
    """R-peak candidates of the band-passed ECG ``f`` (rows, samples): the NumPy reference form."""
    d = np.diff(f, axis=-1, prepend=f[..., :1]) * fs
    env = moving_mean(d * d, window_samples(0.12, fs))
    local = maximum_filter1d(env, size=window_samples(0.5, fs), axis=-1, mode="nearest")
    wide = maximum_filter1d(env, size=window_samples(4.0, fs), axis=-1, mode="nearest")
    # noise has no beat standing out of its 4-s mean; a QRS does (peak / mean ≥ ~3 up to 200 bpm)
    floor = 2.5 * moving_mean(env, window_samples(4.0, fs))
    return np.asarray((env == local) & (env >= 0.3 * wide) & (env > floor) & (env > 0) & mask)


def half_waves(f: FloatArray) -> tuple[npt.NDArray[Any], ...]:
    """Slow-wave candidates: the NumPy reference form of :func:`nexus.events._kernels.half_waves`."""
    n = f.shape[-1]
    neg = f < 0
    r_neg, s_neg, e_neg = runs(neg)
    r_pos, s_pos, e_pos = runs(~neg)
    # each interior negative half-wave is followed by the positive half-wave starting at its end
    inner = (s_neg > 0) & (e_neg < n)
    r_neg, s_neg, e_neg = r_neg[inner], s_neg[inner], e_neg[inner]
    key_pos = r_pos * (n + 1) + s_pos
    key = r_neg * (n + 1) + e_neg
    if key_pos.size == 0:
        key = key[:0]
    j = np.clip(np.searchsorted(key_pos, key), 0, max(key_pos.size - 1, 0))
    ok = (key_pos[j] == key) & (e_pos[j] < n) if key.size else np.zeros(0, dtype=bool)
    r, a, b = r_neg[: ok.size][ok], s_neg[: ok.size][ok], e_neg[: ok.size][ok]
    c = e_pos[j[ok]] if ok.size else np.zeros(0, dtype=np.intp)
    neg_min, neg_idx = segment_argext(f, r, a, b, find_max=False)
    pos_max, pos_idx = segment_argext(f, r, b, c, find_max=True)
    return r, a, b, c, neg_min, neg_idx, pos_max, pos_idx


def moving_features(broad: FloatArray, sigma: FloatArray, fs: float, p: SpindleParams) -> tuple[FloatArray, FloatArray]:
    """(relative sigma power, moving correlation) and moving RMS of sigma: the NumPy reference form."""
    # one cumulative sum of sigma, broad and their products serves every moving window below
    prods = np.empty((5, *broad.shape))
    prods[0], prods[1] = sigma, broad
    np.multiply(sigma, broad, out=prods[2])
    np.multiply(sigma, sigma, out=prods[3])
    np.multiply(broad, broad, out=prods[4])
    c = cumulative(prods)
    del prods
    n2 = window_samples(p.rel_pow_window, fs)
    pw = window_mean(c[3:], n2)
    relpow = pw[0] / np.maximum(pw[1], 1e-12)
    m = window_mean(c, window_samples(0.3, fs))
    corr = corr_from_moments(*m)
    mrms = np.sqrt(np.maximum(m[3], 0.0))
    return np.stack([relpow, corr]), mrms


def spindle_candidates(relpow: FloatArray, corr: FloatArray, mrms: FloatArray, thr: FloatArray, mask: BoolArray,
                       fs: float, p: SpindleParams) -> BoolArray:
    """Samples where more than ``min_criteria - 1`` criteria hold on average over 100 ms: the NumPy form."""
    n_pass = (relpow >= p.rel_pow).astype(np.float64) + (corr >= p.corr) + (mrms >= thr[:, None])
    n_pass[~mask] = 0.0
    return moving_mean(n_pass, window_samples(0.1, fs)) > p.min_criteria - 1


def rms_histogram(mrms: FloatArray, mask: BoolArray, bin_index: Any, n_bins: int) -> npt.NDArray[np.int64]:
    """Counts of the masked moving-RMS values per row and log bin (``bin_index``): the NumPy form."""
    rows = mrms.shape[0]
    r = np.broadcast_to(np.arange(rows)[:, None], mrms.shape)
    flat = (r * n_bins + bin_index(mrms))[mask]
    return np.bincount(flat, minlength=rows * n_bins).reshape(rows, n_bins).astype(np.int64)


def epochs_to_samples(stages: npt.NDArray[Any], n_samples: int, fs: float) -> npt.NDArray[Any]:
    """One value per sample from one per 30-s epoch, by the index of each sample: the NumPy form."""
    idx = np.minimum((np.arange(n_samples) / (30.0 * fs)).astype(np.int64), stages.size - 1)
    return stages[idx]


def arousal_core(feat: FloatArray, fs: float, sleep: BoolArray, p: ArousalParams) -> EventBatch:
    """The arousals of one-second features: the former NumPy form of :func:`nexus.events.arousals._arousal_core`."""
    fast, emg, rem, sigma = feat[:, 0], feat[:, 1], feat[:, 2] > 0.5, feat[:, 3]
    base = _trailing_mean(fast, round(p.baseline_s), round(p.baseline_gap_s))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = fast / base
    ratio0 = np.nan_to_num(ratio)
    shifted = fill_short_gaps((ratio0 >= p.ratio) & (fast >= sigma), 2)
    r, a, b = runs(shifted)
    dur = (b - a).astype(np.float64)
    keep = (dur >= p.min_duration_s) & (dur <= p.max_duration_s) & (a > 0) & (b < fast.shape[1])
    r, a, b, dur = r[keep], a[keep], b[keep], dur[keep]
    need = round(p.min_sleep_before_s)
    cs = np.concatenate([np.zeros((sleep.shape[0], 1)), np.cumsum(sleep, axis=1)], axis=1)
    lo = a - need
    ok = (lo >= 0) & ((cs[r, a] - cs[r, np.maximum(lo, 0)]) >= need)
    ok &= (cs[r, b] - cs[r, a]) >= (b - a)
    prev_end = np.full(a.size, -np.inf)
    if a.size > 1:
        same = r[1:] == r[:-1]
        prev_end[1:] = np.where(same, b[:-1], -np.inf)
    ok &= (a - prev_end) >= need
    peak = segment_reduce(ratio0, r, a, b, np.maximum)
    emg0 = finite(emg, nan=0.0)
    emg_base = _trailing_mean(emg0, round(p.baseline_s), round(p.baseline_gap_s))
    emg_peak = segment_reduce(emg0, r, a, b, np.maximum)
    with np.errstate(invalid="ignore", divide="ignore"):
        emg_ratio = emg_peak / emg_base[r, a] if a.size else np.zeros(0)
    in_rem = rem[r, a] if a.size else np.zeros(0, dtype=bool)
    has_emg = np.isfinite(emg[r, a]) if a.size else np.zeros(0, dtype=bool)
    ok &= ~in_rem | (has_emg & (np.nan_to_num(emg_ratio) >= p.emg_ratio))
    return EventBatch("arousal", session=r[ok], channel=np.zeros(int(ok.sum()), dtype=np.intp), onset=a[ok] / fs,
                      duration=dur[ok], extra={"fast_ratio": peak[ok], "emg_ratio": np.asarray(emg_ratio)[ok]})


def movement_core(act: FloatArray, fs: float, mask: BoolArray, p: MovementParams) -> EventBatch:
    """The movements of per-bin activity: the former NumPy form of :func:`nexus.events.movement._movement_core`."""
    cand = fill_short_gaps((act >= p.threshold_mg) & mask, round(p.max_gap_s * fs))
    r, a, b = runs(cand)
    dur = (b - a) / fs
    keep = dur >= p.min_duration_s
    r, a, b, dur = r[keep], a[keep], b[keep], dur[keep]
    peak = segment_reduce(act, r, a, b, np.maximum)
    mean = segment_reduce(act, r, a, b, np.add) / np.maximum(b - a, 1)
    return EventBatch("movement", session=r, channel=np.zeros_like(r), onset=a / fs, duration=dur,
                      extra={"peak_mg": peak, "mean_mg": mean})


def _spindle_columns(
    broad: FloatArray,
    sigma: FloatArray,
    relpow: FloatArray,
    row: npt.NDArray[np.intp],
    start: npt.NDArray[np.intp],
    stop: npt.NDArray[np.intp],
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.intp]]:
    """Per spindle: broadband peak-to-peak, sum of sigma², sigma zero crossings, sum of relative power, peak index.

    Only the samples inside the spindles are gathered (a few per cent of a window), then each
    reduction runs over them segment by segment: the same sums, in the same order, as
    :func:`~nexus.events.common.segment_reduce` over whole rows.
    """
    if row.size == 0:
        z = np.zeros(0)
        return z, z.copy(), z.copy(), z.copy(), np.zeros(0, dtype=np.intp)
    n = broad.shape[-1]
    lengths = stop - start
    offs = np.cumsum(lengths) - lengths
    seg = np.repeat(np.arange(row.size), lengths)
    pos = np.repeat(start - offs, lengths) + np.arange(int(lengths.sum()))
    rr = np.repeat(row, lengths)
    b, sg = broad[rr, pos], sigma[rr, pos]
    amp = np.maximum.reduceat(b, offs) - np.minimum.reduceat(b, offs)
    sum_sq = np.add.reduceat(sg**2, offs)
    # a zero crossing between each sample and the next (none after a row's last sample)
    zc = (np.signbit(sigma[rr, np.minimum(pos + 1, n - 1)]) != np.signbit(sg)) & (pos < n - 1)
    n_zc = np.add.reduceat(zc.astype(np.float64), offs)
    sum_rel = np.add.reduceat(relpow[rr, pos], offs)
    mag = np.abs(sg)
    hit = mag == np.maximum.reduceat(mag, offs)[seg]
    _, first = np.unique(seg[hit], return_index=True)
    return amp, sum_sq, n_zc, sum_rel, pos[hit][first]


def spindle_events(broad: FloatArray, sigma: FloatArray, relpow: FloatArray, passed: BoolArray, fs: float,
                   p: SpindleParams) -> EventBatch:
    """The spindles of a window from its criteria: the former NumPy form of the end of ``_spindle_core``."""
    rc = (relpow,)
    cand = fill_short_gaps(passed, round(p.min_distance * fs))
    row, start, stop = runs(cand)
    dur = (stop - start) / fs
    good = (dur > p.duration[0]) & (dur < p.duration[1])
    row, start, stop, dur = row[good], start[good], stop[good], dur[good]
    length = (stop - start).astype(np.float64)
    amp, rms, freq, relp, peak = _spindle_columns(broad, sigma, rc[0], row, start, stop)
    rms = np.sqrt(rms / np.maximum(length, 1))
    freq = freq / 2.0 / np.maximum(dur, 1e-9)
    relp = relp / np.maximum(length, 1)
    ev = EventBatch(
        "spindle",
        session=row,
        channel=np.zeros_like(row),
        onset=start / fs,
        duration=dur,
        extra={"peak_s": peak / fs, "amp_uv": amp, "rms_uv": rms, "freq_hz": freq, "rel_power": relp},
    )
    return ev


def sw_core(x: FloatArray, fs: float, mask: BoolArray, p: SlowWaveParams) -> EventBatch:
    """The slow oscillations of ``x``: the former NumPy form of :func:`nexus.events.slow_waves._sw_core`."""
    (f,) = zero_phase_any(x, bandpass_sos(*p.freq, fs=fs, order=2))
    n = f.shape[-1]
    # one compiled scan per row (the candidate half-waves, their extremes)
    r, a, b, c, neg_min, neg_idx, pos_max, pos_idx = compiled_half_waves(np.ascontiguousarray(f.reshape(-1, n)))
    dneg, dpos = (b - a) / fs, (c - b) / fs
    ptp = pos_max - neg_min
    good = (
        (dneg >= p.dur_neg[0])
        & (dneg <= p.dur_neg[1])
        & (dpos >= p.dur_pos[0])
        & (dpos <= p.dur_pos[1])
        & (-neg_min >= p.amp_neg[0])
        & (-neg_min <= p.amp_neg[1])
        & (pos_max >= p.amp_pos[0])
        & (pos_max <= p.amp_pos[1])
        & (ptp >= p.amp_ptp[0])
        & (ptp <= p.amp_ptp[1])
    )
    if good.any():
        good &= mask[r, np.minimum(neg_idx, n - 1)]
    r, a, c = r[good], a[good], c[good]
    ni, pi, nm, pm, pp = neg_idx[good], pos_idx[good], neg_min[good], pos_max[good], ptp[good]
    dur = (c - a) / fs
    slope = pp / np.maximum((pi - ni) / fs, 1.0 / fs)
    return EventBatch(
        "slow_oscillation",
        session=r,
        channel=np.zeros_like(r),
        onset=a / fs,
        duration=dur,
        extra={
            "neg_peak_s": ni / fs,
            "neg_amp_uv": nm,
            "pos_peak_s": pi / fs,
            "pos_amp_uv": pm,
            "ptp_uv": pp,
            "slope_uv_s": slope,
            "freq_hz": 1.0 / dur,
        },
    )
