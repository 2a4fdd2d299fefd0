"""Compiled per-sample kernels of the event detectors.

Each kernel fuses a chain of whole-array passes (NumPy temporaries, filters from SciPy) into one
pass per row with the same arithmetic; the NumPy forms they equal are kept in the tests as
reference oracles (``tests/events``). Plain module-level functions, compiled on first use and
cached on disk (:mod:`nexus.dsp._jit`).
"""

from __future__ import annotations

import numpy as np

from nexus.dsp._jit import kernel


@kernel
def beat_candidates(f, fs, n_env, local, wide, n_floor, mask, out):
    """The R-peak candidates of the heart detector.

    For every row of the band-passed ECG ``f`` (rows, n), in µV, at ``fs`` Hz, writes into the
    boolean ``out`` (rows, n) where the envelope ``env`` (centred ``n_env``-sample mean of the
    squared derivative) is its own maximum over ``local`` samples, at least 0.3 times its
    maximum over ``wide`` samples, above 2.5 times its centred ``n_floor``-sample mean, positive,
    and ``mask`` (rows, n) is set. Equal to the NumPy/SciPy chain of :func:`nexus.events.heart._beat_core`
    (``moving_mean`` edges, ``maximum_filter1d`` with ``mode="nearest"``).
    """
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
        for k in range(2):
            # moving_mean's rule: window [i - w // 2, i - w // 2 + w) clipped to the data;
            # first the envelope (mean of d²), then its 4-s mean (the floor)
            w = n_env if k == 0 else n_floor
            dst = env if k == 0 else floor
            for i in range(n):
                lo = i - w // 2
                hi = lo + w
                if lo >= 0 and hi <= n:
                    dst[i] = (c[hi] - c[lo]) / w
                else:
                    lo = min(max(lo, 0), n)
                    hi = min(max(hi, 0), n)
                    dst[i] = (c[hi] - c[lo]) / (hi - lo)
            if k == 0:
                for j in range(n):
                    c[j + 1] = c[j] + env[j]
        for k in range(2):
            # maximum over [i - size // 2, i + (size - 1) // 2] clipped (scipy's footprint,
            # "nearest" edges), van Herk / Gil-Werman: running maxima both ways in blocks
            size = local if k == 0 else wide
            dst = loc if k == 0 else wid
            for a in range(0, n, size):
                b = min(a + size, n)
                m = env[a]
                for j in range(a, b):
                    m = max(m, env[j])
                    g[j] = m
                m = env[b - 1]
                for j in range(b - 1, a - 1, -1):
                    m = max(m, env[j])
                    h[j] = m
            left, right = size // 2, (size - 1) // 2
            for i in range(left, n - right):  # full windows (size samples): two blocks at most
                dst[i] = max(h[i - left], g[i + right])
            for i in range(n):
                if left <= i < n - right:
                    continue
                lo = max(i - left, 0)  # a window clipped by an end of the data
                hi = min(i + right, n - 1)
                if lo // size != hi // size:
                    dst[i] = max(h[lo], g[hi])
                elif lo % size == 0:
                    dst[i] = g[hi]
                elif hi % size == size - 1 or hi == n - 1:
                    dst[i] = h[lo]
                else:  # a clipped window inside one block (only near the ends)
                    m = env[lo]
                    for j in range(lo, hi + 1):
                        m = max(m, env[j])
                    dst[i] = m
        for j in range(n):
            e = env[j]
            out[r, j] = mask[r, j] & (e == loc[j]) & (e >= 0.3 * wid[j]) & (e > 2.5 * floor[j]) & (e > 0)


@kernel
def spindle_features(broad, sigma, n_rel, n_win, relpow, corr, mrms):
    """The moving features of the spindle detector.

    From the broadband and sigma-band signals (rows, n), in µV, writes per sample: the relative
    sigma power (centred ``n_rel``-sample means of sigma² over broad², the latter at least 1e-12),
    the moving correlation of sigma and broad and the moving RMS of sigma (centred ``n_win``-sample
    windows). Equal to the cumulative-sum form of :func:`nexus.events.spindles._features`
    (:func:`~nexus.dsp.moving.window_mean` edges, :func:`~nexus.dsp.moving.corr_from_moments`).
    """
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
            # window_mean's rule: [j - w // 2, j - w // 2 + w) clipped to the data; the
            # relative power over n_rel samples, the moments over n_win
            lo = j - n_rel // 2
            hi = lo + n_rel
            if lo >= 0 and hi <= n:
                cnt = float(n_rel)
            else:
                lo = min(max(lo, 0), n)
                hi = min(max(hi, 0), n)
                cnt = float(hi - lo)
            relpow[r, j] = ((css[hi] - css[lo]) / cnt) / max((cbb[hi] - cbb[lo]) / cnt, 1e-12)
            lo = j - n_win // 2
            hi = lo + n_win
            if lo >= 0 and hi <= n:
                cnt = float(n_win)
            else:
                lo = min(max(lo, 0), n)
                hi = min(max(hi, 0), n)
                cnt = float(hi - lo)
            ms = (cs[hi] - cs[lo]) / cnt
            mb = (cb[hi] - cb[lo]) / cnt
            msb = (csb[hi] - csb[lo]) / cnt
            mss = (css[hi] - css[lo]) / cnt
            mbb = (cbb[hi] - cbb[lo]) / cnt
            cov = msb - ms * mb
            va = max(mss - ms * ms, 0.0)
            vb = max(mbb - mb * mb, 0.0)
            den = np.sqrt(va * vb)
            v = cov / den if den > 1e-12 else 0.0
            corr[r, j] = min(max(v, -1.0), 1.0)
            mrms[r, j] = np.sqrt(max(mss, 0.0))


@kernel
def half_waves(f):
    """The slow-wave candidates: ``(row, start, mid, stop, neg_min, neg_idx, pos_max, pos_idx)``.

    For every row of the band-passed EEG ``f`` (rows, n): each negative half-wave
    ``[start, mid)`` (``f < 0``) that neither starts at the first sample nor reaches the last,
    followed by a positive half-wave ``[mid, stop)`` (``f >= 0``) that ends before the last
    sample; with the first minimum of the negative and the first maximum of the positive half
    (value and sample index). The same candidates, in the same order (row, then time), as the
    ``runs`` / ``segment_argext`` form of :func:`nexus.events.slow_waves._sw_core`.
    """
    rows, n = f.shape
    cap = 1024
    ri = np.empty(cap, dtype=np.intp)
    si = np.empty((3, cap), dtype=np.intp)
    ext = np.empty((2, cap))
    pk = np.empty((2, cap), dtype=np.intp)
    k = 0
    for r in range(rows):
        j = 0
        while j < n and f[r, j] < 0:  # a negative run at the start is cut: skip it
            j += 1
        while j < n:
            while j < n and f[r, j] >= 0:  # to the next negative run
                j += 1
            a = j
            if a >= n:
                break
            lo = f[r, a]
            lo_i = a
            while j < n and f[r, j] < 0:
                if f[r, j] < lo:
                    lo = f[r, j]
                    lo_i = j
                j += 1
            b = j
            if b >= n:
                break
            hi = f[r, b]
            hi_i = b
            while j < n and f[r, j] >= 0:
                if f[r, j] > hi:
                    hi = f[r, j]
                    hi_i = j
                j += 1
            if j >= n:  # the positive half-wave reaches the end: not confirmed
                break
            if k == cap:
                cap *= 2
                ri2 = np.empty(cap, dtype=np.intp)
                si2 = np.empty((3, cap), dtype=np.intp)
                ext2 = np.empty((2, cap))
                pk2 = np.empty((2, cap), dtype=np.intp)
                ri2[:k] = ri[:k]
                si2[:, :k] = si[:, :k]
                ext2[:, :k] = ext[:, :k]
                pk2[:, :k] = pk[:, :k]
                ri, si, ext, pk = ri2, si2, ext2, pk2
            ri[k] = r
            si[0, k] = a
            si[1, k] = b
            si[2, k] = j
            ext[0, k] = lo
            ext[1, k] = hi
            pk[0, k] = lo_i
            pk[1, k] = hi_i
            k += 1
    return ri[:k], si[0, :k], si[1, :k], si[2, :k], ext[0, :k], pk[0, :k], ext[1, :k], pk[1, :k]
