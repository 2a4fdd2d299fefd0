"""Compiled per-sample kernels of the synthetic fleet (numba, compiled once per machine and cached).

:class:`~nexus.sources.synthetic.fleet.SyntheticFleet` draws its random numbers and runs its
inverse FFTs with numpy/scipy; everything done per frequency bin or per sample after that is
here, each in one pass that writes straight into its output:

* :func:`shape_spectra`: stage-mixture power spectrum of every frame, square root, per-frame
  gain, applied in place to the uniform draws (centred, unit variance);
* :func:`overlap_add`: windowing and overlap-add of the synthesis frames, with the carried tail;
* :func:`mix_channels`: channel mixing of the background sources, electrode noise, heart
  (ECG template), breathing and posture, written into the output block;
* :func:`add_events`: scheduled and closed-loop transient events added into the output;
* :func:`interval_level` and :func:`stage_weights`: the ramped levels of the arousal and distress
  tables and the stage mixture at given times, per session (a few per chunk, each ~15 NumPy calls).

Every sample is computed by the same operations in the same order whatever the chunking and
whatever the other sessions are (no fast-math, no reductions across sessions or chunks), so a
session's night depends only on its own plan and random streams.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_SQRT12 = math.sqrt(12.0)  # a uniform variable on [0, 1) has variance 1/12
TILE = 2048
"""Samples per session and channel mixed at a time (a few kB: stays in the L1/L2 cache)."""


@numba.njit(cache=True, nogil=True)
def shape_spectra(draws, w, swa, base, delta, scale):  # pragma: no cover - compiled
    """Turn uniform draws into random frame spectra, in place.

    Parameters
    ----------
    draws : ndarray of float32, shape (S, m, P, ≥ 2 * F)
        Interleaved real and imaginary parts, uniform on [0, 1); the first ``2 * F`` values of each
        row become ``(u - 0.5) * sqrt(12) * amplitude`` (zero mean, variance ``amplitude²``).
    w : ndarray of float64, shape (S, m, 5)
        Stage mixture of each frame.
    swa : ndarray of float64, shape (S, m)
        Slow-wave factor of each frame (multiplies ``delta``).
    base, delta : ndarray of float64, shape (5, P, F)
        Power per frequency bin per stage, in µV².
    scale : ndarray of float64, shape (S, m, P)
        Amplitude factor of each frame and source.
    """
    n_s, m, n_p = draws.shape[0], draws.shape[1], draws.shape[2]
    n_f = base.shape[2]
    pw = np.empty(n_f)
    for s in range(n_s):
        for j in range(m):
            for p in range(n_p):
                pw[:] = 0.0
                for k in range(5):
                    c = w[s, j, k]
                    if c != 0.0:
                        d = c * swa[s, j]
                        for f in range(n_f):
                            pw[f] += c * base[k, p, f] + d * delta[k, p, f]
                g = scale[s, j, p] * _SQRT12
                row = draws[s, j, p]
                for f in range(n_f):
                    a = np.float32(math.sqrt(max(pw[f], 0.0)) * g)
                    row[2 * f] = (row[2 * f] - np.float32(0.5)) * a
                    row[2 * f + 1] = (row[2 * f + 1] - np.float32(0.5)) * a


@numba.njit(cache=True, nogil=True)
def overlap_add(frames, win, tail, dest, off):  # pragma: no cover - compiled
    """Window the frames and overlap-add them into ``dest``, continuing from ``tail``.

    Parameters
    ----------
    frames : ndarray of float32, shape (S, m, P, 2 * hop)
        Inverse FFTs of consecutive frames (one hop apart).
    win : ndarray of float32, shape (2 * hop,)
        Synthesis window.
    tail : ndarray of float32, shape (S, P, hop)
        Windowed second half of the previous frame; replaced by that of the last frame.
    dest : ndarray of float32, shape (S, P, ≥ off + m * hop)
        Receives ``m * hop`` samples per source from index ``off``.
    off : int
        First index written in ``dest``.
    """
    n_s, m, n_p = frames.shape[0], frames.shape[1], frames.shape[2]
    hop = tail.shape[2]
    for s in range(n_s):
        for p in range(n_p):
            out = dest[s, p]
            prev = tail[s, p]
            for j in range(m):
                fr = frames[s, j, p]
                o = off + j * hop
                for i in range(hop):
                    out[o + i] = prev[i] + fr[i] * win[i]
                for i in range(hop):
                    prev[i] = fr[hop + i] * win[hop + i]


@numba.njit(cache=True, nogil=True)
def mix_channels(
    out, bg, boff, spec_mix, white, white_gain, white_col, ecg_gain, resp_gain, offset, phys, n0, sec0, hop, ecg, sine
):  # pragma: no cover - compiled
    """Write background, electrode noise, heart, breathing and posture into ``out``.

    Works on tiles of :data:`TILE` samples held in cache, so ``out`` may be any strided view
    (e.g. a block of a whole-night array) at the cost of one store per sample.

    Parameters
    ----------
    out : ndarray, shape (S, C, n)
        Output block (overwritten), float32 or float64.
    bg : ndarray of float32, shape (S, P, ≥ boff + n)
        Background of the spectral sources, from index ``boff``.
    boff : int
        Index in ``bg`` of the first sample.
    spec_mix : ndarray of float64, shape (C, P)
        Gain of each source on each channel.
    white : ndarray of float32, shape (S, n, 2)
        Uniform draws on [0, 1) for the white noise of the two EOG electrodes (unused when
        ``white_gain`` is all zero).
    white_gain : ndarray of float64, shape (C,)
        RMS of the white noise on each channel (the draws are centred and scaled to unit variance).
    white_col : ndarray of int64, shape (C,)
        Column of ``white`` each channel takes.
    ecg_gain, resp_gain : ndarray of float64, shape (C,)
        1 for the ECG (respectively Resp) channel, else 0.
    offset : ndarray of float64, shape (S, C)
        Constant added to each channel (gravity on the accelerometer), in milli-g.
    phys : ndarray of float64, shape (5, S, M)
        Per second from second ``sec0``: heart phase at its start and its increment (cycles), the
        same for breathing, and breathing depth.
    n0 : int
        Index in the night of the first sample.
    sec0 : int
        Second (block of ``hop`` samples) of ``phys[:, :, 0]``.
    hop : int
        Samples per second.
    ecg : ndarray of float64
        One heartbeat over one cycle of phase.
    sine : ndarray of float64, shape (T + 1,)
        ``sin(2π j / T)`` for j = 0..T (one cycle and its end point).
    """
    n_s, n_c, n = out.shape
    n_p = bg.shape[1]
    n_ecg = ecg.size
    n_sin = sine.size - 1
    need_heart = False
    need_resp = False
    for c in range(n_c):
        need_heart |= ecg_gain[c] != 0.0
        need_resp |= resp_gain[c] != 0.0
    heart = np.zeros(TILE)
    breath = np.zeros(TILE)
    acc = np.empty(TILE)
    within = np.empty(hop)  # fraction of the second at the end of each of its samples
    for r in range(hop):
        within[r] = (r + 1) / hop
    for s in range(n_s):
        for t0 in range(0, n, TILE):
            m = min(TILE, n - t0)
            i = t0
            while (need_heart or need_resp) and i < t0 + m:  # second by second
                sec = (n0 + i) // hop
                r0 = n0 + i - sec * hop
                cnt = min(hop - r0, t0 + m - i)
                k = sec - sec0
                h0, h1, b0, b1 = phys[0, s, k], phys[1, s, k], phys[2, s, k], phys[3, s, k]
                depth = 100.0 * phys[4, s, k]
                hb = heart[i - t0 : i - t0 + cnt]
                br = breath[i - t0 : i - t0 + cnt]
                wi = within[r0 : r0 + cnt]
                if need_heart:
                    for q in range(cnt):
                        ph = h0 + wi[q] * h1
                        hb[q] = ecg[int((ph - math.floor(ph)) * n_ecg)]
                if need_resp:  # sine from a table, linearly interpolated
                    for q in range(cnt):
                        ph = b0 + wi[q] * b1
                        x = (ph - math.floor(ph)) * n_sin
                        j = int(x)
                        br[q] = depth * (sine[j] + (x - j) * (sine[j + 1] - sine[j]))
                i += cnt
            for c in range(n_c):
                v = offset[s, c]
                for q in range(m):
                    acc[q] = v
                for p in range(n_p):
                    a = spec_mix[c, p]
                    if a != 0.0:
                        src = bg[s, p, boff + t0 : boff + t0 + m]
                        for q in range(m):
                            acc[q] += a * src[q]
                a = white_gain[c] * _SQRT12
                if a != 0.0:
                    col = white_col[c]
                    for q in range(m):
                        acc[q] += a * (white[s, t0 + q, col] - 0.5)
                if ecg_gain[c] != 0.0:
                    for q in range(m):
                        acc[q] += heart[q]
                if resp_gain[c] != 0.0:
                    for q in range(m):
                        acc[q] += breath[q]
                row = out[s, c, t0 : t0 + m]
                for q in range(m):
                    row[q] = acc[q]


@numba.njit(cache=True, nogil=True)
def add_events(out, sess, onset, kernel, amp, waves, lengths, source, ev_mix, n0):  # pragma: no cover - compiled
    """Add transient events (in the given order) into ``out`` of samples ``[n0, n0 + n)``.

    Parameters
    ----------
    out : ndarray, shape (S, C, n)
        Output block, float32 or float64.
    sess, onset, kernel : ndarray of int64, shape (E,)
        Session, onset (sample in the night) and kernel of each event.
    amp : ndarray of float32, shape (E,)
        Signed peak-to-peak amplitude of each event.
    waves : ndarray of float32, shape (K, L)
        Unit waveforms.
    lengths, source : ndarray of int64, shape (K,)
        Samples of each waveform and its event source.
    ev_mix : ndarray of float64, shape (C, G)
        Gain of each event source on each channel.
    n0 : int
        Index in the night of the first sample of ``out``.
    """
    n_c, n = out.shape[1], out.shape[2]
    for e in range(sess.size):
        k = kernel[e]
        rel = onset[e] - n0
        first = max(-rel, 0)
        last = min(lengths[k], n - rel)
        if last <= first:
            continue
        g = source[k]
        s = sess[e]
        for c in range(n_c):
            a = ev_mix[c, g] * np.float64(amp[e])
            if a != 0.0:
                row = out[s, c]
                wave = waves[k]
                for q in range(first, last):
                    row[rel + q] += a * wave[q]


@numba.njit(cache=True, nogil=True)
def due_events(keys, alive, cursor, span, n0, n, kmax):  # pragma: no cover - compiled
    """Indices of the live events of each session that touch samples ``[n0, n0 + n)``.

    ``keys`` (sorted) is ``session * span + onset``; ``cursor`` (S,) is each session's first
    candidate, advanced past events that ended before ``n0 - kmax`` (chunks only move forward).
    """
    n_s = cursor.size
    total = 0
    for s in range(n_s):
        lo = s * span + n0 - kmax
        j = cursor[s]
        while j < keys.size and keys[j] < lo:
            j += 1
        cursor[s] = j
        hi = s * span + n0 + n
        while j < keys.size and keys[j] < hi:
            total += 1
            j += 1
    idx = np.empty(total, dtype=np.int64)
    t = 0
    for s in range(n_s):
        j = cursor[s]
        hi = s * span + n0 + n
        while j < keys.size and keys[j] < hi:
            if alive[j]:
                idx[t] = j
                t += 1
            j += 1
    return idx[:t]


@numba.njit(cache=True, nogil=True)
def interval_level(keys, session, onset, duration, value, span, sess, t, ramp, lev, val):  # pragma: no cover
    """Level and value of the interval covering each (session, time): ``IntervalTable.level``'s arithmetic.

    Parameters
    ----------
    keys, session, onset, duration, value : ndarray, shape (K,) with K ≥ 1
        The table, sorted by ``keys = session * span + onset`` (onsets and durations in s).
    span : float
        Seconds between two sessions' key ranges.
    sess : ndarray of int64, shape (S,)
        Sessions asked for.
    t : ndarray of float64, shape (T,)
        Times in s.
    ramp : float
        Seconds over which a level rises from 0 to 1 (and falls back) at an interval's ends.
    lev, val : ndarray of float64, shape (S, T)
        Receive the level in [0, 1] and the interval's value (0 outside every interval).
    """
    n_k = keys.size
    for r in range(sess.size):
        s = sess[r]
        base = s * span
        for j in range(t.size):
            tj = t[j]
            i = np.searchsorted(keys, base + tj, side="right") - 1
            ok = i >= 0
            if i < 0:
                i = 0
            elif i >= n_k:
                i = n_k - 1
            dt = tj - onset[i]
            d = duration[i]
            inside = 1.0 if (ok and session[i] == s and dt >= 0 and dt < d) else 0.0
            x = d - dt
            x = (dt if dt < x else x) / ramp  # np.minimum, then np.clip's max then min
            x = x if x > 0.0 else 0.0
            x = x if x < 1.0 else 1.0
            lev[r, j] = x * inside
            val[r, j] = value[i] * inside


@numba.njit(cache=True, nogil=True)
def stage_weights(stages, t, epoch_s, b, w):  # pragma: no cover - compiled
    """Stage mixture at times ``t``: 15-s cross-fades at epoch boundaries, arousal level ``b`` pulling towards W.

    Parameters
    ----------
    stages : ndarray of int64, shape (S, E)
        Stage (0..4) of each epoch of the sessions asked for.
    t : ndarray of float64, shape (T,)
        Times in s.
    epoch_s : float
        Epoch length in s.
    b : ndarray of float64, shape (S, T)
        Arousal level in [0, 1].
    w : ndarray of float64, shape (S, T, 5)
        Receives the mixture (the arithmetic of ``SyntheticFleet._weights``' NumPy version).
    """
    n_e = stages.shape[1]
    for j in range(t.size):
        p = t[j] / epoch_s - 0.5
        fl = math.floor(p)
        i0 = int(min(max(fl, 0.0), n_e - 1))
        i1 = int(min(max(fl + 1.0, 0.0), n_e - 1))
        a = (p - fl - 0.5) / 0.5 + 0.5
        a = a if a > 0.0 else 0.0
        a = a if a < 1.0 else 1.0
        for r in range(stages.shape[0]):
            s0, s1 = stages[r, i0], stages[r, i1]
            br = 0.85 * b[r, j]
            keep = 1.0 - br
            for k in range(5):
                x = (1.0 if s0 == k else 0.0) * (1.0 - a) + (1.0 if s1 == k else 0.0) * a
                w[r, j, k] = x * keep + br * (1.0 if k == 0 else 0.0)
