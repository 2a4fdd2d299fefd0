"""Reference (NumPy/SciPy) forms of the event detectors' kernels: the oracles they are tested against.

:mod:`nexus.events._kernels` fuses each of these chains of whole-array passes into one compiled
pass per row with the same arithmetic; the tests compare the two.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.ndimage import maximum_filter1d

from nexus.dsp.moving import corr_from_moments, cumulative, moving_mean, runs, window_mean, window_samples
from nexus.events.common import BoolArray, FloatArray, segment_argext
from nexus.events.spindles import SpindleParams


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
