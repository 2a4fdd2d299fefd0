"""Compiled quartiles of a sample.

``quartiles(buf, n, out2)``: numpy's linear-interpolation 25 % and 75 % quantiles of ``buf[:n]``.

``buf`` is scratch (it may be reordered). The values are first counted into 256 equal-width
bins between their minimum and maximum (bin = floor((v − min) · scale), monotonic in v); the
cumulative counts tell which bin holds each wanted order statistic and its rank there, and
only that bin's values are then searched, by quickselect (median-of-three pivots): a few
passes over the block instead of a full selection. When the values span no finite range the
whole buffer is searched.
"""

import numpy as np

from nexus.dsp._jit import kernel


@kernel
def select(buf, lo, hi, k):
    # quickselect with branch-free Lomuto partitions (the comparison moves the boundary, no
    # jump to mispredict): values below the pivot first, then, in the rest, values equal to
    # it (so that runs of equal values end the search at once)
    while hi > lo:
        mid = (lo + hi) // 2
        a = buf[lo]
        b = buf[mid]
        c = buf[hi]
        if a > b:
            a, b = b, a
        pivot = c if c < b else b
        pivot = a if pivot < a else pivot
        first = lo
        for i in range(lo, hi + 1):
            v = buf[i]
            buf[i] = buf[first]
            buf[first] = v
            first += v < pivot
        if k < first:
            hi = first - 1
            continue
        eq = first
        for i in range(first, hi + 1):
            v = buf[i]
            buf[i] = buf[eq]
            buf[eq] = v
            eq += v <= pivot
        if k < eq:
            return
        lo = eq


@kernel
def _kth(buf, lo, hi, k):
    """The ``k``-th smallest of ``buf[lo : hi + 1]`` (``buf`` reordered), and the next larger order statistic."""
    select(buf, lo, hi, k)
    v = buf[k]
    nxt = v
    if k + 1 <= hi:
        nxt = buf[k + 1]
        for j in range(k + 2, hi + 1):
            nxt = min(nxt, buf[j])
    return v, nxt


@kernel
def _bin_of(k, counts):
    """The bin that holds order statistic ``k``, and the number of values in the bins before it."""
    below = 0
    b = 0
    while below + counts[b] <= k:
        below += counts[b]
        b += 1
    return b, below


@kernel
def _next_bin(b, counts):
    """The first bin after ``b`` that holds values (``len(counts)`` when none does)."""
    b += 1
    while b < counts.size and counts[b] == 0:
        b += 1
    return b


@kernel
def quartiles(buf, n, out2):
    quartiles_into(buf, n, out2, np.empty(n, np.int64), np.empty((256, 4), np.int64), np.empty(2 * n))


@kernel
def quartiles_into(buf, n, out2, bins, hist4, work):
    """:func:`quartiles` with caller-owned scratch: ``bins`` (n,) int64, ``hist4`` (256, 4) int64, ``work`` (2 n,)."""
    p25 = 0.25 * (n - 1)
    p75 = 0.75 * (n - 1)
    i25 = int(p25)
    i75 = int(p75)
    lo0 = lo1 = lo2 = lo3 = hi0 = hi1 = hi2 = hi3 = buf[0]
    for i in range(0, n - 3, 4):  # four independent chains of minima and maxima
        lo0 = min(lo0, buf[i])
        lo1 = min(lo1, buf[i + 1])
        lo2 = min(lo2, buf[i + 2])
        lo3 = min(lo3, buf[i + 3])
        hi0 = max(hi0, buf[i])
        hi1 = max(hi1, buf[i + 1])
        hi2 = max(hi2, buf[i + 2])
        hi3 = max(hi3, buf[i + 3])
    for i in range(n - n % 4, n):
        lo0 = min(lo0, buf[i])
        hi0 = max(hi0, buf[i])
    lo = min(min(lo0, lo1), min(lo2, lo3))
    hi = max(max(hi0, hi1), max(hi2, hi3))
    n_bins = 256
    scale = n_bins / (hi - lo) if hi > lo else 0.0
    if not (0.0 < scale < np.inf) or n < 64:  # constant values, or a span too wide or too narrow
        _quartiles_select(buf, n, p25, p75, i25, i75, out2)
        return
    for i in range(n):
        bins[i] = min(int((buf[i] - lo) * scale), n_bins - 1)
    # four interleaved histograms: neighbouring samples often share a bin, and one counter
    # would make every increment wait for the previous one
    hist4[:] = 0
    for i in range(0, n - 3, 4):
        hist4[bins[i], 0] += 1
        hist4[bins[i + 1], 1] += 1
        hist4[bins[i + 2], 2] += 1
        hist4[bins[i + 3], 3] += 1
    for i in range(n - n % 4, n):
        hist4[bins[i], 0] += 1
    counts = np.empty(n_bins, np.int64)
    for b in range(n_bins):
        counts[b] = hist4[b, 0] + hist4[b, 1] + hist4[b, 2] + hist4[b, 3]
    b25, below25 = _bin_of(i25, counts)
    b75, below75 = _bin_of(i75, counts)
    # the smallest value of the next non-empty bin after b25 (b75) is the order statistic after
    # the last one of b25 (b75): the bins are monotonic in the values
    n25 = _next_bin(b25, counts)
    n75 = _next_bin(b75, counts)
    w25 = work[:n]
    w75 = work[n : 2 * n]
    m25 = 0
    m75 = 0
    next25 = hi
    next75 = hi
    for i in range(n):  # gather the two bins' values (a few percent of all: rarely taken branches)
        b = bins[i]
        if b == b25:
            w25[m25] = buf[i]
            m25 += 1
        if b == b75:
            w75[m75] = buf[i]
            m75 += 1
        if b == n25:
            next25 = min(next25, buf[i])
        if b == n75:
            next75 = min(next75, buf[i])
    for j in range(2):
        k, p, work, m, below = (i25, p25, w25, m25, below25) if j == 0 else (i75, p75, w75, m75, below75)
        v, nxt = _kth(work, 0, m - 1, k - below)
        if k + 1 >= n:
            nxt = v
        elif k - below + 1 >= m:  # the next value lies in a later bin
            nxt = next25 if j == 0 else next75
        out2[j] = v + (p - k) * (nxt - v)


@kernel
def _quartiles_select(buf, n, p25, p75, i25, i75, out2):
    """The quartiles by quickselect over the whole buffer."""
    select(buf, 0, n - 1, i75)
    hi = buf[i75]
    nxt = hi
    if i75 + 1 < n:
        nxt = buf[i75 + 1]
        for j in range(i75 + 2, n):
            nxt = min(nxt, buf[j])
    out2[1] = hi + (p75 - i75) * (nxt - hi)
    select(buf, 0, i75, i25)
    lo = buf[i25]
    nxt = buf[i25 + 1] if i25 + 1 <= i75 else lo
    for j in range(i25 + 2, i75 + 1):
        nxt = min(nxt, buf[j])
    out2[0] = lo + (p25 - i25) * (nxt - lo)
