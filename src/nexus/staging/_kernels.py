"""Compiled per-sample kernels of the live stager (numba, compiled once per machine and cached).

Only :mod:`nexus.staging.live` uses them, in long-running processes where a one-off compilation
is cheap. :func:`block_stats_kernel` returns None when numba is not installed; the caller then
uses its numpy version.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

_QUARTILES: Any = None
"""The compiled quartile routine (:mod:`nexus.staging._select`), set when a kernel using it is built.

Kernels call it as a module global: numba caches a function that calls a global compiled
function, but not one that calls a closure variable (it would be compiled again in every process).
"""


def _quartiles() -> Any:
    """The compiled ``quartiles(buf, n, out2)`` of :mod:`nexus.staging._select` (needs numba)."""
    global _QUARTILES
    if _QUARTILES is None:
        from nexus.staging._select import quartiles

        _QUARTILES = quartiles
    return _QUARTILES


@lru_cache(maxsize=1)
def block_stats_kernel() -> Any:
    """The compiled block-statistics kernel, or None without numba.

    ``kernel(xt, kmax, out)``: ``xt`` (rows, kmax + n) holds the ``kmax`` samples before each
    block then the block; ``out``
    (rows, ≥ 20 + kmax) receives, per row: Σx, Σx², Σx³, Σx⁴, Σdx, Σdx², Σddx, Σddx²,
    sign changes of x and of dx, counts of the 8 order-3 comparison codes, the block's 25 % and
    75 % quantiles (linear interpolation), then Σ|x[i] − x[i−k]| for k = 1..kmax.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with yasa
        return None
    _quartiles()

    @numba.njit(cache=True, nogil=True)
    def kernel(xt, kmax, out):
        rows, width = xt.shape
        n = width - kmax
        hig = np.zeros(kmax)
        scratch = np.empty(n)
        q = np.empty(2)
        for r in range(rows):
            x = xt[r]
            s1 = s2 = s3 = s4 = 0.0
            d1 = d2 = dd1 = dd2 = 0.0
            nzc = 0
            nzcd = 0
            for k in range(8):
                out[r, 10 + k] = 0.0
            prev_dx = x[kmax - 1] - x[kmax - 2]
            for k in range(kmax):
                hig[k] = 0.0
            for i in range(kmax, width):
                v = x[i]
                v2 = v * v
                s1 += v
                s2 += v2
                s3 += v2 * v
                s4 += v2 * v2
                dx = v - x[i - 1]
                d1 += dx
                d2 += dx * dx
                ddx = dx - prev_dx
                dd1 += ddx
                dd2 += ddx * ddx
                if np.signbit(v) != np.signbit(x[i - 1]):
                    nzc += 1
                if np.signbit(dx) != np.signbit(prev_dx):
                    nzcd += 1
                a = x[i - 2]
                b = x[i - 1]
                code = 4 * (a <= b) + 2 * (a <= v) + (b <= v)
                out[r, 10 + code] += 1.0
                for k in range(kmax):
                    hig[k] += abs(v - x[i - 1 - k])
                prev_dx = dx
            out[r, 0] = s1
            out[r, 1] = s2
            out[r, 2] = s3
            out[r, 3] = s4
            out[r, 4] = d1
            out[r, 5] = d2
            out[r, 6] = dd1
            out[r, 7] = dd2
            out[r, 8] = nzc
            out[r, 9] = nzcd
            for k in range(kmax):
                out[r, 20 + k] = hig[k]
            scratch[:] = x[kmax:]
            _QUARTILES(scratch, n, q)
            out[r, 18] = q[0]
            out[r, 19] = q[1]

    return kernel


@lru_cache(maxsize=1)
def stream_kernels() -> Any:
    """Compiled ``(interpolate, highpass)`` kernels for the live filter chain, or None without numba.

    ``interpolate(y, prev, pos, out)``: linear interpolation of each row of ``y`` at fractional
    positions ``pos`` (−1 ≤ pos ≤ n−1; position −1 is ``prev``).
    ``highpass(y, delay_tail, ma_tails, out)``: ``y[n − D]`` minus the triple moving average of ``y``
    (boxcar length L), updating the carried tails in place (``delay_tail`` (rows, D),
    ``ma_tails`` (3, rows, L − 1)).
    """
    try:
        import numba
    except ImportError:  # pragma: no cover
        return None

    @numba.njit(cache=True, nogil=True)
    def interpolate(y, prev, pos, out):
        rows, n = y.shape
        for r in range(rows):
            for j in range(pos.size):
                p = pos[j]
                i0 = int(np.floor(p))
                f = p - i0
                a = prev[r] if i0 < 0 else y[r, i0]
                b = y[r, min(i0 + 1, n - 1)]
                out[r, j] = a * (1.0 - f) + b * f

    @numba.njit(cache=True, nogil=True)
    def highpass(y, delay_tail, ma_tails, out):
        rows, n = y.shape
        d = delay_tail.shape[1]
        lm1 = ma_tails.shape[2]
        length = lm1 + 1
        buf = np.empty(lm1 + n)
        stage = np.empty(n)
        for r in range(rows):
            for j in range(n):
                stage[j] = y[r, j]
            for st in range(3):
                for j in range(lm1):
                    buf[j] = ma_tails[st, r, j]
                for j in range(n):
                    buf[lm1 + j] = stage[j]
                acc = 0.0
                for j in range(length):
                    acc += buf[j]
                stage[0] = acc / length
                for j in range(1, n):
                    acc += buf[j + lm1] - buf[j - 1]
                    stage[j] = acc / length
                for j in range(lm1):
                    ma_tails[st, r, j] = buf[n + j]
            for j in range(n):
                delayed = delay_tail[r, j] if j < d else y[r, j - d]
                out[r, j] = delayed - stage[j]
            # carry the last d input samples
            if n >= d:
                for j in range(d):
                    delay_tail[r, j] = y[r, n - d + j]
            else:
                for j in range(d - n):
                    delay_tail[r, j] = delay_tail[r, j + n]
                for j in range(n):
                    delay_tail[r, d - n + j] = y[r, j]

    return interpolate, highpass


@lru_cache(maxsize=1)
def epoch_features_kernel() -> Any:
    """The compiled time-domain epoch features of the offline stager, or None without numba.

    ``kernel(x, kmax, out)``: for each row of ``x`` (rows, n) — one band-passed epoch — writes
    ``out[r]`` = std (ddof=1), iqr, skew, kurt (Fisher, biased), zero crossings, Hjorth mobility,
    Hjorth complexity, normalised order-3 permutation entropy, Higuchi fractal dimension (kmax)
    and Petrosian fractal dimension: the definitions of ``nexus.staging.features`` computed in
    one pass over the samples per moment (plus one per Higuchi lag) instead of one array pass
    per quantity.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with yasa
        return None
    _quartiles()

    # reassociation lets the compiler vectorise the sums; NaN and infinity keep IEEE semantics
    @numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
    def kernel(x, kmax, out):
        rows, n = x.shape
        log_inv_k = np.empty(kmax)
        for k in range(1, kmax + 1):
            log_inv_k[k - 1] = np.log(1.0 / k)
        sx = 0.0
        sx2 = 0.0
        for k in range(kmax):
            sx += log_inv_k[k]
            sx2 += log_inv_k[k] * log_inv_k[k]
        # Higuchi weights 1 / n_max(m) per lag k and offset m
        wts = np.zeros((kmax + 1, kmax))
        for k in range(1, kmax + 1):
            for m in range(k):
                wts[k, m] = 1.0 / np.floor((n - m - 1) / k)
        counts = np.zeros(8)
        log_l = np.empty(kmax)
        scratch = np.empty(n)
        q = np.empty(2)
        for r in range(rows):
            xr = x[r]
            s = 0.0
            for i in range(n):
                s += xr[i]
            mean = s / n
            m2 = 0.0
            m3 = 0.0
            m4 = 0.0
            nzc = 0
            for i in range(n):
                d = xr[i] - mean
                d2 = d * d
                m2 += d2
                m3 += d2 * d
                m4 += d2 * d2
                if i > 0 and np.signbit(xr[i]) != np.signbit(xr[i - 1]):
                    nzc += 1
            m2 /= n
            m3 /= n
            m4 /= n
            # first and second differences: means, then variances (two passes, as numpy's var)
            sd = 0.0
            for i in range(1, n):
                sd += xr[i] - xr[i - 1]
            mean_d = sd / (n - 1)
            sdd = 0.0
            for i in range(2, n):
                sdd += (xr[i] - xr[i - 1]) - (xr[i - 1] - xr[i - 2])
            mean_dd = sdd / (n - 2)
            vd = 0.0
            vdd = 0.0
            nzcd = 0
            for i in range(1, n):
                dxi = xr[i] - xr[i - 1]
                e = dxi - mean_d
                vd += e * e
                if i > 1:
                    dxp = xr[i - 1] - xr[i - 2]
                    ee = (dxi - dxp) - mean_dd
                    vdd += ee * ee
                    if np.signbit(dxi) != np.signbit(dxp):
                        nzcd += 1
            vd /= n - 1
            vdd /= n - 2
            for c in range(8):
                counts[c] = 0.0
            for i in range(n - 2):
                a = xr[i]
                b = xr[i + 1]
                cc = xr[i + 2]
                code = 4 * (a <= b) + 2 * (a <= cc) + (b <= cc)
                counts[code] += 1.0
            h = 0.0
            for c in range(8):
                p = counts[c] / (n - 2)
                if p > 0:
                    h -= p * np.log2(p)
            h /= np.log2(6.0)
            h = min(max(h, 0.0), 1.0)
            for k in range(1, kmax + 1):
                tot = 0.0
                for m in range(k):
                    part = 0.0
                    for i in range(m, n - k, k):
                        part += abs(xr[i + k] - xr[i])
                    tot += part * wts[k, m]
                mean_l = tot * ((n - 1) / (k * k * k))
                log_l[k - 1] = np.log(mean_l) if mean_l > 0 else -np.inf
            sy = 0.0
            sxy = 0.0
            for k in range(kmax):
                sy += log_l[k]
                sxy += log_l[k] * log_inv_k[k]
            scratch[:] = xr
            _QUARTILES(scratch, n, q)
            q25 = q[0]
            q75 = q[1]
            mob = np.sqrt(vd / m2) if m2 > 0 else np.nan
            out[r, 0] = np.sqrt(m2 * n / (n - 1))
            out[r, 1] = q75 - q25
            out[r, 2] = m3 / m2**1.5 if m2 > 0 else np.nan
            out[r, 3] = m4 / m2**2 - 3.0 if m2 > 0 else np.nan
            out[r, 4] = nzc
            out[r, 5] = mob
            out[r, 6] = np.sqrt(vdd / vd) / mob if vd > 0 else np.nan
            out[r, 7] = h
            out[r, 8] = (kmax * sxy - sx * sy) / (kmax * sx2 - sx * sx + 1e-9)
            out[r, 9] = np.log10(n) / (np.log10(n) + np.log10(n / (n + 0.4 * nzcd)))

    return kernel



@lru_cache(maxsize=1)
def lowpass_kernel() -> Any:
    """Compiled cascade of biquads with carried state (as ``scipy.signal.sosfilt``), or None without numba.

    ``lowpass(x, sos, zi, out)``: ``x`` (sessions, channels, n) in any float type and layout,
    ``sos`` (sections, 6) with a0 = 1, ``zi`` (sessions, channels, sections, 2) updated in place,
    ``out`` (sessions, channels, n) float64. Transposed direct form II, as scipy; rows are
    filtered 16 at a time, sample by sample, so that the independent recursions of the rows run
    side by side in the CPU (bit-identical to scipy, about twice as fast).
    """
    try:
        import numba
    except ImportError:  # pragma: no cover
        return None

    @numba.njit(cache=True, nogil=True)
    def lowpass(x, sos, zi, out):
        n_s, n_c, n = x.shape
        rows = n_s * n_c
        nsec = sos.shape[0]
        width = 16
        tile = np.zeros((n, width))
        z0 = np.zeros((nsec, width))
        z1 = np.zeros((nsec, width))
        for r0 in range(0, rows, width):
            m = min(width, rows - r0)
            for t in range(m):
                si, ci = divmod(r0 + t, n_c)
                for j in range(n):
                    tile[j, t] = x[si, ci, j]
                for s in range(nsec):
                    z0[s, t] = zi[si, ci, s, 0]
                    z1[s, t] = zi[si, ci, s, 1]
            for j in range(n):
                for s in range(nsec):
                    b0 = sos[s, 0]
                    b1 = sos[s, 1]
                    b2 = sos[s, 2]
                    a1 = sos[s, 4]
                    a2 = sos[s, 5]
                    for t in range(width):  # fixed width: unused lanes compute on stale values
                        xv = tile[j, t]
                        y = b0 * xv + z0[s, t]
                        z0[s, t] = b1 * xv - a1 * y + z1[s, t]
                        z1[s, t] = b2 * xv - a2 * y
                        tile[j, t] = y
            for t in range(m):
                si, ci = divmod(r0 + t, n_c)
                for j in range(n):
                    out[si, ci, j] = tile[j, t]
                for s in range(nsec):
                    zi[si, ci, s, 0] = z0[s, t]
                    zi[si, ci, s, 1] = z1[s, t]

    return lowpass
