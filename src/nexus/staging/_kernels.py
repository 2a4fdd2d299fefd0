"""Compiled kernels of the stagers: block statistics and window features (offline and live), the live filters.

Each kernel fuses a chain of array passes into one pass per row with the same formulas; the
array forms they equal are kept in the tests as reference oracles (``tests/staging``). All are
plain module-level functions compiled on first use and cached on disk (:mod:`nexus.dsp._jit`).
"""

from __future__ import annotations

import numpy as np

from nexus.dsp._biquad import WIDTH, cascade_fma
from nexus.dsp._jit import kernel
from nexus.staging._select import quartiles_into


@kernel(fastmath={"reassoc", "contract", "nsz"})
def block_stats(y, at, n, kmax, out, starts, window, seg, edge):
    """Sufficient statistics of a block of every row, and its Welch segments, in one pass.

    The block is ``y[:, at : at + n]`` (``y`` C-contiguous, so that its rows are read as
    contiguous vectors), after ``kmax`` samples that precede it. ``seg[r, g]`` receives the
    mean-removed, windowed segment ``y[r, starts[g] : starts[g] + len(window)]`` (in the same
    pass over the row); ``out`` (rows, ≥ 20 + kmax) receives, per row: Σx, Σx², Σx³, Σx⁴, Σdx,
    Σdx², Σddx, Σddx², sign changes of x and of dx, counts of the 8 order-3 comparison codes, the
    block's 25 % and 75 % quantiles (linear interpolation), then the Higuchi lag sums for
    k = 1..kmax.

    ``edge`` False (a block of a stream, the live stager's 5-s blocks): the differences, sign
    changes and codes of every sample of the block are counted, reaching into the samples before
    it, and the lag sums are Σ|x[i] − x[i−k]| over the block. ``edge`` True (a block that is a
    whole window on its own, an offline 30-s epoch): nothing before the block counts, so the
    sums are those of the block alone (n − 1 differences, n − 2 codes), and each lag sum is
    Higuchi's exact Σ_m S_km / n_max(m) (pairs inside the block, weighted by the number of pairs
    of their offset m).
    """
    # reassociation lets the compiler vectorise the sums along the block (slices, not x[i - k]
    # with a possibly negative index, keep the loops free of wraparound checks)
    rows = y.shape[0]
    width = n + kmax
    scratch = np.empty(n)
    q = np.empty(2)
    bins = np.empty(n, np.int64)  # the quartiles' scratch, allocated once
    hist4 = np.empty((256, 4), np.int64)
    work = np.empty(2 * n)
    # Higuchi weights 1 / n_max(m) of the pair ending at sample i of the block (offset m = i mod k)
    hw = np.zeros((kmax + 1, n if edge else 1))
    if edge:
        for k in range(1, kmax + 1):
            for i in range(k, n):
                hw[k, i] = 1.0 / np.floor((n - i % k - 1) / k)
    for r in range(rows):
        x = y[r, at - kmax : at + n]
        cur = x[kmax:]
        p1 = x[kmax - 1 : width - 1]
        p2 = x[kmax - 2 : width - 2]
        # one short loop per group of sums: few accumulators each, so that they vectorise
        s1 = s2 = s3 = s4 = 0.0
        for i in range(n):
            v = cur[i]
            v2 = v * v
            s1 += v
            s2 += v2
            s3 += v2 * v
            s4 += v2 * v2
        d1 = d2 = dd1 = dd2 = 0.0
        for i in range(n):
            dx = cur[i] - p1[i]
            ddx = dx - (p1[i] - p2[i])
            d1 += dx
            d2 += dx * dx
            dd1 += ddx
            dd2 += ddx * ddx
        nzc = 0
        nzcd = 0
        for i in range(n):
            b = p1[i]
            nzc += np.signbit(cur[i]) != np.signbit(b)
            nzcd += np.signbit(cur[i] - b) != np.signbit(b - p2[i])
        # order-3 codes 4·(a≤b) + 2·(a≤v) + (b≤v): joint counts from sums of the indicators
        na = nb = nc = nab = nac = nbc = nabc = 0
        for i in range(n):
            a = p2[i]
            b = p1[i]
            v = cur[i]
            ia = int(a <= b)
            ib = int(a <= v)
            ic = int(b <= v)
            na += ia
            nb += ib
            nc += ic
            nab += ia * ib
            nac += ia * ic
            nbc += ib * ic
            nabc += ia * ib * ic
        out[r, 10] = n - na - nb - nc + nab + nac + nbc - nabc  # code 0
        out[r, 11] = nc - nac - nbc + nabc  # 1: c only
        out[r, 12] = nb - nab - nbc + nabc  # 2: b only
        out[r, 13] = nbc - nabc  # 3: b and c
        out[r, 14] = na - nab - nac + nabc  # 4: a only
        out[r, 15] = nac - nabc  # 5: a and c
        out[r, 16] = nab - nabc  # 6: a and b
        out[r, 17] = nabc  # 7
        if edge:
            for k in range(1, kmax + 1):
                lag = x[kmax - k : width - k]
                wk = hw[k]
                h = 0.0
                for i in range(n):  # weight 0 for i < k; a loop from 0 vectorises (one from k does not)
                    h += abs(cur[i] - lag[i]) * wk[i]
                out[r, 19 + k] = h
            # drop the terms that reach before the block: differences and sign changes at its
            # first sample, second differences, slope sign changes and codes at its first two
            e0 = cur[0] - p1[0]
            e1 = cur[1] - p1[1]
            f0 = e0 - (p1[0] - p2[0])
            f1 = e1 - (p1[1] - p2[1])
            d1 -= e0
            d2 -= e0 * e0
            dd1 -= f0 + f1
            dd2 -= f0 * f0 + f1 * f1
            nzc -= np.signbit(cur[0]) != np.signbit(p1[0])
            for i in range(2):
                b = p1[i]
                nzcd -= np.signbit(cur[i] - b) != np.signbit(b - p2[i])
                code = 4 * int(p2[i] <= b) + 2 * int(p2[i] <= cur[i]) + int(b <= cur[i])
                out[r, 10 + code] -= 1
        else:
            for k in range(1, kmax + 1):
                lag = x[kmax - k : width - k]
                h = 0.0
                for i in range(n):
                    h += abs(cur[i] - lag[i])
                out[r, 19 + k] = h
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
        scratch[:] = cur
        quartiles_into(scratch, n, q, bins, hist4, work)
        out[r, 18] = q[0]
        out[r, 19] = q[1]
        # the row's Welch segments while its samples are in the cache
        nw = window.size
        for g in range(starts.size):
            src = y[r, starts[g] : starts[g] + nw]
            acc = 0.0
            for j in range(nw):
                acc += src[j]
            mean = acc / nw
            o = seg[r, g]
            for j in range(nw):
                o[j] = (src[j] - mean) * window[j]


def median_network(n: int) -> np.ndarray:
    """Comparators ``(i, j)`` (i < j) of a selection network that puts the median of ``n`` values at ``n // 2``.

    Batcher's odd-even merge sort on the next power of two, without the comparators that touch
    padding (padding would be +inf: those comparators change nothing) and without those that
    cannot reach position ``n // 2`` (pruned backwards from it). For ``n = 11``: 32 comparators.
    """
    size = 1 << max(n - 1, 1).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    need = {n // 2}
    keep = []
    for i, j in reversed([(i, j) for i, j in pairs if j < n]):
        if i in need or j in need:
            keep.append((i, j))
            need |= {i, j}
    return np.array(keep[::-1], dtype=np.int64).reshape(-1, 2)


@kernel
def median(x, pairs, out):
    """Median along axis 1 of ``x`` (rows, n, m) into ``out`` (rows, m).

    ``pairs`` is :func:`median_network` ``(n)``; ``n`` odd. Each comparator is a minimum and a
    maximum over the ``m`` contiguous columns at once (vectorised), so the median of the 11
    Welch segments of every frequency bin costs a few instructions per value instead of a
    partition per bin. Equal to ``np.median(x, axis=1)`` for finite values.
    """
    rows, n, m = x.shape
    mid = n // 2
    work = np.empty((n, m), x.dtype)
    for r in range(rows):
        for s in range(n):
            for b in range(m):
                work[s, b] = x[r, s, b]
        for p in range(pairs.shape[0]):
            wi = work[pairs[p, 0]]
            wj = work[pairs[p, 1]]
            for b in range(m):
                a = wi[b]
                c = wj[b]
                wi[b] = a if a < c else c
                wj[b] = c if a < c else a
        for b in range(m):
            out[r, b] = work[mid, b]


@kernel
def filter_chain(x, chans, sos, zi, prev, i0, frac, emit, delay_tail, ma_tails, out):
    """The live filter chain in one compiled pass.

    For every row
    ``(session, kind)`` of the output, the samples ``x[session, chans[kind], :]`` (any float type)
    go through the causal low-pass (biquad cascade ``sos``, a0 = 1, state ``zi`` (rows, sections,
    2)), are interpolated linearly at the fractional positions ``i0 + frac`` between samples
    ``i0`` and ``emit = min(i0 + 1, n − 1)`` (position −1 is ``prev`` (rows,), the last
    low-passed sample of the previous call) and are high-passed (``y[k − D]`` minus the triple
    moving average of length ``L``; tails ``delay_tail`` (tiles, D, 16) and ``ma_tails`` (tiles,
    3, L − 1, 16), rows in tiles of 16, so that a tile's tails are contiguous). The result goes to
    ``out`` (rows, len(i0)), which may be a view into a larger buffer. All state is updated in
    place. Missing input samples (NaN, infinite) are filtered as 0; the kernel returns how many
    there were (the caller builds its missing-sample mask only when there are any). They are
    found from the low-pass's last output and state, which a missing sample leaves non-finite,
    so that the samples are not checked one by one.

    The rows are processed :data:`~nexus.dsp._biquad.WIDTH` at a time, so that their independent
    recursions run side by side (vectorised across rows); the low-pass is the biquad cascade of
    :mod:`nexus.dsp._biquad` with fused multiply-adds (:func:`~nexus.dsp._biquad.cascade_fma`:
    :func:`scipy.signal.sosfilt`'s transposed direct form II within rounding) on the tile, and
    intermediate signals stay in small per-tile buffers. The interpolation is that of the numpy
    version operation for operation; the moving averages multiply their running sums by 1/L
    (within a rounding of a division by L).
    """
    n_k = chans.size
    rows = x.shape[0] * n_k
    n = x.shape[2]
    m = i0.size
    nsec = sos.shape[0]
    d = delay_tail.shape[1]
    lm1 = ma_tails.shape[2]
    length = lm1 + 1
    inv = 1.0 / length  # a product is several times cheaper than a division
    w = WIDTH
    z0 = np.zeros((nsec, w))
    z1 = np.zeros((nsec, w))
    tile = np.zeros((n + 1, w))  # the previous low-passed sample, then this call's
    u = np.zeros((d + m, w))  # delay tail then the new 100-Hz samples
    inb = np.zeros((lm1 + m, w))  # one moving-average stage: its tail then its input
    sums = np.zeros((m, w))
    sess = np.zeros(w, np.int64)
    chan = np.zeros(w, np.int64)
    missing = 0
    for r0 in range(0, rows, w):
        lanes = min(w, rows - r0)
        for t in range(lanes):
            sess[t] = (r0 + t) // n_k
            chan[t] = chans[(r0 + t) % n_k]
        # transposed sample by sample: the tile's rows are written whole, the inputs read as
        # `lanes` sequential streams (cheaper than a strided store per sample)
        if lanes == w:
            for j in range(n):
                for t in range(w):
                    tile[j + 1, t] = x[sess[t], chan[t], j]
        else:
            for j in range(n):
                for t in range(lanes):
                    tile[j + 1, t] = x[sess[t], chan[t], j]
        for t in range(lanes):
            tile[0, t] = prev[r0 + t]
            for s in range(nsec):
                z0[s, t] = zi[r0 + t, s, 0]
                z1[s, t] = zi[r0 + t, s, 1]
        cascade_fma(tile, sos, z0, z1, 1, n + 1, False)  # the low-pass, all rows of the tile at once
        # a missing sample (NaN, infinite) leaves the recursions non-finite to the end (v − v
        # is then not 0): only then is the tile filtered again, missing samples read as 0
        finite = True
        for t in range(lanes):
            finite &= tile[n, t] - tile[n, t] == 0
            for s in range(nsec):
                finite &= (z0[s, t] - z0[s, t] == 0) & (z1[s, t] - z1[s, t] == 0)
        if not finite:
            for t in range(lanes):
                for j in range(n):
                    v = x[sess[t], chan[t], j]
                    ok = v - v == 0
                    tile[j + 1, t] = v if ok else 0.0
                    missing += not ok
                for s in range(nsec):
                    z0[s, t] = zi[r0 + t, s, 0]
                    z1[s, t] = zi[r0 + t, s, 1]
            cascade_fma(tile, sos, z0, z1, 1, n + 1, False)
        for t in range(lanes):
            prev[r0 + t] = tile[n, t]
            for s in range(nsec):
                zi[r0 + t, s, 0] = z0[s, t]
                zi[r0 + t, s, 1] = z1[s, t]
        tile_no = r0 // w
        for j in range(d):
            for t in range(w):
                u[j, t] = delay_tail[tile_no, j, t]
        for k in range(m):  # tile index = sample index + 1 (index 0: the previous sample)
            f = frac[k]
            g = 1.0 - f
            ia = i0[k] + 1
            ib = emit[k] + 1
            for t in range(w):
                u[d + k, t] = tile[ia, t] * g + tile[ib, t] * f
        if m == 0:
            continue
        # high-pass: three moving averages, each over its carried tail and its new input; the
        # running sums are carried in an array row by row (no accumulator array to reload)
        for j in range(m):
            for t in range(w):
                inb[lm1 + j, t] = u[d + j, t]
        for st in range(3):
            for j in range(lm1):
                for t in range(w):
                    inb[j, t] = ma_tails[tile_no, st, j, t]
            for j in range(lm1):
                for t in range(w):
                    ma_tails[tile_no, st, j, t] = inb[m + j, t]
            for t in range(w):
                sums[0, t] = 0.0
            for j in range(length):
                for t in range(w):
                    sums[0, t] += inb[j, t]
            for j in range(1, m):
                for t in range(w):
                    sums[j, t] = sums[j - 1, t] + (inb[j + lm1, t] - inb[j - 1, t])
            if st < 2:  # the mean is the next stage's input
                for j in range(m):
                    for t in range(w):
                        inb[lm1 + j, t] = sums[j, t] * inv
        for j in range(m):
            for t in range(lanes):
                out[r0 + t, j] = u[j, t] - sums[j, t] * inv
        for j in range(d):
            for t in range(w):
                delay_tail[tile_no, j, t] = u[m + j, t]
    return missing


@kernel
def power(spec, n_bins, scale, out, slots):
    """``out[:, slots[g]] = scale · |spec[:, g, :n_bins]|²``.

    ``spec`` (rows, segments, ≥ n_bins) complex; ``out`` (rows, slots, n_bins) real, e.g. a ring
    of spectra written in place; bin 0 is halved: the one-sided periodogram of
    :func:`scipy.signal.welch` from an ``rfft``, in one pass.
    """
    rows, n_seg = spec.shape[:2]
    for r in range(rows):
        for g in range(n_seg):
            sp = spec[r, g]
            o = out[r, slots[g]]
            for b in range(n_bins):
                v = sp[b]
                o[b] = (v.real * v.real + v.imag * v.imag) * scale
            o[0] /= 2.0


@kernel(fastmath={"reassoc", "contract", "nsz"})
def weighted_sums(x, first, weights, scale, out):
    """``out[r, i] = scale · Σ_b weights[i, b] · x[r, first + b]``.

    The band powers of the live stager (Simpson and trapezoid rules are weighted sums over the
    bins) without a BLAS call: BLAS threads would spin on the other cores after each product.
    """
    n_w, n_b = weights.shape
    for r in range(x.shape[0]):
        row = x[r, first : first + n_b]
        for i in range(n_w):
            w = weights[i]
            acc = 0.0
            for b in range(n_b):
                acc += w[b] * row[b]
            out[r, i] = acc * scale


@kernel(error_model="numpy")
def model_inputs(raw, bad, c7_num, c7_den, p2_num, p2_den, center, spread, times, cols, smooth, x):
    """Smoothing, scaling and column gathering of the live stager's model input.

    ``inputs(raw, bad, c7_num, c7_den, p2_num, p2_den, center, spread, times, cols, smooth, x)``:
    ``raw`` (s, f) window features, ``bad`` (s,) artefact windows, the completed epochs' sums
    (s, f) of the trailing triangular window and of the 2-min past mean, ``center`` and
    ``spread`` (s, 2, f) of the running scaling (NaN centre: none yet), ``times`` (time_hour,
    time_norm); writes ``smooth`` (s, 2, f) and the model's input ``x`` (s, len(cols)) float32,
    NaN as 0, columns ``cols`` of [raw, c7 norms, p2 norms, time_hour, time_norm]. The
    operations of the array form (``tests/staging/staging_oracles.py``) element by element, without its
    temporaries.
    """
    s, f = raw.shape
    row = np.empty(3 * f + 2)
    row[3 * f] = times[0]
    row[3 * f + 1] = times[1]
    for r in range(s):
        for i in range(f):
            v = raw[r, i]
            ok = v - v == 0 and not bad[r]  # finite, in a window that is not artefact
            x0 = v if ok else 0.0
            w = 1.0 if ok else 0.0
            c7 = (c7_num[r, i] + x0) / (c7_den[r, i] + w)
            p2 = (p2_num[r, i] + x0) / (p2_den[r, i] + w)
            smooth[r, 0, i] = c7
            smooth[r, 1, i] = p2
            row[i] = v
            c = center[r, 0, i]
            row[f + i] = (c7 - (c7 if np.isnan(c) else c)) / spread[r, 0, i]
            c = center[r, 1, i]
            row[2 * f + i] = (p2 - (p2 if np.isnan(c) else c)) / spread[r, 1, i]
        for k in range(cols.size):
            v32 = np.float32(row[cols[k]])
            x[r, k] = np.float32(0.0) if np.isnan(v32) else v32


#: order of the columns of :func:`window_features`' output
WINDOW_FEATURES: tuple[str, ...] = (
    "std", "iqr", "skew", "kurt", "nzc", "hmob", "hcomp",
    "sdelta", "fdelta", "theta", "alpha", "sigma", "beta",
    "dt", "ds", "db", "at", "abspow", "perm", "higuchi", "petrosian",
)  # fmt: skip


@kernel(error_model="numpy")
def window_features(stats, ints, block, kmax, out, out_nan, edge):
    """YASA's features of a window from the sums of its blocks (:func:`block_stats`).

    ``stats`` (rows, blocks, n_stats) per-block sums in the layout of :mod:`nexus.staging.window`
    (NaN rows: blocks not seen), ``ints`` (rows, 8) broad-band power, six band powers and
    absolute power; ``out`` (rows, 21) receives the columns :data:`WINDOW_FEATURES`, and
    ``out_nan`` (rows,) whether a block had missing samples. Moments from power sums, Hjorth from
    difference sums, permutation entropy from the code counts, Higuchi from the lag sums.
    ``edge`` as in :func:`block_stats`: True for one block that is the whole window (the exact
    per-epoch definitions: n − 1 differences, n − 2 second differences, exact Higuchi lengths),
    False for the blocks of a stream (one difference per sample, Higuchi's pairs per offset
    taken as N / k). The array form is in ``tests/staging/staging_oracles.py``.
    """
    rows, n_blocks, n_stats = stats.shape
    tot = np.zeros(n_stats)
    lx_sum = 0.0
    lx2_sum = 0.0
    for k in range(1, kmax + 1):
        lx = np.log(1.0 / k)
        lx_sum += lx
        lx2_sum += lx * lx
    den_h = kmax * lx2_sum - lx_sum * lx_sum + 1e-9
    for r in range(rows):
        tot[:] = 0.0
        nb = 0
        q25 = 0.0
        q75 = 0.0
        for b in range(n_blocks):
            if np.isfinite(stats[r, b, 0]):
                nb += 1
                for k in range(n_stats):
                    tot[k] += stats[r, b, k]
                q25 += stats[r, b, 18]
                q75 += stats[r, b, 19]
        n = nb * float(block)
        out_nan[r] = tot[20 + kmax] > 0
        mean = tot[0] / n
        e2 = tot[1] / n
        e3 = tot[2] / n
        e4 = tot[3] / n
        m2 = e2 - mean * mean
        m3 = e3 - 3 * mean * e2 + 2 * mean * mean * mean
        m4 = e4 - 4 * mean * e3 + 6 * mean * mean * e2 - 3 * mean * mean * mean * mean
        m2 = 0.0 if m2 < 0.0 else m2  # NaN stays NaN
        out[r, 0] = np.sqrt(m2 * n / (n - 1))
        out[r, 1] = q75 / nb - q25 / nb
        out[r, 2] = m3 / m2**1.5
        out[r, 3] = m4 / (m2 * m2) - 3.0
        n_d = n - 1.0 if edge else n  # first differences counted
        n_dd = n - 2.0 if edge else n  # second differences counted
        out[r, 4] = tot[8] * (n - 1) / n_d
        var_dx = tot[5] / n_d - (tot[4] / n_d) ** 2
        var_ddx = tot[7] / n_dd - (tot[6] / n_dd) ** 2
        mob = np.sqrt(var_dx / m2)
        out[r, 5] = mob
        out[r, 6] = np.sqrt(var_ddx / var_dx) / mob
        total = ints[r, 0]
        for i in range(6):
            out[r, 7 + i] = ints[r, 1 + i] / total
        delta = out[r, 7] + out[r, 8]
        out[r, 13] = delta / out[r, 9]
        out[r, 14] = delta / out[r, 11]
        out[r, 15] = delta / out[r, 12]
        out[r, 16] = out[r, 10] / out[r, 9]
        out[r, 17] = ints[r, 7]
        c_sum = 0.0
        for k in range(8):
            c_sum += tot[10 + k]
        h = 0.0
        for k in range(8):
            p = tot[10 + k] / c_sum
            if p > 0:
                h -= p * np.log2(p)
        h /= np.log2(6.0)
        out[r, 18] = h if not (h > 1.0 or h < 0.0) else (1.0 if h > 1.0 else 0.0)
        # Higuchi: L(k) = (Σ_m S_km) (N − 1) / (k · n_pairs) / k², n_pairs ≈ max(N / k, 1)
        sy = 0.0
        sxy = 0.0
        for k in range(1, kmax + 1):
            if edge:  # the lag sums are already Σ_m S_km / n_max(m)
                mean_l = tot[19 + k] * ((n - 1) / (k * k * k))
            else:
                n_pairs = max(n / k, 1.0)
                mean_l = tot[19 + k] * ((n - 1) / (k * n_pairs)) / (k * k)
            logl = np.log(mean_l) if mean_l > 0 else np.nan
            sy += logl
            sxy += logl * np.log(1.0 / k)
        out[r, 19] = (kmax * sxy - lx_sum * sy) / den_h
        nn = n if n > 0 else np.nan
        out[r, 20] = np.log10(nn) / (np.log10(nn) + np.log10(nn / (nn + 0.4 * tot[9])))
