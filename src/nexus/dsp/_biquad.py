"""Compiled biquad cascades for many short rows: causal with carried state, and forward-backward.

``scipy.signal.sosfilt`` runs one row at a time, one sample after the other, so the CPU waits
on each recursion. These kernels (numba, compiled once per machine and cached) filter a tile
of rows side by side: the independent recursions of the rows then overlap in the CPU. The
arithmetic is that of scipy (transposed direct form II, same operation order, no fast-math),
so the results are bit-identical to :func:`scipy.signal.sosfilt` and
:func:`scipy.signal.sosfiltfilt` with odd padding. Each function returns None when numba is
not installed; callers then use scipy.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

#: rows filtered side by side
WIDTH = 16


@lru_cache(maxsize=1)
def sosfilt_kernel() -> Any:
    """``sosfilt(x, sos, zi)``: filter ``x`` (rows, n) float64 in place; ``zi`` (sections, rows, 2) updated.

    Equal to ``y, zi = scipy.signal.sosfilt(sos, x, zi=zi)`` row by row (zi moved to the middle).
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with yasa
        return None

    @numba.njit(cache=True, nogil=True)
    def sosfilt(x, sos, zi):  # pragma: no cover - compiled
        rows, n = x.shape
        nsec = sos.shape[0]
        w = WIDTH
        tile = np.zeros((n, w))
        z0 = np.zeros((nsec, w))
        z1 = np.zeros((nsec, w))
        for r0 in range(0, rows, w):
            m = min(w, rows - r0)
            for t in range(m):
                for j in range(n):
                    tile[j, t] = x[r0 + t, j]
                for s in range(nsec):
                    z0[s, t] = zi[s, r0 + t, 0]
                    z1[s, t] = zi[s, r0 + t, 1]
            for j in range(n):
                for s in range(nsec):
                    b0, b1, b2 = sos[s, 0], sos[s, 1], sos[s, 2]
                    a1, a2 = sos[s, 4], sos[s, 5]
                    for t in range(w):  # unused lanes compute on stale values, never read back
                        xv = tile[j, t]
                        y = b0 * xv + z0[s, t]
                        z0[s, t] = b1 * xv - a1 * y + z1[s, t]
                        z1[s, t] = b2 * xv - a2 * y
                        tile[j, t] = y
            for t in range(m):
                for j in range(n):
                    x[r0 + t, j] = tile[j, t]
                for s in range(nsec):
                    zi[s, r0 + t, 0] = z0[s, t]
                    zi[s, r0 + t, 1] = z1[s, t]

    return sosfilt


@lru_cache(maxsize=1)
def filtfilt_kernel() -> Any:
    """``filtfilt(x, sos, zi_unit, padlen, out)``: forward-backward filter of ``x`` (rows, n) into ``out``.

    Equal to ``scipy.signal.sosfiltfilt(sos, x, padtype="odd", padlen=padlen)`` row by row
    (``zi_unit = sosfilt_zi(sos)``, shape (sections, 2); ``padlen < n``).
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with yasa
        return None

    @numba.njit(cache=True, nogil=True)
    def filtfilt(x, sos, zi_unit, padlen, out):  # pragma: no cover - compiled
        rows, n = x.shape
        nsec = sos.shape[0]
        w = WIDTH
        ne = n + 2 * padlen
        tile = np.zeros((ne, w))
        z0 = np.zeros((nsec, w))
        z1 = np.zeros((nsec, w))
        for r0 in range(0, rows, w):
            m = min(w, rows - r0)
            for t in range(m):
                r = r0 + t
                first, last = x[r, 0], x[r, n - 1]
                for k in range(padlen):  # odd extension at both ends
                    tile[k, t] = 2.0 * first - x[r, padlen - k]
                    tile[padlen + n + k, t] = 2.0 * last - x[r, n - 2 - k]
                for j in range(n):
                    tile[padlen + j, t] = x[r, j]
            for t in range(w):
                for s in range(nsec):
                    z0[s, t] = zi_unit[s, 0] * tile[0, t]
                    z1[s, t] = zi_unit[s, 1] * tile[0, t]
            for j in range(ne):
                for s in range(nsec):
                    b0, b1, b2 = sos[s, 0], sos[s, 1], sos[s, 2]
                    a1, a2 = sos[s, 4], sos[s, 5]
                    for t in range(w):
                        xv = tile[j, t]
                        y = b0 * xv + z0[s, t]
                        z0[s, t] = b1 * xv - a1 * y + z1[s, t]
                        z1[s, t] = b2 * xv - a2 * y
                        tile[j, t] = y
            for t in range(w):
                for s in range(nsec):
                    z0[s, t] = zi_unit[s, 0] * tile[ne - 1, t]
                    z1[s, t] = zi_unit[s, 1] * tile[ne - 1, t]
            for j in range(ne - 1, -1, -1):
                for s in range(nsec):
                    b0, b1, b2 = sos[s, 0], sos[s, 1], sos[s, 2]
                    a1, a2 = sos[s, 4], sos[s, 5]
                    for t in range(w):
                        xv = tile[j, t]
                        y = b0 * xv + z0[s, t]
                        z0[s, t] = b1 * xv - a1 * y + z1[s, t]
                        z1[s, t] = b2 * xv - a2 * y
                        tile[j, t] = y
            for t in range(m):
                for j in range(n):
                    out[r0 + t, j] = tile[padlen + j, t]

    return filtfilt
