"""Compiled per-sample kernels of the event detectors.

Each kernel fuses a chain of whole-array passes (NumPy temporaries, filters from SciPy) into one
pass per row with the same arithmetic; the NumPy forms they equal are kept in the tests as
reference oracles (``tests/events``). Plain module-level functions, compiled on first use and
cached on disk (:mod:`nexus.dsp._jit`).
"""

from __future__ import annotations

import numpy as np

from nexus.dsp._jit import kernel

_BIG = float(np.finfo(np.float64).max)  # what np.nan_to_num puts for +inf


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
    The cumulative sums are computed in the same order but only the last ``n_rel + n_win``
    of them are kept (a ring), so a night needs no night-long scratch arrays.
    """
    rows, n = broad.shape
    size = 1
    while size < n_rel + n_win + 2:
        size *= 2
    m = size - 1  # ring of the cumulative sums: index k lives at k & m
    cs = np.empty(size)
    cb = np.empty(size)
    csb = np.empty(size)
    css = np.empty(size)
    cbb = np.empty(size)
    for r in range(rows):
        cs[0] = cb[0] = csb[0] = css[0] = cbb[0] = 0.0
        filled = 0  # cumulative sums known up to index filled
        for j in range(n):
            # window_mean's rule: [j - w // 2, j - w // 2 + w) clipped to the data; the
            # relative power over n_rel samples, the moments over n_win
            lo1 = j - n_rel // 2
            hi1 = lo1 + n_rel
            lo2 = j - n_win // 2
            hi2 = lo2 + n_win
            top = min(max(hi1, hi2), n)
            while filled < top:
                s = sigma[r, filled]
                b = broad[r, filled]
                k0 = filled & m
                k1 = (filled + 1) & m
                cs[k1] = cs[k0] + s
                cb[k1] = cb[k0] + b
                csb[k1] = csb[k0] + s * b
                css[k1] = css[k0] + s * s
                cbb[k1] = cbb[k0] + b * b
                filled += 1
            if lo1 >= 0 and hi1 <= n:
                cnt = float(n_rel)
            else:
                lo1 = min(max(lo1, 0), n)
                hi1 = min(max(hi1, 0), n)
                cnt = float(hi1 - lo1)
            lo, hi = lo1 & m, hi1 & m
            relpow[r, j] = ((css[hi] - css[lo]) / cnt) / max((cbb[hi] - cbb[lo]) / cnt, 1e-12)
            if lo2 >= 0 and hi2 <= n:
                cnt = float(n_win)
            else:
                lo2 = min(max(lo2, 0), n)
                hi2 = min(max(hi2, 0), n)
                cnt = float(hi2 - lo2)
            lo, hi = lo2 & m, hi2 & m
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
def spindle_candidates(relpow, corr, mrms, thr, mask, rel_pow, corr_min, n_smooth, k, out):
    """Samples where more than ``k`` of the three spindle criteria hold on average over ``n_smooth`` samples.

    Per sample the criteria passed are counted (relative power ≥ ``rel_pow``, correlation ≥
    ``corr_min``, moving RMS ≥ ``thr[row]``; 0 where ``mask`` is False); ``out`` (rows, n) bool is
    set where the centred ``n_smooth``-sample mean of the counts exceeds ``k``. The counts are
    integers, so comparing their window sum with ``k`` times the window length equals
    ``moving_mean(counts, n_smooth) > k`` of :func:`nexus.events.spindles._spindle_core` exactly.
    """
    rows, n = relpow.shape
    size = 1
    while size < n_smooth + 2:
        size *= 2
    m = size - 1
    c = np.zeros(size, dtype=np.int64)  # ring of the cumulative counts
    for r in range(rows):
        c[0] = 0
        filled = 0
        t = thr[r]
        for j in range(n):
            lo = j - n_smooth // 2
            hi = lo + n_smooth
            top = min(hi, n)
            while filled < top:
                q = 0
                if mask[r, filled]:
                    q = (relpow[r, filled] >= rel_pow) + (corr[r, filled] >= corr_min) + (mrms[r, filled] >= t)
                c[(filled + 1) & m] = c[filled & m] + q
                filled += 1
            lo = min(max(lo, 0), n)
            hi = min(max(hi, 0), n)
            out[r, j] = c[hi & m] - c[lo & m] > k * (hi - lo)


@kernel
def log_bins(v, mask, edges, lo_clip, hi_clip, log_e0, inv_step, hist):
    """Add the masked values of ``v`` (rows, n) to ``hist`` (rows, bins) in the bins of ``edges``.

    The bin of a value is ``searchsorted(edges, v, "right") - 1`` clipped to the end bins: a
    logarithm gives it (``(log(clip(v, lo_clip, hi_clip)) - log_e0) * inv_step``), one
    comparison with each neighbouring edge corrects its rounding, as
    :func:`nexus.events.spindles._bin_index` does.
    """
    rows, n = v.shape
    nb = edges.size - 1
    for r in range(rows):
        for j in range(n):
            if not mask[r, j]:
                continue
            x = v[r, j]
            g = (np.log(min(max(x, lo_clip), hi_clip)) - log_e0) * inv_step
            b = min(max(int(g), 0), nb - 1)
            if x < edges[b] and b > 0:
                b -= 1
            if x >= edges[b + 1] and b < nb - 1:
                b += 1
            hist[r, b] += 1


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


@kernel
def peaks_at(x, rows, idx, half, out):
    """Whether each sample ``x[rows[k], idx[k]]`` is the largest of its ``2 half + 1``-sample neighbourhood.

    ``x`` (rows, n) float, ``rows``/``idx`` (k,) int, ``out`` (k,) bool. The neighbourhood is clipped
    to the row, so this equals ``x == maximum_filter1d(x, 2 half + 1, mode="nearest")`` at those
    samples for finite ``x`` (the repeated edge samples are in the clipped neighbourhood already);
    each test stops at the first larger sample.
    """
    n = x.shape[1]
    for k in range(idx.size):
        r = rows[k]
        i = idx[k]
        v = x[r, i]
        ok = True
        for j in range(max(i - half, 0), min(i + half, n - 1) + 1):
            if x[r, j] > v:
                ok = False
                break
        out[k] = ok


@kernel
def _reduceat_sum(x, a, b):
    """``np.add.reduceat``'s sum of ``x[a:b]`` (``b > a``), bit for bit.

    The first value plus NumPy's pairwise sum of the others (eight running sums over blocks of up to
    128, halves above).
    """
    return x[a] + _pairwise_sum(x, a + 1, b - a - 1)


@kernel
def _pairwise_sum(x, a, n):
    """NumPy's pairwise summation of ``x[a:a + n]`` (``pairwise_sum_DOUBLE``), same order of additions."""
    if n < 8:
        res = 0.0
        for i in range(a, a + n):
            res += x[i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = x[a], x[a + 1], x[a + 2], x[a + 3]
        r4, r5, r6, r7 = x[a + 4], x[a + 5], x[a + 6], x[a + 7]
        i = 8
        while i < n - (n % 8):
            r0 += x[a + i]
            r1 += x[a + i + 1]
            r2 += x[a + i + 2]
            r3 += x[a + i + 3]
            r4 += x[a + i + 4]
            r5 += x[a + i + 5]
            r6 += x[a + i + 6]
            r7 += x[a + i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += x[a + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(x, a, n2) + _pairwise_sum(x, a + n2, n - n2)


@kernel
def _bridged_runs(cand, max_gap, starts, stops):
    """The runs of True of ``cand`` (n,) once its inner runs of False shorter than ``max_gap`` are set True.

    Writes each run's first sample and one past its last into ``starts``/``stops``; returns their
    number. The same runs as :func:`nexus.events.common.fill_short_gaps` then
    :func:`nexus.dsp.moving.runs` (a False run touching either end is never bridged).
    """
    n = cand.size
    k = 0
    j = 0
    while j < n:
        if not cand[j]:
            j += 1
            continue
        a = j
        while True:
            while j < n and cand[j]:
                j += 1
            g = j  # a run of False from g: bridged when short and followed by True
            while j < n and not cand[j]:
                j += 1
            if j < n and j - g < max_gap:
                continue
            starts[k] = a
            stops[k] = g
            k += 1
            break
    return k


@kernel
def _trailing(c, t, n, length, gap, half):
    """Mean over ``[t - gap - length, t - gap)`` (clipped) from the cumulative sums ``c`` (n + 1,).

    NaN when fewer than ``half`` samples: :func:`nexus.events.arousals._trailing_mean` at one sample.
    """
    hi = min(max(t - gap, 0), n)
    lo = min(max(t - gap - length, 0), n)
    cnt = hi - lo
    if cnt >= half:
        return (c[hi] - c[lo]) / max(cnt, 1)
    return np.nan


@kernel
def _no_nan(v):
    """``np.nan_to_num(v)`` of one value: NaN is 0, infinities the largest finite values."""
    if np.isnan(v):
        return 0.0
    if np.isinf(v):
        return _BIG if v > 0 else -_BIG
    return v


@kernel(error_model="numpy")
def arousal_events(feat, sleep, ratio, emg_ratio, min_dur, max_dur, need, base_len, base_gap, max_gap):
    """The arousals of a window of one-second features: ``(row, start, stop, fast_ratio, emg_ratio)``.

    ``feat`` (rows, 4, n): fast power, EMG RMS (NaN without EMG), REM flag (> 0.5), sigma power;
    ``sleep`` (rows, n) bool. The rules and arithmetic of :func:`nexus.events.arousals._arousal_core`
    (its NumPy form is kept in the tests): a second is shifted when its fast power is at least
    ``ratio`` times its trailing ``base_len``-s mean ending ``base_gap`` s before and not below its
    sigma power; shifts with gaps shorter than ``max_gap`` bridged; ``min_dur``..``max_dur`` s long,
    inside the window, all in sleep after ``need`` s of sleep, ``need`` s after the previous
    candidate; in REM the EMG must rise ``emg_ratio`` times over its baseline. Rows then time.
    """
    rows, _, n = feat.shape
    half = max(1, base_len // 2)
    c = np.empty(n + 1)
    ce = np.empty(n + 1)
    cs = np.empty(n + 1, dtype=np.int64)
    r0 = np.empty(n)
    e0 = np.empty(n)
    cand = np.empty(n, dtype=np.bool_)
    starts = np.empty(n, dtype=np.intp)
    stops = np.empty(n, dtype=np.intp)
    cap = 16
    out_r = np.empty(cap, dtype=np.intp)
    out_a = np.empty(cap, dtype=np.intp)
    out_b = np.empty(cap, dtype=np.intp)
    out_p = np.empty(cap)
    out_e = np.empty(cap)
    k = 0
    for r in range(rows):
        c[0] = 0.0
        ce[0] = 0.0
        cs[0] = 0
        for j in range(n):  # the cumulative sums as np.cumsum forms them (the first is the value itself)
            f = feat[r, 0, j]
            e0[j] = _no_nan(feat[r, 1, j])
            c[j + 1] = f if j == 0 else c[j] + f
            ce[j + 1] = e0[j] if j == 0 else ce[j] + e0[j]
            cs[j + 1] = cs[j] + (1 if sleep[r, j] else 0)
        for j in range(n):
            f = feat[r, 0, j]
            r0[j] = _no_nan(f / _trailing(c, j, n, base_len, base_gap, half))
            cand[j] = (r0[j] >= ratio) and (f >= feat[r, 3, j])
        m = _bridged_runs(cand, max_gap, starts, stops)
        prev_end = -1  # end of the previous candidate of this row kept by its duration (none yet)
        for q in range(m):
            a = starts[q]
            b = stops[q]
            dur = b - a
            if not (dur >= min_dur and dur <= max_dur and a > 0 and b < n):
                continue
            ok = a - need >= 0 and cs[a] - cs[a - need] >= need and cs[b] - cs[a] >= dur
            ok = ok and (prev_end < 0 or a - prev_end >= need)
            prev_end = b
            pk = r0[a]
            ep = e0[a]
            for j in range(a, b):
                pk = max(pk, r0[j])
                ep = max(ep, e0[j])
            er = ep / _trailing(ce, a, n, base_len, base_gap, half)
            if feat[r, 2, a] > 0.5:  # in REM: a chin EMG that rose
                ok = ok and np.isfinite(feat[r, 1, a]) and _no_nan(er) >= emg_ratio
            if not ok:
                continue
            if k == cap:
                cap *= 2
                out_r = _grow_i(out_r, cap)
                out_a = _grow_i(out_a, cap)
                out_b = _grow_i(out_b, cap)
                out_p = _grow_f(out_p, cap)
                out_e = _grow_f(out_e, cap)
            out_r[k] = r
            out_a[k] = a
            out_b[k] = b
            out_p[k] = pk
            out_e[k] = er
            k += 1
    return out_r[:k], out_a[:k], out_b[:k], out_p[:k], out_e[:k]


@kernel
def _grow_i(x, cap):
    y = np.empty(cap, dtype=x.dtype)
    y[: x.size] = x
    return y


@kernel
def _grow_f(x, cap):
    y = np.empty(cap)
    y[: x.size] = x
    return y


@kernel
def movement_events(act, mask, threshold, max_gap, fs, min_dur):
    """The movements of a window of one-second activity: ``(row, start, stop, peak, sum)``.

    ``act`` (rows, n) in milli-g, ``mask`` (rows, n) bool. The runs of ``act >= threshold`` where
    ``mask`` holds, gaps shorter than ``max_gap`` bins bridged, lasting at least ``min_dur`` s at ``fs`` Hz, with
    their largest and summed activity: :func:`nexus.events.movement._movement_core`'s rules, its sum
    as ``np.add.reduceat`` adds (bit for bit). Rows then time.
    """
    rows, n = act.shape
    cand = np.empty(n, dtype=np.bool_)
    starts = np.empty(n, dtype=np.intp)
    stops = np.empty(n, dtype=np.intp)
    cap = 16
    out_r = np.empty(cap, dtype=np.intp)
    out_a = np.empty(cap, dtype=np.intp)
    out_b = np.empty(cap, dtype=np.intp)
    out_p = np.empty(cap)
    out_s = np.empty(cap)
    k = 0
    for r in range(rows):
        for j in range(n):
            cand[j] = act[r, j] >= threshold and mask[r, j]
        m = _bridged_runs(cand, max_gap, starts, stops)
        for q in range(m):
            a = starts[q]
            b = stops[q]
            if (b - a) / fs < min_dur:
                continue
            pk = act[r, a]
            for j in range(a, b):
                pk = max(pk, act[r, j])
            if k == cap:
                cap *= 2
                out_r = _grow_i(out_r, cap)
                out_a = _grow_i(out_a, cap)
                out_b = _grow_i(out_b, cap)
                out_p = _grow_f(out_p, cap)
                out_s = _grow_f(out_s, cap)
            out_r[k] = r
            out_a[k] = a
            out_b[k] = b
            out_p[k] = pk
            out_s[k] = _reduceat_sum(act[r], a, b)
            k += 1
    return out_r[:k], out_a[:k], out_b[:k], out_p[:k], out_s[:k]


@kernel
def spindle_events(broad, sigma, relpow, passed, fs, max_gap, dur_lo, dur_hi):
    """The spindles of a window: ``(row, onset, duration, peak_s, amp_uv, rms_uv, freq_hz, rel_power)``.

    ``passed`` (rows, n) bool: the samples meeting the criteria (:func:`spindle_candidates`); runs of
    them, gaps shorter than ``max_gap`` samples bridged, lasting more than ``dur_lo`` and less than
    ``dur_hi`` s at ``fs`` Hz, are spindles. Per spindle, from the broadband, sigma-band (µV) and
    relative-power rows: the broadband peak-to-peak, the sigma RMS, the sigma zero-crossing
    frequency, the mean relative power and the first sample of largest |sigma|. The rules and
    arithmetic of :func:`nexus.events.spindles._spindle_core` (its sums as ``np.add.reduceat``
    adds them); rows then time.
    """
    rows, n = passed.shape
    cand = np.empty(n, dtype=np.bool_)
    starts = np.empty(n, dtype=np.intp)
    stops = np.empty(n, dtype=np.intp)
    sq = np.empty(n)
    cap = 16
    out_r = np.empty(cap, dtype=np.intp)
    cols = np.empty((7, cap))
    k = 0
    for r in range(rows):
        for j in range(n):
            cand[j] = passed[r, j]
        m = _bridged_runs(cand, max_gap, starts, stops)
        for q in range(m):
            a = starts[q]
            b = stops[q]
            dur = (b - a) / fs
            if not (dur > dur_lo and dur < dur_hi):
                continue
            hi = broad[r, a]
            lo = broad[r, a]
            top = abs(sigma[r, a])
            peak = a
            n_zc = 0
            for j in range(a, b):
                v = broad[r, j]
                hi = max(hi, v)
                lo = min(lo, v)
                s = sigma[r, j]
                sq[j] = s * s
                if abs(s) > top:
                    top = abs(s)
                    peak = j
                if j < n - 1 and np.signbit(sigma[r, j + 1]) != np.signbit(s):
                    n_zc += 1
            length = max(float(b - a), 1.0)
            if k == cap:
                cap *= 2
                out_r = _grow_i(out_r, cap)
                grown = np.empty((7, cap))
                grown[:, :k] = cols[:, :k]
                cols = grown
            out_r[k] = r
            cols[0, k] = a / fs
            cols[1, k] = dur
            cols[2, k] = peak / fs
            cols[3, k] = hi - lo
            cols[4, k] = np.sqrt(_reduceat_sum(sq, a, b) / length)
            cols[5, k] = n_zc / 2.0 / max(dur, 1e-9)
            cols[6, k] = _reduceat_sum(relpow[r], a, b) / length
            k += 1
    return out_r[:k], cols[:, :k]


@kernel
def slow_wave_events(f, mask, fs, dur_neg, dur_pos, amp_neg, amp_pos, amp_ptp):
    """The slow oscillations of the band-passed EEG ``f`` (rows, n), in µV: ``(row, columns (9, k))``.

    The candidates of :func:`half_waves` whose negative and positive half-wave durations (s, at ``fs``
    Hz) and amplitudes (µV) lie in the closed ranges ``dur_neg``, ``dur_pos``, ``amp_neg`` (of the
    trough's depth), ``amp_pos`` and ``amp_ptp`` (each a (2,) array), and whose trough sample is in
    ``mask`` (rows, n). Columns: onset, duration, trough time, trough amplitude, peak time, peak
    amplitude (s, µV), peak-to-peak, slope (µV/s) and frequency (Hz); the rules and arithmetic of
    :func:`nexus.events.slow_waves._sw_core`. Rows then time.
    """
    n = f.shape[1]
    r, a, b, c, neg_min, neg_idx, pos_max, pos_idx = half_waves(f)
    keep = np.zeros(r.size, dtype=np.bool_)
    k = 0
    for q in range(r.size):
        dneg = (b[q] - a[q]) / fs
        dpos = (c[q] - b[q]) / fs
        ptp = pos_max[q] - neg_min[q]
        depth = -neg_min[q]
        keep[q] = (dur_neg[0] <= dneg <= dur_neg[1] and dur_pos[0] <= dpos <= dur_pos[1]
                   and amp_neg[0] <= depth <= amp_neg[1] and amp_pos[0] <= pos_max[q] <= amp_pos[1]
                   and amp_ptp[0] <= ptp <= amp_ptp[1] and mask[r[q], min(neg_idx[q], n - 1)])
        if keep[q]:
            k += 1
    rows = np.empty(k, dtype=np.intp)
    cols = np.empty((9, k))
    j = 0
    for q in range(r.size):
        if not keep[q]:
            continue
        dur = (c[q] - a[q]) / fs
        ptp = pos_max[q] - neg_min[q]
        rows[j] = r[q]
        cols[0, j] = a[q] / fs
        cols[1, j] = dur
        cols[2, j] = neg_idx[q] / fs
        cols[3, j] = neg_min[q]
        cols[4, j] = pos_idx[q] / fs
        cols[5, j] = pos_max[q]
        cols[6, j] = ptp
        cols[7, j] = ptp / max((pos_idx[q] - neg_idx[q]) / fs, 1.0 / fs)
        cols[8, j] = 1.0 / dur
        j += 1
    return rows, cols
