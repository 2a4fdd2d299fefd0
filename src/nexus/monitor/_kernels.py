"""The compiled kernels of the monitor's per-window sums: one pass over a block of the whole lane.

:meth:`nexus.monitor.features.WindowAccumulator.add` folds each live block (rows × channels × a
tick of samples) into running sums. As NumPy passes this took about ten passes over the block with
temporaries; here one loop per row and channel reads each sample once (:func:`block_stats`), the
mains DFT is one matrix product, and :func:`rotate_dft` turns each row's block DFT to its session's
sample clock.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nexus.dsp._jit import kernel

FloatArray = npt.NDArray[np.float64]

N_STATS = 9
"""Statistics per row and channel written by :func:`block_stats`."""


@kernel(fastmath={"reassoc", "contract", "nsz"})
def block_stats(
    x: FloatArray, tail_last: FloatArray, has_tail: npt.NDArray[np.bool_], stats: FloatArray
) -> None:  # pragma: no cover - compiled
    """Statistics of each row and channel of block ``x`` (rows, channels, samples).

    Non-finite samples count as 0 (and are counted). ``tail_last`` (rows, channels) is the sample
    before the block where ``has_tail`` (rows,) is set (the first difference then starts there).
    Written in place, ``stats`` (rows, channels, :data:`N_STATS`): sum, sum of squares, max, min,
    samples at the max, samples at the min, non-finite samples, largest absolute first difference,
    sum of absolute first differences.
    """
    rows, chans, n = x.shape
    y = np.empty(n)
    for r in range(rows):
        for c in range(chans):
            bad = 0.0
            for i in range(n):
                v = x[r, c, i]
                ok = np.isfinite(v)
                y[i] = v if ok else 0.0
                bad += 0.0 if ok else 1.0
            s = 0.0
            sq = 0.0
            mx = y[0]
            mn = y[0]
            for i in range(n):
                v = y[i]
                s += v
                sq += v * v
                mx = max(mx, v)
                mn = min(mn, v)
            cmx = 0.0
            cmn = 0.0
            for i in range(n):
                cmx += 1.0 if y[i] == mx else 0.0
                cmn += 1.0 if y[i] == mn else 0.0
            maxd = 0.0
            absd = 0.0
            for i in range(1, n):
                d = abs(y[i] - y[i - 1])
                absd += d
                maxd = max(maxd, d)
            if has_tail[r]:
                d = abs(y[0] - tail_last[r, c])
                absd += d
                maxd = max(maxd, d)
            stats[r, c, 0] = s
            stats[r, c, 1] = sq
            stats[r, c, 2] = mx
            stats[r, c, 3] = mn
            stats[r, c, 4] = cmx
            stats[r, c, 5] = cmn
            stats[r, c, 6] = bad
            stats[r, c, 7] = maxd
            stats[r, c, 8] = absd


@kernel
def rotate_dft(part: FloatArray, cycles0: FloatArray, out: FloatArray) -> None:  # pragma: no cover - compiled
    """Turn block DFTs to each row's sample clock.

    ``part`` (rows, channels, 2F): real parts then imaginary parts of each frequency on the block's
    own time axis; ``cycles0`` (rows, F): where the row's sample clock stands at the block's first
    sample, in cycles of each frequency. ``out`` (same shape as ``part``) is written in place.
    """
    rows, chans, two_f = part.shape
    nf = two_f // 2
    for r in range(rows):
        for b in range(nf):
            ang = 2.0 * np.pi * cycles0[r, b]
            rc = np.cos(ang)
            rs = -np.sin(ang)
            for c in range(chans):
                re = part[r, c, b]
                im = part[r, c, nf + b]
                out[r, c, b] = re * rc - im * rs
                out[r, c, nf + b] = re * rs + im * rc


@kernel
def hysteresis_update(
    rows: npt.NDArray[np.int64],
    bad: npt.NDArray[np.bool_],
    t0: FloatArray,
    hint: FloatArray,
    k_on: int,
    k_off: int,
    is_open: npt.NDArray[np.bool_],
    run_bad: npt.NDArray[np.int64],
    run_good: npt.NDArray[np.int64],
    bad_t0: FloatArray,
    good_t0: FloatArray,
    onset: FloatArray,
    opened: npt.NDArray[np.bool_],
    closed: npt.NDArray[np.bool_],
    out_onset: FloatArray,
    out_end: FloatArray,
) -> None:  # pragma: no cover - compiled
    """One window's verdicts into the episode state of ``rows`` (see :meth:`nexus.monitor.episodes.Hysteresis.update`).

    ``bad``, ``hint`` (an earlier onset per cell, ``inf`` for none) and the outputs are (rows,
    columns); the state arrays are (capacity, columns) and are updated in place.
    """
    for i in range(rows.shape[0]):
        r = rows[i]
        for c in range(bad.shape[1]):
            b = bad[i, c]
            o = is_open[r, c]
            rb = run_bad[r, c] + 1 if b else 0
            rg = 0 if b else run_good[r, c] + 1
            if b and rb == 1:
                bad_t0[r, c] = min(t0[i], hint[i, c])
            if (not b) and rg == 1:
                good_t0[r, c] = t0[i]
            op = (not o) and rb >= k_on
            cl = o and rg >= k_off
            if op:
                onset[r, c] = bad_t0[r, c]
            is_open[r, c] = (o or op) and not cl
            run_bad[r, c] = rb
            run_good[r, c] = rg
            opened[i, c] = op
            closed[i, c] = cl
            out_onset[i, c] = onset[r, c]
            out_end[i, c] = good_t0[r, c]


@kernel
def repeat_hits(
    x: FloatArray, tail: FloatArray, has_tail: npt.NDArray[np.bool_], chans: npt.NDArray[np.int64],
    hits: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Samples of block ``x`` (rows, channels, n) that repeat, on every channel of ``chans``, the sample 2-L back.

    ``tail`` (rows, channels, L) holds the L samples before the block (valid where ``has_tail``). A sample
    counts once per lag 2..L at which every compared channel equals its value that many samples before,
    while some compared channel differs from the sample just before (lag 1: flat or lost channels repeat
    it). Before the first sample of a slot (no tail) nothing is compared. Writes the count per row into
    ``hits`` (rows,). ``x`` holds finite values (the caller zeroes the others).
    """
    rows, _, n = x.shape
    L = tail.shape[2]
    J = chans.shape[0]
    c0 = chans[0]
    for r in range(rows):
        cnt = 0.0
        for k in range(n):
            v0 = x[r, c0, k]
            for lag in range(2, L + 1):
                p = k - lag
                if p < 0 and not has_tail[r]:
                    continue
                w0 = x[r, c0, p] if p >= 0 else tail[r, c0, L + p]
                if v0 != w0:
                    continue
                same = True
                for jj in range(J):
                    c = chans[jj]
                    back = x[r, c, p] if p >= 0 else tail[r, c, L + p]
                    if x[r, c, k] != back:
                        same = False
                        break
                if not same:
                    continue
                moved = False
                for jj in range(J):
                    c = chans[jj]
                    prev = x[r, c, k - 1] if k >= 1 else tail[r, c, L - 1]
                    if x[r, c, k] != prev:
                        moved = True
                        break
                if moved:
                    cnt += 1.0
        hits[r] = cnt


@kernel
def ecg_beats(
    x: FloatArray,
    ch: int,
    rows: npt.NDArray[np.int64],
    refractory: int,
    fs: float,
    samples: npt.NDArray[np.int64],
    last: FloatArray,
    has_last: npt.NDArray[np.bool_],
    above: npt.NDArray[np.bool_],
    thr: FloatArray,
    peak: FloatArray,
    last_cross: npt.NDArray[np.int64],
    last_beat: npt.NDArray[np.int64],
    beats: FloatArray,
    rr_sum: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Heart beats of channel ``ch`` of block ``x`` (rows, channels, n; finite µV) into the state of ``rows``.

    One pass per row of :meth:`nexus.monitor.psyche.PsycheState.add_block`'s beat rule: upward
    crossings of the absolute first difference over ``thr`` (the difference carried from ``last``
    across blocks), a crossing kept ``refractory`` samples or more after the crossing before it; the
    RR interval (s, ``fs`` in Hz) from the kept crossing before is counted into ``beats`` and
    ``rr_sum`` when 0.3-2 s. The state arrays are (capacity,) and updated in place; ``samples`` is
    read only (each row's session sample at the block's start).
    """
    n = x.shape[2]
    if n == 0:
        return
    for i in range(rows.shape[0]):
        s = rows[i]
        prev = last[s] if has_last[s] else x[i, ch, 0]
        th = thr[s]
        pk = peak[s]
        ab = above[s]
        lc = last_cross[s]
        lb = last_beat[s]
        s0 = samples[s]
        nb = 0.0
        rs = 0.0
        for k in range(n):
            v = x[i, ch, k]
            d = abs(v - prev)
            prev = v
            pk = max(pk, d)
            a = d > th
            if a and not ab:
                at = s0 + k
                keep = (at - lc) >= refractory
                lc = at
                if keep:
                    rr = (at - lb) / fs
                    if rr >= 0.3 and rr <= 2.0:
                        nb += 1.0
                        rs += rr
                    lb = at
            ab = a
        last[s] = prev
        has_last[s] = True
        peak[s] = pk
        above[s] = ab
        last_cross[s] = lc
        last_beat[s] = lb
        beats[s] += nb
        rr_sum[s] += rs


@kernel
def resp_breaths(
    x: FloatArray,
    ch: int,
    dec: int,
    rows: npt.NDArray[np.int64],
    base: FloatArray,
    fs: float,
    samples: npt.NDArray[np.int64],
    r_amp: FloatArray,
    r_sign: npt.NDArray[np.int8],
    last_breath: FloatArray,
    ring_ibi: FloatArray,
    n_breaths: npt.NDArray[np.int64],
) -> None:  # pragma: no cover - compiled
    """Breaths of channel ``ch`` of block ``x`` (rows, channels, n), every ``dec``-th sample, into ``rows``' state.

    One pass per row of :meth:`nexus.monitor.psyche.PsycheState.add_block`'s breath rule: the sign
    of the signal around ``base`` (per row, this block's) with hysteresis 0.3 × ``r_amp``, held over
    the samples inside the band (from ``r_sign``); a breath is a change from -1 to +1. Its interval
    from the breath before (s, ``fs`` in Hz) goes into the ring ``ring_ibi`` (capacity, k) at slot
    ``n_breaths % k``, NaN outside 1-20 s. Several breaths of one row in one call share that slot
    (the last one stays) and advance ``n_breaths`` once, as the NumPy form did.
    """
    n = x.shape[2]
    k_ring = ring_ibi.shape[1]
    for i in range(rows.shape[0]):
        s = rows[i]
        b = base[i]
        h = 0.3 * r_amp[s]
        sign = r_sign[s]
        lbr = last_breath[s]
        pos = n_breaths[s] % k_ring
        found = False
        s0 = samples[s]
        for k in range(0, (n + dec - 1) // dec):
            y = x[i, ch, k * dec] - b
            if y > h:
                now = 1
            elif y < -h:
                now = -1
            else:
                now = sign
            if sign < 0 and now > 0:
                at = float(s0 + k * dec)
                ibi = (at - lbr) / fs
                ring_ibi[s, pos] = ibi if (ibi >= 1.0 and ibi <= 20.0) else np.nan
                lbr = at
                found = True
            sign = now
        r_sign[s] = sign
        if found:
            n_breaths[s] += 1
            last_breath[s] = lbr
