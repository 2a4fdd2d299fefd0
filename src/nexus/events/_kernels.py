"""Compiled per-sample kernels of the event detectors (numba, compiled once per machine and cached).

Each kernel fuses a chain of whole-array passes (NumPy temporaries, filters from SciPy) into one
pass per row with the same arithmetic, so that its results equal those of the NumPy form the
detector modules keep as the reference (and use when numba is missing: the functions here
then return None).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np


@lru_cache(maxsize=1)
def beat_candidates_kernel() -> Any:
    """``kernel(f, fs, n_env, local, wide, n_floor, mask, out)``: the R-peak candidates of the heart detector.

    For every row of the band-passed ECG ``f`` (rows, n), in µV, at ``fs`` Hz, writes into the
    boolean ``out`` (rows, n) where the envelope ``env`` (centred ``n_env``-sample mean of the
    squared derivative) is its own maximum over ``local`` samples, at least 0.3 times its
    maximum over ``wide`` samples, above 2.5 times its centred ``n_floor``-sample mean, positive,
    and ``mask`` (rows, n) is set. Equal to the NumPy/SciPy chain of :func:`nexus.events.heart._beat_core`
    (``moving_mean`` edges, ``maximum_filter1d`` with ``mode="nearest"``).
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with yasa
        return None

    @numba.njit(cache=True, nogil=True)
    def centred_means(c, n_win, out):  # pragma: no cover - compiled
        # moving_mean's rule: window [i - n_win // 2, i - n_win // 2 + n_win) clipped to the data
        size = out.shape[0]
        h = n_win // 2
        for i in range(size):
            lo = min(max(i - h, 0), size)
            hi = min(max(i - h + n_win, 0), size)
            if lo == i - h and hi == i - h + n_win:
                out[i] = (c[hi] - c[lo]) / n_win
            else:
                out[i] = (c[hi] - c[lo]) / (hi - lo)

    @numba.njit(cache=True, nogil=True)
    def sliding_max(v, size, out, g, h):  # pragma: no cover - compiled
        # maximum over [i - size // 2, i + (size - 1) // 2] clipped to the data (scipy's footprint,
        # "nearest" edges), van Herk / Gil-Werman: running maxima forwards and backwards in blocks
        n = v.shape[0]
        left, right = size // 2, (size - 1) // 2
        for a in range(0, n, size):
            b = min(a + size, n)
            m = v[a]
            for j in range(a, b):
                m = max(m, v[j])
                g[j] = m
            m = v[b - 1]
            for j in range(b - 1, a - 1, -1):
                m = max(m, v[j])
                h[j] = m
        for i in range(n):
            lo = max(i - left, 0)
            hi = min(i + right, n - 1)
            if lo // size != hi // size:  # a window of <= size samples spans two blocks at most
                out[i] = max(h[lo], g[hi])
            elif lo % size == 0:
                out[i] = g[hi]
            elif hi % size == size - 1 or hi == n - 1:
                out[i] = h[lo]
            else:  # a clipped window inside one block (only near the ends)
                m = v[lo]
                for j in range(lo, hi + 1):
                    m = max(m, v[j])
                out[i] = m

    @numba.njit(cache=True, nogil=True)
    def beat_candidates(f, fs, n_env, local, wide, n_floor, mask, out):  # pragma: no cover - compiled
        rows, n = f.shape
        c = np.empty(n + 1)
        env = np.empty(n)
        floor = np.empty(n)
        loc = np.empty(n)
        wid = np.empty(n)
        g = np.empty(n)
        h = np.empty(n)
        for r in range(rows):
            c[0] = 0.0
            prev = f[r, 0]
            for j in range(n):
                d = (f[r, j] - prev) * fs
                prev = f[r, j]
                c[j + 1] = c[j] + d * d
            centred_means(c, n_env, env)
            for j in range(n):
                c[j + 1] = c[j] + env[j]
            centred_means(c, n_floor, floor)
            sliding_max(env, local, loc, g, h)
            sliding_max(env, wide, wid, g, h)
            for j in range(n):
                e = env[j]
                out[r, j] = mask[r, j] & (e == loc[j]) & (e >= 0.3 * wid[j]) & (e > 2.5 * floor[j]) & (e > 0)

    return beat_candidates


@lru_cache(maxsize=1)
def spindle_features_kernel() -> Any:
    """``kernel(broad, sigma, n_rel, n_win, relpow, corr, mrms)``: the moving features of the spindle detector.

    From the broadband and sigma-band signals (rows, n), in µV, writes per sample: the relative
    sigma power (centred ``n_rel``-sample means of sigma² over broad², the latter at least 1e-12),
    the moving correlation of sigma and broad and the moving RMS of sigma (centred ``n_win``-sample
    windows). Equal to the cumulative-sum form of :func:`nexus.events.spindles._features`
    (:func:`~nexus.dsp.moving.window_mean` edges, :func:`~nexus.dsp.moving.corr_from_moments`).
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with yasa
        return None

    @numba.njit(cache=True, nogil=True)
    def window(c, i, n_win, size):  # pragma: no cover - compiled
        # window_mean's rule: [i - n_win // 2, i - n_win // 2 + n_win) clipped to the data
        lo = i - n_win // 2
        hi = lo + n_win
        if lo >= 0 and hi <= size:
            return (c[hi] - c[lo]) / n_win
        lo = min(max(lo, 0), size)
        hi = min(max(hi, 0), size)
        return (c[hi] - c[lo]) / (hi - lo)

    @numba.njit(cache=True, nogil=True)
    def spindle_features(broad, sigma, n_rel, n_win, relpow, corr, mrms):  # pragma: no cover - compiled
        rows, n = broad.shape
        cs = np.empty(n + 1)
        cb = np.empty(n + 1)
        csb = np.empty(n + 1)
        css = np.empty(n + 1)
        cbb = np.empty(n + 1)
        for r in range(rows):
            cs[0] = cb[0] = csb[0] = css[0] = cbb[0] = 0.0
            for j in range(n):
                s = sigma[r, j]
                b = broad[r, j]
                cs[j + 1] = cs[j] + s
                cb[j + 1] = cb[j] + b
                csb[j + 1] = csb[j] + s * b
                css[j + 1] = css[j] + s * s
                cbb[j + 1] = cbb[j] + b * b
            for j in range(n):
                relpow[r, j] = window(css, j, n_rel, n) / max(window(cbb, j, n_rel, n), 1e-12)
                ms = window(cs, j, n_win, n)
                mb = window(cb, j, n_win, n)
                msb = window(csb, j, n_win, n)
                mss = window(css, j, n_win, n)
                mbb = window(cbb, j, n_win, n)
                cov = msb - ms * mb
                va = max(mss - ms * ms, 0.0)
                vb = max(mbb - mb * mb, 0.0)
                den = np.sqrt(va * vb)
                v = cov / den if den > 1e-12 else 0.0
                corr[r, j] = min(max(v, -1.0), 1.0)
                mrms[r, j] = np.sqrt(max(mss, 0.0))

    return spindle_features
