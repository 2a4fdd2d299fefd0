"""Compiled quartiles of a sample (numba; imported only where numba is available).

``quartiles(buf, n, out2)``: numpy's linear-interpolation 25 % and 75 % quantiles of ``buf[:n]``.

``buf`` is scratch (reordered in place). Quickselect (median-of-three pivots) of the upper
quartile's order statistic, then of the lower one among the values left of it; the next
order statistics are the minima of what lies right of each.
"""

import numba


@numba.njit(cache=True, nogil=True)
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

@numba.njit(cache=True, nogil=True)
def quartiles(buf, n, out2):
    p25 = 0.25 * (n - 1)
    p75 = 0.75 * (n - 1)
    i25 = int(p25)
    i75 = int(p75)
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
