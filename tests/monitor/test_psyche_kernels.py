"""The psyche detectors' compiled beat and breath passes against the NumPy form they replaced."""

from __future__ import annotations

import numpy as np
import pytest

from nexus.monitor.psyche import PsycheParams, PsycheState

FS = 100.0
STATE = ("last", "has_last", "above", "thr", "peak", "last_cross", "last_beat", "beats", "rr_sum", "samples",
         "r_sign", "last_breath", "ring_ibi", "n_breaths")


class NumpyPsyche(PsycheState):
    """PsycheState with the beat and breath rules as NumPy passes (the form before the compiled kernels)."""

    def add_block(self, x: np.ndarray, rows: np.ndarray) -> None:
        n = x.shape[-1]
        if self.ecg >= 0:
            self._np_beats(x[:, self.ecg, :], rows)
        if self.resp >= 0:
            dec = max(int(self.fs // 25), 1)
            self._np_breaths(x[:, self.resp, ::dec], rows, dec)
        self.samples[rows] += n

    def _np_beats(self, e: np.ndarray, rows: np.ndarray) -> None:
        first = np.where(self.has_last[rows], self.last[rows], e[:, 0])
        d = np.abs(np.diff(e, axis=1, prepend=first[:, None]))
        self.last[rows] = e[:, -1]
        self.has_last[rows] = True
        self.peak[rows] = np.maximum(self.peak[rows], d.max(axis=1))
        above = d > self.thr[rows, None]
        prev = np.concatenate([self.above[rows, None], above[:, :-1]], axis=1)
        self.above[rows] = above[:, -1]
        ri, ki = np.nonzero(above & ~prev)
        if ri.size == 0:
            return
        a = self.samples[rows][ri] + ki
        first_in_row = np.ones(ri.size, dtype=bool)
        first_in_row[1:] = ri[1:] != ri[:-1]
        prev_a = np.empty_like(a)
        prev_a[1:] = a[:-1]
        prev_a[first_in_row] = self.last_cross[rows][ri[first_in_row]]
        keep = (a - prev_a) >= round(self.p.refractory_s * self.fs)
        last_in_row = np.ones(ri.size, dtype=bool)
        last_in_row[:-1] = ri[:-1] != ri[1:]
        self.last_cross[rows[ri[last_in_row]]] = a[last_in_row]
        rk, ak = ri[keep], a[keep]
        if rk.size == 0:
            return
        f2 = np.ones(rk.size, dtype=bool)
        f2[1:] = rk[1:] != rk[:-1]
        prev_b = np.empty_like(ak)
        prev_b[1:] = ak[:-1]
        prev_b[f2] = self.last_beat[rows][rk[f2]]
        rr = (ak - prev_b) / self.fs
        ok = (rr >= 0.3) & (rr <= 2.0)
        self.beats[rows] += np.bincount(rk[ok], minlength=rows.size)
        self.rr_sum[rows] += np.bincount(rk[ok], weights=rr[ok], minlength=rows.size)
        l2 = np.ones(rk.size, dtype=bool)
        l2[:-1] = rk[:-1] != rk[1:]
        self.last_beat[rows[rk[l2]]] = ak[l2]

    def _np_breaths(self, r: np.ndarray, rows: np.ndarray, dec: int) -> None:
        base = self.r_base[rows]
        base = np.where(np.isnan(base), r.mean(axis=1), base)
        y = r - base[:, None]
        h = 0.3 * self.r_amp[rows, None]
        s = np.where(y > h, 1, np.where(y < -h, -1, 0)).astype(np.int8)
        n = s.shape[1]
        idx = np.where(s != 0, np.arange(n)[None, :], -1)
        np.maximum.accumulate(idx, axis=1, out=idx)
        filled = np.where(idx >= 0, np.take_along_axis(s, np.maximum(idx, 0), axis=1), self.r_sign[rows, None])
        prev = np.concatenate([self.r_sign[rows, None], filled[:, :-1]], axis=1)
        self.r_sign[rows] = filled[:, -1]
        ri, ki = np.nonzero((prev < 0) & (filled > 0))
        if ri.size == 0:
            return
        at = (self.samples[rows][ri] + ki * dec).astype(float)
        first = np.ones(ri.size, dtype=bool)
        first[1:] = ri[1:] != ri[:-1]
        before = np.empty_like(at)
        before[1:] = at[:-1]
        before[first] = self.last_breath[rows][ri[first]]
        ibi = (at - before) / self.fs
        sl = rows[ri]
        pos = self.n_breaths[sl] % self.p.breath_intervals
        self.ring_ibi[sl, pos] = np.where((ibi >= 1.0) & (ibi <= 20.0), ibi, np.nan)
        self.n_breaths[sl] += 1
        last = np.ones(ri.size, dtype=bool)
        last[:-1] = ri[:-1] != ri[1:]
        self.last_breath[rows[ri[last]]] = at[last]


def _signals(S: int, n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """(S, 3, n): channel 1 an ECG of spikes at irregular intervals (some inside the refractory period, some
    gaps over 2 s) over noise, channel 2 breathing at 6-40/min with noise and pauses (one of 21.5 s, an
    interval just over the longest kept), channel 0 noise."""
    x = np.zeros((S, 3, n))
    x[:, 0] = rng.normal(0, 10, (S, n))
    x[:, 1] = rng.normal(0, 5, (S, n))
    for s in range(S):
        t = 0
        while True:
            t += int(rng.choice([12, 25, 29, 30, 31, 45, 80, 120, 200, 201, 230]))
            if t >= n:
                break
            x[s, 1, t] += rng.uniform(300, 1500) * rng.choice([-1, 1])
        rate = rng.uniform(6, 40, n // 50 + 1).repeat(50)[:n] / 60.0
        x[s, 2] = 200.0 * np.sin(2 * np.pi * np.cumsum(rate) / FS) + rng.normal(0, 30, n)
        gap = rng.integers(0, n)
        x[s, 2, gap : gap + round(rng.choice([5.0, 15.0, 21.5]) * fs)] = rng.normal(0, 5)
    return x


def _state(cls: type[PsycheState], S: int, fs: float = FS) -> PsycheState:
    return cls(S, fs, ecg=1, resp=2, emg=-1, acc=np.zeros(0, dtype=np.int64), params=PsycheParams())


def _close_window(st: PsycheState, rows: np.ndarray, rng: np.random.Generator) -> None:
    """What a window's close does to the state the passes read: a new beat threshold, a breathing baseline."""
    st.thr[rows] = np.where(st.peak[rows] > 0, 0.4 * st.peak[rows], np.inf)
    st.peak[rows] = 0.0
    st.beats[rows] = 0.0
    st.rr_sum[rows] = 0.0
    st.r_base[rows] = rng.normal(0, 20, rows.size)
    st.r_amp[rows] = rng.uniform(20, 150, rows.size)


def _assert_same(a: PsycheState, b: PsycheState) -> None:
    for name in STATE:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize(("seed", "fs", "sizes"), [
    (0, 100.0, (100,)),
    (1, 100.0, (7, 100, 1, 350, 33)),
    (2, 256.0, (25, 256, 1000)),
    (3, 100.0, (3000,)),  # many breaths in one call: they share one ring slot
], ids=["1s-blocks", "ragged", "256Hz", "long-blocks"])
def test_beats_and_breaths_equal_the_numpy_rule(seed, fs, sizes):
    rng = np.random.default_rng(seed)
    S = 7
    a, b = _state(PsycheState, S, fs), _state(NumpyPsyche, S, fs)
    steps = 60
    x = _signals(S, sum(sizes[k % len(sizes)] for k in range(steps)), fs, rng)
    at, beats = 0, 0.0
    for step in range(steps):
        n = sizes[step % len(sizes)]
        rows = np.flatnonzero(rng.random(S) < 0.8) if step % 5 == 3 else np.arange(S)
        if step == 30:  # one slot starts over
            a.reset(np.array([2]))
            b.reset(np.array([2]))
        block = x[rows, :, at : at + n] if rows.size < S else x[:, :, at : at + n]
        a.add_block(block, rows)
        b.add_block(block, rows)
        _assert_same(a, b)
        beats += b.beats.sum()
        if step % 2:
            _close_window(a, rows, np.random.default_rng(step))
            _close_window(b, rows, np.random.default_rng(step))
        at += n
    assert b.n_breaths.sum() > 20 and beats > 20  # the rules did find things
    assert np.isfinite(b.ring_ibi).any()
