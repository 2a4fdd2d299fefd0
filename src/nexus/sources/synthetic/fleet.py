"""Many synthetic sleepers streamed at once: the next chunk for every session in one vectorised step.

:class:`SyntheticFleet` draws each session's plan (hypnogram, events, arousals, distress) up front
and renders signals chunk by chunk with carried state (overlap-add tails, heart and breathing
phases), so memory does not grow with the night. The leading axis of every array is the session.
Sounds played to a sleeper (:meth:`SyntheticFleet.play`) change what comes next: the closed loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np
import numpy.typing as npt
import scipy.fft
import scipy.signal

from nexus.core.checks import check_number, check_option
from nexus.core.errors import InvalidInputError
from nexus.core.stages import EPOCH_S, Stage
from nexus.sources.synthetic import response
from nexus.sources.synthetic.faults import Fault, apply_faults
from nexus.sources.synthetic.intervals import IntervalTable, concat_ranges
from nexus.sources.synthetic.profile import SleeperProfile, get_profile
from nexus.sources.synthetic.schedule import NightPlan, plan_night, swa_decay
from nexus.sources.synthetic.signals import (
    CHANNELS,
    EVENT_MIX,
    SPECTRAL_MIX,
    build_kernels,
    ecg_template,
    stage_power,
)
from nexus.sources.synthetic.truth import SleepTruth

_HR_STAGE = np.array([8.0, 3.0, 0.0, -3.0, 4.0])  # bpm relative to N2
_RR_STAGE = np.array([2.0, 1.0, 0.0, -0.5, 2.0])  # breaths/min relative to N2
_OU_RHO = float(np.exp(-1.0 / 45.0))  # slow amplitude wander, 45-s time constant
_FRAME_BLOCK = 262_144  # complex coefficients per synthesis block (keeps the working set in cache)
_EYE = np.eye(5)
_SINE = np.sin(2 * np.pi * np.arange(4097) / 4096)  # breathing: max error 3e-7 of the amplitude
_DRAW_AHEAD_BYTES = 1 << 22  # random numbers drawn ahead for the whole fleet (frames and white noise), ~4 MiB each
_DRAW_AHEAD_MAX = 32  # at most this many frames (or seconds of white noise) ahead
_WHITE_GROUP = 64  # sessions whose white noise is drawn ahead together (the groups' refills fall on different chunks)
_FRAME_GROUP_MIN = 16  # fewest sessions in a group whose frame draws are taken ahead together


def _pick(rng: np.random.Generator, ids: npt.NDArray[np.int64]) -> int:
    """One of ``ids`` drawn from ``rng``: the value and the stream's state of ``int(rng.choice(ids))``, ~7x faster."""
    return int(ids[rng.integers(0, ids.size)])


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """``float(rng.uniform(low, high))`` to the bit (numpy computes ``low + (high - low) * u`` too), ~3x faster."""
    return low + (high - low) * rng.random()


def _kernels() -> ModuleType:
    """The compiled kernels (numba is imported on first use, not when this module is)."""
    from nexus.sources.synthetic import _render

    return _render


class SyntheticFleet:
    """N synthetic sleepers generated together, chunk by chunk.

    Parameters
    ----------
    profiles : SleeperProfile, str or sequence of them
        One profile (or preset name) for all sessions, or one per session.
    seeds : sequence of int
        One seed per session; a session's night depends only on its profile, seed, hours, fs,
        faults and distress (not on the other sessions, nor on chunk sizes).
    hours : float
        Length of the planned night in hours (lights-out to lights-on). Chunks past the end
        continue in the last epoch's stage.
    fs : float
        Sampling rate in Hz (≥ 100).
    channels : sequence of str
        Channels to produce, a subset of :data:`~nexus.sources.synthetic.signals.CHANNELS`.
    faults : sequence of sequence of Fault, optional
        Faults per session.
    distress : int or sequence of int, optional
        Exact number of distress episodes (all sessions or per session); default from the profile.
    dtype : numpy dtype
        Output dtype (float32 by default, float64 for files).

    Examples
    --------
    >>> fleet = SyntheticFleet("typical_adult", seeds=range(3), hours=0.1)
    >>> fleet.next_chunk(256).shape
    (3, 10, 256)
    """

    def __init__(
        self,
        profiles: SleeperProfile | str | Sequence[SleeperProfile | str],
        seeds: Sequence[int],
        *,
        hours: float = 8.0,
        fs: float = 256.0,
        channels: Sequence[str] = CHANNELS,
        faults: Sequence[Sequence[Fault]] | None = None,
        distress: int | Sequence[int | None] | None = None,
        dtype: type[np.floating] = np.float32,
    ) -> None:
        self.fs = check_number("fs", fs, ge=100, le=4096, unit="Hz")
        self.hours = check_number("hours", hours, gt=0, le=24, unit="h")
        seeds = [int(s) for s in seeds]
        if any(s < 0 for s in seeds):
            raise InvalidInputError(f"Invalid seed {min(seeds)}: seeds are integers >= 0.")
        n = len(seeds)
        if n == 0:
            raise InvalidInputError("Invalid value for 'seeds': give at least one seed (one per session).")
        if isinstance(profiles, SleeperProfile | str):
            profiles = [profiles] * n
        if len(profiles) != n:
            raise InvalidInputError(f"Got {len(profiles)} profiles for {n} seeds: give one profile or one per seed.")
        self.profiles = [get_profile(p) for p in profiles]
        self.seeds = seeds
        for c in channels:
            check_option("channel", c, CHANNELS)
        if not channels:
            raise InvalidInputError("Invalid value for 'channels': give at least one channel.")
        self.channels = tuple(channels)
        self.dtype = dtype
        if faults is not None and len(faults) != n:
            raise InvalidInputError(f"Got fault lists for {len(faults)} sessions, expected {n}.")
        self.faults: list[tuple[Fault, ...]] = [tuple(f) for f in faults] if faults else [() for _ in range(n)]
        dis = distress if isinstance(distress, Sequence) else [distress] * n
        if len(dis) != n:
            raise InvalidInputError(f"Got distress counts for {len(dis)} sessions, expected {n}.")
        for d in dis:
            if d is not None:
                check_number("distress", d, ge=0, le=20)

        self.n_sessions = n
        self.n_epochs = int(np.ceil(self.hours * 3600.0 / EPOCH_S))
        self.n_total = round(self.hours * 3600.0 * self.fs)
        self.kernels = build_kernels(self.fs)
        self.hop = round(self.fs)
        self.nfft = 2 * self.hop
        ch_idx = [CHANNELS.index(c) for c in self.channels]
        self._spec_mix = SPECTRAL_MIX[ch_idx]
        self._ev_mix = EVENT_MIX[ch_idx]
        self._spec_used = np.flatnonzero(np.any(self._spec_mix != 0, axis=0))
        self._ev_used = np.flatnonzero(np.any(self._ev_mix != 0, axis=0))
        base, delta = stage_power(self.fs, self.nfft)  # (source, stage, freq)
        src = self._spec_used
        self._base = np.ascontiguousarray(base[src].transpose(1, 0, 2))  # (stage, used source, freq)
        self._delta = np.ascontiguousarray(delta[src].transpose(1, 0, 2))
        self._win32 = np.sin(np.pi * np.arange(self.nfft) / self.nfft).astype(np.float32)  # sqrt of periodic Hann
        # per-channel coefficients of the compiled mixing kernel
        self._mix_used = np.ascontiguousarray(self._spec_mix[:, src])
        eog = {"EOG E1-M2": 0, "EOG E2-M2": 1}  # each electrode's own noise, 2.5 µV RMS
        self._white_gain = np.array([2.5 if c in eog else 0.0 for c in self.channels])
        self._white_col = np.array([eog.get(c, 0) for c in self.channels], dtype=np.int64)
        self._ecg_gain = np.array([float(c == "ECG") for c in self.channels])
        self._resp_gain = np.array([float(c == "Resp") for c in self.channels])

        # per-session random streams: plan, synthesis frames, sample noise, responses
        streams = [np.random.SeedSequence([s, 0x5EE9]).spawn(4) for s in seeds]
        self._rng_frames = [np.random.default_rng(st[1]) for st in streams]
        self._rng_white = [np.random.default_rng(st[2]) for st in streams]
        self._rng_resp = [np.random.default_rng(st[3]) for st in streams]
        self.plans: list[NightPlan] = [
            plan_night(p, self.n_epochs, self.fs, self.kernels, np.random.default_rng(st[0]), d)
            for p, st, d in zip(self.profiles, streams, dis, strict=True)
        ]
        self.stages = np.stack([p.stages for p in self.plans]).astype(np.int64)
        self._span_s = self.hours * 3600.0 + 10_000.0
        self._span = self.n_total + 10 * self.kernels.waves.shape[1] + 10**6
        # events of all sessions in one table sorted by key = session * span + onset (samples);
        # session and onset are recovered from the key, so an event costs 15 bytes
        self._ev_keys = np.concatenate([p.ev_onset + i * self._span for i, p in enumerate(self.plans)])
        self._ev_kernel = np.concatenate([p.ev_kernel for p in self.plans]).astype(np.int16)
        self._ev_amp = np.concatenate([p.ev_amp for p in self.plans])
        for p in self.plans:  # the fleet's table is the one kept up to date (closed loop)
            p.ev_onset, p.ev_kernel, p.ev_amp = p.ev_onset[:0], p.ev_kernel[:0], p.ev_amp[:0]
        self._ev_alive = np.ones(self._ev_keys.size, dtype=bool)
        self._dyn: list[tuple[int, int, int, float]] = []  # closed-loop events: session, onset, kernel, amp
        self._dyn_log: list[tuple[int, int, int, float]] = []  # the same, never pruned (truth)
        self._arousals = IntervalTable(
            np.concatenate([np.full(p.arousal_onset.size, i) for i, p in enumerate(self.plans)]).astype(np.int64),
            np.concatenate([p.arousal_onset for p in self.plans]),
            np.concatenate([p.arousal_duration for p in self.plans]),
            np.zeros(sum(p.arousal_onset.size for p in self.plans)),
            self._span_s,
        )
        self._distress = IntervalTable(
            np.concatenate([np.full(len(p.distress), i) for i, p in enumerate(self.plans)]).astype(np.int64),
            np.concatenate([p.distress.onset for p in self.plans]),
            np.concatenate([p.distress.duration for p in self.plans]),
            np.concatenate([p.distress.hr_surge for p in self.plans]),
            self._span_s,
        )
        self._hr0 = np.array([p.hr0 for p in self.plans])
        self._rr0 = np.array([p.rr0 for p in self.plans])
        self._gains = np.stack([p.gains for p in self.plans])
        self._swa = np.array([p.swa for p in self.plans])
        self._posture = np.stack([p.posture for p in self.plans])
        self._phase_off = np.stack([np.random.default_rng([s, 7]).uniform(0, 2 * np.pi, 3) for s in seeds])
        self._ecg = ecg_template()
        self._ids_so, self._ids_sp = self.kernels.ids("slow_oscillation"), self.kernels.ids("spindle")
        self._ids_burst, self._ids_move = self.kernels.ids("emg_burst"), self.kernels.ids("movement")
        self.responses: list[dict[str, object]] = []
        self.awakenings: list[tuple[int, float, float]] = []  # session, onset s, duration s (closed loop)

        acc = [(r, i) for r, c in enumerate(self.channels) for i, a in enumerate(("Acc X", "Acc Y", "Acc Z")) if c == a]
        self._offset = np.zeros((n, len(self.channels)))
        for r, i in acc:
            self._offset[:, r] = self._posture[:, i]

        # carried state
        n_src = src.size
        self._ou = np.zeros((n, n_src))
        self._next_frame = 0
        self._tail = np.zeros((n, n_src, self.hop), dtype=np.float32)
        # first event of each session not yet over (chunks only move forward)
        self._ev_cursor = np.searchsorted(self._ev_keys, np.arange(n, dtype=np.int64) * self._span)
        # phases (in cycles) at the start of second `_phase_sec` and of the one after it
        self._phase_sec = 0
        self._phase_at = np.zeros((2, 2, n))  # (this second / next second, heart / breath, session)
        self.n_done = 0
        # uniform draws taken ahead of use, several frames (seconds) per session and call: one random call per
        # session every few chunks instead of two per chunk (each session's streams are read in the same order)
        row = n_src * (2 * self._base.shape[-1] + 1) * 4  # bytes of one session's draws for one frame
        self._ahead_frames = max(1, min(_DRAW_AHEAD_MAX, _DRAW_AHEAD_BYTES // max(n * row, 1)))
        # frame draws taken ahead per group of sessions, as many groups as frames ahead (each of at least
        # _FRAME_GROUP_MIN sessions): group g's first draw is (g + 1) / G of the others', so about one group refills
        # on a frame, a G-th of the fleet's draw-ahead, instead of every session on the same chunk
        n_fg = max(1, min(self._ahead_frames, n // _FRAME_GROUP_MIN))
        self._frame_bounds = [(g * n // n_fg, (g + 1) * n // n_fg) for g in range(n_fg)]
        self._frame_first = [max(1, self._ahead_frames * (g + 1) // n_fg) for g in range(n_fg)]
        self._pre_frames = [np.zeros((b - a, 0, n_src, 2 * self._base.shape[-1] + 1), dtype=np.float32)
                            for a, b in self._frame_bounds]
        self._pre_frames_at = [0] * n_fg
        self._ahead_white = max(1, min(_DRAW_AHEAD_MAX * self.hop, _DRAW_AHEAD_BYTES // (n * 8)))
        # white noise drawn ahead per group of sessions: group g's first draw is (g + 1) / G of the others', so the
        # groups run out on different chunks and a chunk refills about one group, not every session at once
        n_groups = -(-n // _WHITE_GROUP)
        self._white_bounds = [(g * n // n_groups, (g + 1) * n // n_groups) for g in range(n_groups)]
        self._white_first = [max(1, self._ahead_white * (g + 1) // n_groups) for g in range(n_groups)]
        self._pre_white = [np.zeros((b - a, 0, 2), dtype=np.float32) for a, b in self._white_bounds]
        self._pre_white_at = [0] * n_groups
        if n_src:  # frame 0: only its second half is kept, as the first tail
            self._synthesise(1, np.empty((n, n_src, self.hop), dtype=np.float32), 0)
        self._buf = np.zeros((n, n_src, 0), dtype=np.float32)
        self._buf_off = 0

    # ------------------------------------------------------------------ state of the sleeper
    @classmethod
    def one(
        cls,
        profile: SleeperProfile | str,
        seed: int,
        *,
        hours: float = 8.0,
        fs: float = 256.0,
        channels: Sequence[str] = CHANNELS,
        faults: Sequence[Fault] = (),
        distress: int | None = None,
    ) -> SyntheticFleet:
        """A fleet of one sleeper in float64 (whole nights, single streaming sources)."""
        return cls(
            profile,
            [seed],
            hours=hours,
            fs=fs,
            channels=channels,
            faults=[tuple(faults)],
            distress=distress,
            dtype=np.float64,
        )

    @property
    def t(self) -> float:
        """Seconds generated so far (the time of the next sample)."""
        return self.n_done / self.fs

    def _weights(
        self, t: npt.NDArray[np.float64], sessions: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.float64]:
        """Stage mixture (S, M, 5) at times ``t`` with 15-s cross-fades at epoch boundaries, arousals towards W."""
        sess = np.arange(self.n_sessions) if sessions is None else sessions
        b, _ = self._arousals.level(t, sess)
        w = np.empty((b.shape[0], b.shape[1], 5))
        st = self.stages if sessions is None else self.stages[sess]
        _kernels().stage_weights(st, np.ascontiguousarray(t, dtype=np.float64), EPOCH_S, b, w)
        return w

    def _rates(
        self, ts: npt.NDArray[np.float64], sessions: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Heart rate (bpm, before respiratory sinus arrhythmia), breathing rate (/min), distress and arousal levels."""
        sess = np.arange(self.n_sessions) if sessions is None else sessions
        w = self._weights(ts, sess)
        dlev, surge = self._distress.level(ts, sess, ramp=15.0)
        alev, _ = self._arousals.level(ts, sess, ramp=2.0)
        po = self._phase_off[sess]
        hr = (
            self._hr0[sess, None]
            + w @ _HR_STAGE
            + 12.0 * alev
            + surge * dlev
            + 2.5 * np.sin(2 * np.pi * ts[None, :] / 70.0 + po[:, :1])
            + 1.5 * np.sin(2 * np.pi * ts[None, :] / 23.0 + po[:, 1:2])
        )
        rr = self._rr0[sess, None] + w @ _RR_STAGE + 9.0 * dlev + 3.0 * alev
        rr = rr + 1.5 * w[..., 4] * np.sin(2 * np.pi * ts[None, :] / 17.0 + po[:, 2:3])  # irregular in REM
        return hr, rr, dlev, alev

    # ------------------------------------------------------------------ background synthesis
    def _synthesise(self, m: int, dest: npt.NDArray[np.float32], off: int) -> None:
        """Synthesise ``m`` more frames of every session and overlap-add ``m`` hops into ``dest[:, :, off:]``.

        What varies per frame but is cheap (stage mixture, slow-wave factor, distress) is computed
        for all sessions at once; the per-sample work runs in blocks of sessions and frames small
        enough to stay in cache. A frame's uniform draws come from the draws taken ahead of its session's
        group (refilled first when ``m`` is short enough), the rest drawn now, one call per session and block.
        """
        if m <= self._ahead_frames:
            self._draw_frames_ahead(m)
        self._synthesise_part(m, dest, off)
        for g, pre in enumerate(self._pre_frames):
            at = self._pre_frames_at[g] + min(m, pre.shape[1] - self._pre_frames_at[g])
            self._pre_frames_at[g] = at

    def _draw_frames_ahead(self, m: int) -> None:
        """Refill the groups whose draws taken ahead hold fewer than ``m`` frames (one call per session).

        A group draws ``_ahead_frames`` frames (its share of them on the first frame): each session's stream is
        read in the same order whatever the groups, so the frames are those of drawing every session at once.
        """
        for g, (a, b) in enumerate(self._frame_bounds):
            pre, at = self._pre_frames[g], self._pre_frames_at[g]
            left = pre.shape[1] - at
            if left >= m:
                continue
            more = max(self._frame_first[g] if self._next_frame == 0 else self._ahead_frames, m - left)
            if left == 0 and pre.shape[1] == more:
                new = pre  # reused in place: all of it was read
            else:
                new = np.empty((b - a, left + more, *pre.shape[2:]), dtype=np.float32)
                new[:, :left] = pre[:, at:]
            for s in range(a, b):
                self._rng_frames[s].random((more, *new.shape[2:]), dtype=np.float32, out=new[s - a, left:])
            self._pre_frames[g], self._pre_frames_at[g] = new, 0

    def _frame_draws(self, a: int, b: int, j: int, k: int) -> npt.NDArray[np.float32]:
        """Uniform draws of frames ``j .. j + k - 1`` of this call for sessions ``a .. b - 1``, a new C-order array.

        Taken from the groups' draws ahead where they reach, else drawn now (each session's frames are asked
        for in order, once, so its stream is read in order).
        """
        pre0 = self._pre_frames[0]
        out = np.empty((b - a, k, *pre0.shape[2:]), dtype=np.float32)
        for g, (ga, gb) in enumerate(self._frame_bounds):
            lo, hi = max(a, ga), min(b, gb)
            if lo >= hi:
                continue
            pre, at = self._pre_frames[g], self._pre_frames_at[g]
            kept = min(max(pre.shape[1] - at - j, 0), k)
            if kept:
                out[lo - a : hi - a, :kept] = pre[lo - ga : hi - ga, at + j : at + j + kept]
            if kept < k:
                for s in range(lo, hi):
                    self._rng_frames[s].random((k - kept, *out.shape[2:]), dtype=np.float32, out=out[s - a, kept:])
        return out

    def _synthesise_part(self, m: int, dest: npt.NDArray[np.float32], off: int) -> None:
        """The frames of :meth:`_synthesise`, in cache-sized blocks of sessions and frames."""
        S = self.n_sessions
        t = (self._next_frame + np.arange(m)) * self.hop / self.fs
        w = self._weights(t)
        swa = self._swa[:, None] * swa_decay(t)[None, :]
        emg = None
        if 2 in self._spec_used:  # distress raises chin EMG (power × (1 + 6 × level))
            dlev, _ = self._distress.level(t, S, ramp=5.0)
            emg = np.sqrt(1.0 + 6.0 * dlev)
        per_frame = self._spec_used.size * (self.nfft // 2 + 1)  # complex coefficients per session and frame
        if S * m * per_frame <= _FRAME_BLOCK:
            group, block = S, m
        elif m * per_frame <= _FRAME_BLOCK:
            group, block = _FRAME_BLOCK // (m * per_frame), m
        else:
            group, block = 1, max(1, _FRAME_BLOCK // per_frame)
        for a in range(0, S, group):
            b = min(a + group, S)
            for j in range(0, m, block):
                k = min(block, m - j)
                sl = np.s_[a:b, j : j + k]
                self._frames(a, b, w[sl], swa[sl], None if emg is None else emg[sl], dest, off + j * self.hop,
                             self._frame_draws(a, b, j, k))
        self._next_frame += m

    def _frames(
        self,
        a: int,
        b: int,
        w: npt.NDArray[np.float64],
        swa: npt.NDArray[np.float64],
        emg: npt.NDArray[np.float64] | None,
        dest: npt.NDArray[np.float32],
        off: int,
        draws: npt.NDArray[np.float32],
    ) -> None:
        """Frames of sessions ``a..b-1`` (stage mixture ``w``, slow-wave factor ``swa``, EMG factor ``emg``).

        ``draws`` (b - a, frames, sources, 2 F + 1): their uniform draws, C order, turned into spectra in place.
        """
        nfft = self.nfft
        src = self._spec_used
        n_f = self._base.shape[-1]
        e = (draws[..., -1].transpose(0, 2, 1) - 0.5) * np.sqrt(12.0)  # (S, src, m), unit variance
        ou, zf = scipy.signal.lfilter([np.sqrt(1 - _OU_RHO**2)], [1.0, -_OU_RHO], e, axis=-1, zi=self._ou[a:b, :, None])
        self._ou[a:b] = zf[..., 0]
        scale = (nfft / 2.0) * self._gains[a:b, None, src] * np.exp(0.2 * ou.transpose(0, 2, 1))  # (S, m, src)
        if emg is not None:
            scale[:, :, int(np.flatnonzero(src == 2)[0])] *= emg
        kern = _kernels()
        kern.shape_spectra(draws, np.ascontiguousarray(w), np.ascontiguousarray(swa), self._base, self._delta, scale)
        spec = draws[..., : 2 * n_f].view(np.complex64)  # interleaved pairs as complex numbers
        frames = scipy.fft.irfft(spec, n=nfft, axis=-1, workers=1)
        kern.overlap_add(frames, self._win32, self._tail[a:b], dest[a:b], off)

    def _background(self, n: int) -> tuple[npt.NDArray[np.float32], int]:
        """The next ``n`` samples of the spectral sources in use: ``buf[:, :, off : off + n]``, float32.

        ``buf`` (S, used sources, ≥ off + n) is C-contiguous (the compiled kernels read it fastest so).
        """
        left = self._buf.shape[2] - self._buf_off
        if n > left:
            frames = -(-(n - left) // self.hop)
            buf = np.empty((self.n_sessions, self._spec_used.size, left + frames * self.hop), dtype=np.float32)
            buf[:, :, :left] = self._buf[:, :, self._buf_off :]
            self._synthesise(frames, buf, left)
            self._buf, self._buf_off = buf, 0
        off = self._buf_off
        self._buf_off += n
        return self._buf, off

    def _white(self, n: int) -> npt.NDArray[np.float32]:
        """The next ``n`` uniform pairs of every session's sample-noise stream, (S, n, 2) float32, C order.

        Drawn ahead, ``_ahead_white`` samples (or ``n`` when more) per session and call, a group of sessions at a
        time, the groups on different chunks: the values are those of one call per chunk, as each session's
        stream is read in the same order (in pairs of 32-bit halves, whatever the amounts drawn).
        """
        out = np.empty((self.n_sessions, n, 2), dtype=np.float32)
        for g, (a, b) in enumerate(self._white_bounds):
            pre, at = self._pre_white[g], self._pre_white_at[g]
            left = pre.shape[1] - at
            if n > left:
                more = max(self._white_first[g] if self.n_done == 0 else self._ahead_white, n - left)
                new = np.empty((b - a, left + more, 2), dtype=np.float32)
                new[:, :left] = pre[:, at:]
                for s in range(a, b):
                    self._rng_white[s].random((more, 2), dtype=np.float32, out=new[s - a, left:])
                pre, at = new, 0
                self._pre_white[g] = pre
            self._pre_white_at[g] = at + n
            out[a:b] = pre[:, at : at + n]
            if at + n == pre.shape[1] and pre.shape[1] > self._ahead_white:  # a long chunk's: not kept
                self._pre_white[g], self._pre_white_at[g] = pre[:, :0].copy(), 0
        return out

    # ------------------------------------------------------------------ transient events
    def _add_events(self, out: npt.NDArray[np.floating], n0: int) -> None:
        """Add the scheduled and closed-loop events that touch ``out`` (samples ``n0`` on) into it."""
        n = out.shape[2]
        kmax = self.kernels.waves.shape[1]
        kern = _kernels()
        idx = kern.due_events(self._ev_keys, self._ev_alive, self._ev_cursor, self._span, n0, n, kmax)
        sess = self._ev_keys[idx] // self._span
        onset = self._ev_keys[idx] - sess * self._span
        kid, amp = self._ev_kernel[idx].astype(np.int64), self._ev_amp[idx]
        if self._dyn:
            self._dyn = [x for x in self._dyn if x[1] + kmax > n0]
        if self._dyn:
            d = np.array(self._dyn, dtype=np.float64)
            sess = np.concatenate([sess, d[:, 0].astype(np.int64)])
            onset = np.concatenate([onset, d[:, 1].astype(np.int64)])
            kid = np.concatenate([kid, d[:, 2].astype(np.int64)])
            amp = np.concatenate([amp, d[:, 3].astype(np.float32)])
        if onset.size:
            k = self.kernels
            kern.add_events(out, sess, onset, kid, amp, k.waves, k.lengths, k.source, self._ev_mix, n0)

    # ------------------------------------------------------------------ heart, breathing, body
    def _physio(self, n0: int, n: int) -> tuple[npt.NDArray[np.float64], int]:
        """Heart and breathing phases and breathing depth per second over samples ``[n0, n0 + n)``.

        Returns ``phys`` (5, S, seconds): heart phase at the start of each second and its increment
        over the second (cycles), the same for breathing, and breathing depth; and the first second.
        """
        hop = self.hop
        sec0, sec1 = n0 // hop, (n0 + n - 1) // hop
        ts = (np.arange(sec0, sec1 + 1) + 0.5) * hop / self.fs
        hr, rr, dlev, alev = self._rates(ts)
        # phase at the start of every second as a left fold over seconds (np.cumsum), continued
        # from the carried value: the same additions in the same order whatever the chunking
        m = ts.size
        start = self._phase_at[0] if sec0 == self._phase_sec else self._phase_at[1]
        step = hop / self.fs / 60.0  # minutes per second-long step
        rr_rate = rr * step
        rr_starts = np.cumsum(np.concatenate([start[1][:, None], rr_rate[:, :-1]], axis=1), axis=1)
        hr = hr + 2.0 * np.sin(2 * np.pi * (rr_starts + 0.5 * rr_rate))  # respiratory sinus arrhythmia
        hr_rate = hr * step
        hr_starts = np.cumsum(np.concatenate([start[0][:, None], hr_rate[:, :-1]], axis=1), axis=1)
        self._phase_sec = sec1
        last = np.stack([hr_starts[:, m - 1], rr_starts[:, m - 1]])
        self._phase_at = np.stack([last, last + np.stack([hr_rate[:, m - 1], rr_rate[:, m - 1]])])
        depth = 1.0 + 0.5 * dlev + 0.4 * alev
        return np.stack([hr_starts, hr_rate, rr_starts, rr_rate, depth]), sec0

    # ------------------------------------------------------------------ public API
    def next_chunk(self, n_samples: int, *, out: npt.NDArray[np.floating] | None = None) -> npt.NDArray[np.floating]:
        """Generate the next ``n_samples`` samples of every session.

        Parameters
        ----------
        n_samples : int
            Samples per session.
        out : ndarray, optional
            Where to write them, shape (n_sessions, n_channels, n_samples) and dtype ``self.dtype``
            (e.g. a slice of a whole-night array: saves a copy). A new array by default.

        Returns
        -------
        ndarray, shape (n_sessions, n_channels, n_samples)
            In µV (Resp in arbitrary units, Acc in milli-g), dtype ``self.dtype``. Samples lost to a
            ``dropped_samples`` fault read 0 on every channel.
        """
        n = int(n_samples)
        if n < 0:
            raise InvalidInputError(f"Invalid value for 'n_samples': expected >= 0, got {n}.")
        S, n0 = self.n_sessions, self.n_done
        shape = (S, len(self.channels), n)
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        elif out.shape != shape or out.dtype != self.dtype:
            raise InvalidInputError(f"Invalid 'out': expected shape {shape} and dtype {np.dtype(self.dtype)}.")
        if n == 0:
            return out
        bg, boff = self._background(n) if self._spec_used.size else (np.zeros((S, 0, n), dtype=np.float32), 0)
        white = self._white(n) if self._white_gain.any() else np.zeros((S, 0, 2), dtype=np.float32)
        phys, sec0 = self._physio(n0, n)
        _kernels().mix_channels(
            out,
            bg,
            boff,
            self._mix_used,
            white,
            self._white_gain,
            self._white_col,
            self._ecg_gain,
            self._resp_gain,
            self._offset,
            phys,
            n0,
            sec0,
            self.hop,
            self._ecg,
            _SINE,
        )
        if self._ev_used.size:
            self._add_events(out, n0)
        for s, faults in enumerate(self.faults):
            if faults:
                apply_faults(out[s], faults, self.channels, n0, self.fs)
        self.n_done += n
        return out

    def stages_at(self, t: float) -> npt.NDArray[np.int64]:
        """True stage of every session at time ``t`` (seconds), shape (n_sessions,)."""
        e = int(np.clip(t // EPOCH_S, 0, self.n_epochs - 1))
        return self.stages[:, e].copy()

    def arousal_active(self, t0: float, t1: float) -> npt.NDArray[np.bool_]:
        """Whether a true arousal covers any moment of ``[t0, t1)``, per session (checked every 0.5 s)."""
        return self._active(self._arousals, t0, t1)

    def distress_active(self, t0: float, t1: float) -> npt.NDArray[np.bool_]:
        """Whether a true distress episode covers any moment of ``[t0, t1)``, per session."""
        return self._active(self._distress, t0, t1)

    def _active(self, iv: IntervalTable, t0: float, t1: float) -> npt.NDArray[np.bool_]:
        times = np.arange(t0, t1, 0.5)
        if times.size == 0:
            return np.zeros(self.n_sessions, dtype=bool)
        lev, _ = iv.level(times, self.n_sessions)
        return np.asarray(lev.max(axis=1) > 0)

    def stage_at(self, session: int, t: float) -> Stage:
        """True stage of ``session`` at time ``t`` (seconds)."""
        e = int(np.clip(t // EPOCH_S, 0, self.n_epochs - 1))
        return Stage(int(self.stages[session, e]))

    def check_sound(self, session: int, kind: str, level_db: float) -> None:
        """Raise :class:`InvalidInputError` unless :meth:`play` takes these: a session, a sound kind, 0–140 dB SPL."""
        if not 0 <= session < self.n_sessions:
            raise InvalidInputError(f"Invalid session index {session}: expected 0..{self.n_sessions - 1}.")
        if kind not in response.SOUND_KINDS:
            check_option("sound kind", kind, response.SOUND_KINDS)
        if not (isinstance(level_db, float | int) and 0.0 <= level_db <= 140.0):
            check_number("level_db", level_db, ge=0, le=140, unit="dB SPL")

    def play(self, session: int, t: float, kind: str, level_db: float) -> str:
        """A sound reaches sleeper ``session`` at time ``t``: decide and schedule the response.

        Parameters
        ----------
        session : int
            Index of the session.
        t : float
            Time in seconds when the sound reaches the ear. The sleeper's stage and slow-wave phase are
            judged at ``t``; the response starts at ``t``, or at the first sample not generated yet when
            ``t`` lies in the past (a fast-forward loop decides on blocks already generated).
        kind : str
            ``"click"`` (pink-noise burst, CLAS), ``"sound"`` or ``"prompt"``.
        level_db : float
            Level at the ear in dB SPL.

        Returns
        -------
        str
            The outcome, also recorded in the truth: ``"enhanced"`` (on-target click, slow
            oscillations enlarged), ``"none"``, ``"arousal"`` or ``"awakening"``.

        See :meth:`play_many` for many sounds at once (the same outcomes, in one call).
        """
        self.check_sound(session, kind, level_db)
        heard = float(t)
        t = max(heard, self.t)
        rng = self._rng_resp[session]
        stage = self.stage_at(session, heard)
        prof = self.profiles[session]
        on_target = kind == "click" and stage in (Stage.N2, Stage.N3) and self._on_up_state(session, heard)
        outcome = "none"
        if rng.random() < response.wake_probability(stage, level_db, prof.sound_sensitivity, kind):
            outcome = "awakening"
            self._wake(session, t, rng)
        elif rng.random() < response.arousal_probability(stage, level_db, prof.sound_sensitivity, on_target, kind):
            outcome = "arousal" if self._arouse(session, t + 0.3, _uniform(rng, 3.0, 12.0), rng) else "none"
        elif on_target:
            outcome = "enhanced"
            self._enhance(session, t, rng)
        self._respond(session, t, kind, level_db, stage, on_target, outcome)
        return outcome

    def play_many(
        self,
        sessions: Sequence[int] | npt.NDArray[np.integer],
        t: Sequence[float] | npt.NDArray[np.floating],
        kinds: Sequence[str],
        levels_db: Sequence[float] | npt.NDArray[np.floating],
    ) -> list[str]:
        """Many sounds at once (one tick's commands): the outcomes of :meth:`play` called for each in turn.

        The night is the one that those calls give, to the last sample: each session's responses draw from
        its own random stream in the same order, and the truth's lists keep the sounds' order. What does
        not need a session's stream is done for all sessions at once: stages, the sleep events that an
        awakening removes, the new arousals (one copy of the arousal table). A session that hears more than
        one sound in the call takes them through :meth:`play`, in turn.

        Parameters
        ----------
        sessions, t, kinds, levels_db : sequences of equal length
            As :meth:`play`'s arguments (times in s, levels in dB SPL).

        Returns
        -------
        list of str
            One outcome per sound, as :meth:`play` returns.
        """
        sess = np.asarray(sessions, dtype=np.int64).reshape(-1)
        heard = np.asarray(t, dtype=np.float64).reshape(-1)
        level = np.asarray(levels_db, dtype=np.float64).reshape(-1)
        kinds = list(kinds)
        m = sess.size
        if not heard.size == level.size == len(kinds) == m:
            raise InvalidInputError(
                f"Got {m} sessions, {heard.size} times, {len(kinds)} kinds and {level.size} levels: give one of "
                "each per sound."
            )
        for s, kd, lv in zip(sess.tolist(), kinds, level.tolist(), strict=True):
            self.check_sound(s, kd, lv)
        if m == 0:
            return []
        now = self.t
        at = np.maximum(heard, now)
        epoch = np.clip(heard // EPOCH_S, 0, self.n_epochs - 1).astype(np.int64)
        stage = self.stages[sess, epoch]
        _, inverse, count = np.unique(sess, return_inverse=True, return_counts=True)
        alone = (count[inverse] == 1).tolist()
        # 1. each sound's draws up to its arousal (the sessions' streams, in turn)
        outcome = ["none"] * m
        woken = np.zeros(m, dtype=bool)
        wake_k = np.zeros(m, dtype=np.int64)
        aroused = np.zeros(m, dtype=bool)  # an arousal to add: from an awakening or a sound
        a_onset = np.zeros(m)
        a_dur = np.zeros(m)
        on_target = [False] * m
        stages = {int(x): x for x in Stage}
        sl, tl, hl, ll = sess.tolist(), at.tolist(), heard.tolist(), level.tolist()
        for i in range(m):
            if not alone[i]:
                continue
            s, kind, st = sl[i], kinds[i], stages[int(stage[i])]
            rng = self._rng_resp[s]
            sens = self.profiles[s].sound_sensitivity
            on = kind == "click" and st in (Stage.N2, Stage.N3) and self._on_up_state(s, hl[i])
            on_target[i] = on
            if rng.random() < response.wake_probability(st, ll[i], sens, kind):
                outcome[i] = "awakening"
                k = int(rng.integers(1, 4))
                e = int(tl[i] // EPOCH_S) + 1
                if e < self.n_epochs:
                    woken[i], wake_k[i] = True, k
                    aroused[i], a_onset[i], a_dur[i] = True, tl[i] + 0.3, float(e * EPOCH_S - tl[i])
            elif rng.random() < response.arousal_probability(st, ll[i], sens, on, kind):
                aroused[i], a_onset[i], a_dur[i] = True, tl[i] + 0.3, _uniform(rng, 3.0, 12.0)
            elif on:
                outcome[i] = "enhanced"
        # 2. what needs no draw, for all sessions at once: stages and sleep events of the awakenings, arousals
        if woken.any():
            self._wake_stages(sess[woken], at[woken], wake_k[woken])
        added = np.zeros(m, dtype=bool)
        if aroused.any():
            added[aroused] = self._arousals.add_many(sess[aroused], a_onset[aroused], a_dur[aroused],
                                                     np.zeros(int(aroused.sum())))
        # 3. the draws after the arousal and the truth's records, sound by sound in the given order
        for i in range(m):
            s = sl[i]
            if not alone[i]:
                outcome[i] = self.play(s, hl[i], kinds[i], ll[i])
                continue
            rng = self._rng_resp[s]
            if outcome[i] == "awakening":
                if woken[i]:
                    if added[i]:
                        self._arousal_events(s, float(a_onset[i]), rng)
                    self._wake_events(s, int(tl[i] // EPOCH_S) + 1, int(wake_k[i]), rng)
            elif aroused[i]:
                if added[i]:
                    outcome[i] = "arousal"
                    self._arousal_events(s, float(a_onset[i]), rng)
            elif outcome[i] == "enhanced":
                self._enhance(s, tl[i], rng)
            self._respond(s, tl[i], kinds[i], ll[i], stages[int(stage[i])], on_target[i], outcome[i])
        return outcome

    def _respond(self, session: int, t: float, kind: str, level_db: float, stage: Stage, on_target: bool,
                 outcome: str) -> None:
        """Record a sound's response in the truth (and the slow oscillation an on-target click evoked)."""
        self.responses.append(
            {
                "session": session,
                "onset": t,
                "kind": kind,
                "level_db": float(level_db),
                "stage": stage.label,
                "on_target": on_target,
                "outcome": outcome,
            }
        )
        if outcome == "enhanced":
            self.responses.append(
                {
                    "session": session,
                    "onset": t + 0.35,
                    "kind": "evoked_so",
                    "level_db": 0.0,
                    "stage": stage.label,
                    "on_target": True,
                    "outcome": "evoked",
                }
            )

    def _so_window(self, session: int, t: float, before: float, after: float) -> npt.NDArray[np.int64]:
        key = session * self._span
        lo = np.searchsorted(self._ev_keys, key + round((t - before) * self.fs))
        hi = np.searchsorted(self._ev_keys, key + round((t + after) * self.fs))
        idx = np.arange(lo, hi)
        return idx[np.isin(self._ev_kernel[idx], self._ids_so) & self._ev_alive[idx]]

    def _on_up_state(self, session: int, t: float) -> bool:
        """Whether ``t`` falls on the up-state (positive half-wave) of a scheduled slow oscillation."""
        for i in self._so_window(session, t, 1.5, 0.0):
            k = int(self._ev_kernel[i])
            wave = self.kernels.waves[k, : self.kernels.lengths[k]]
            pos = round(t * self.fs) - int(self._ev_keys[i] - session * self._span)
            if 0 <= pos < wave.size and wave[pos] > 0.1 * wave.max():
                return True
        return False

    def _enhance(self, session: int, t: float, rng: np.random.Generator) -> None:
        nxt = self._so_window(session, t, 0.0, 6.0)[:2]
        self._ev_amp[nxt] *= response.SO_ENHANCEMENT
        amp = max(80.0, float(self._swa[session] * swa_decay(t) * _uniform(rng, 90.0, 150.0)))
        self._schedule(session, t + 0.35, _pick(rng, self._ids_so), amp)
        self._schedule(session, t + 0.9, _pick(rng, self._ids_sp), _uniform(rng, 30, 60))

    def _arouse(self, session: int, t: float, dur: float, rng: np.random.Generator) -> bool:
        if not self._arousals.add(session, t, dur, 0.0):
            return False
        self._arousal_events(session, t, rng)
        return True

    def _arousal_events(self, session: int, t: float, rng: np.random.Generator) -> None:
        """The chin-EMG burst and the movement of an arousal that starts at ``t`` (s)."""
        self._schedule(session, t + 0.2, _pick(rng, self._ids_burst), _uniform(rng, 20, 60))
        self._schedule(session, t, _pick(rng, self._ids_move), _uniform(rng, 0.5, 2.0))

    def _wake(self, session: int, t: float, rng: np.random.Generator) -> None:
        """Wake the sleeper: from the next epoch, 1–3 epochs of W then one of N1."""
        e = int(t // EPOCH_S) + 1
        k = int(rng.integers(1, 4))
        if e >= self.n_epochs:
            return
        self.stages[session, e : e + k] = int(Stage.W)
        if e + k < self.n_epochs and self.stages[session, e + k] in (Stage.N2, Stage.N3, Stage.R):
            self.stages[session, e + k] = int(Stage.N1)
        a, b = round(e * EPOCH_S * self.fs), round(min(e + k + 1, self.n_epochs) * EPOCH_S * self.fs)
        key = session * self._span
        lo, hi = np.searchsorted(self._ev_keys, [key + a, key + b])
        self._ev_alive[lo:hi] = False  # sleep events of the replaced epochs vanish
        self._arouse(session, t + 0.3, float(e * EPOCH_S - t), rng)
        self._wake_events(session, e, k, rng)

    def _wake_stages(
        self, sessions: npt.NDArray[np.int64], t: npt.NDArray[np.float64], k: npt.NDArray[np.int64]
    ) -> None:
        """:meth:`_wake`'s epochs for many awakenings at ``t`` (s); sessions are distinct.

        From the next epoch, ``k`` epochs of W, then N1 if asleep; the sleep events of those epochs vanish.
        """
        e = (t // EPOCH_S).astype(np.int64) + 1
        stop = np.minimum(e + k, self.n_epochs)
        self.stages[np.repeat(sessions, stop - e), concat_ranges(e, stop)] = int(Stage.W)
        nxt = e + k < self.n_epochs
        s1, e1 = sessions[nxt], (e + k)[nxt]
        st = self.stages[s1, e1]
        sleep = (st == int(Stage.N2)) | (st == int(Stage.N3)) | (st == int(Stage.R))
        self.stages[s1[sleep], e1[sleep]] = int(Stage.N1)
        key = sessions * self._span
        a = np.round(e * EPOCH_S * self.fs).astype(np.int64)
        b = np.round(np.minimum(e + k + 1, self.n_epochs) * EPOCH_S * self.fs).astype(np.int64)
        lo, hi = np.searchsorted(self._ev_keys, key + a), np.searchsorted(self._ev_keys, key + b)
        self._ev_alive[concat_ranges(lo, hi)] = False

    def _wake_events(self, session: int, e: int, k: int, rng: np.random.Generator) -> None:
        """The chin-EMG bursts of ``k`` epochs of wake from epoch ``e``, and the awakening in the truth."""
        for j in range(k * 3):
            on = e * EPOCH_S + 10.0 * j + _uniform(rng, 0, 8)
            self._schedule(session, on, _pick(rng, self._ids_burst), _uniform(rng, 20, 60))
        self.awakenings.append((session, float(e * EPOCH_S), float(k * EPOCH_S)))

    def truth(self, session: int, *, upto: float | None = None) -> SleepTruth:
        """Ground truth of ``session`` from the start to ``upto`` seconds (default: what was generated)."""
        if not 0 <= session < self.n_sessions:
            raise InvalidInputError(f"Invalid session index {session}: expected 0..{self.n_sessions - 1}.")
        t_end = self.t if upto is None else float(upto)
        n_ep = min(self.n_epochs, int(np.ceil(t_end / EPOCH_S - 1e-9)))
        key = session * self._span
        lo, hi = np.searchsorted(self._ev_keys, [key, key + round(t_end * self.fs)])
        sel = np.arange(lo, hi)
        sel = sel[self._ev_alive[sel]]
        onset = (self._ev_keys[sel] - key) / self.fs
        kid = self._ev_kernel[sel].astype(np.int64)
        amp = self._ev_amp[sel].astype(float)
        dyn = [r for r in self._dyn_log if r[0] == session and r[1] / self.fs < t_end]
        if dyn:
            d = np.array(dyn, dtype=float)
            onset = np.concatenate([onset, d[:, 1] / self.fs])
            kid = np.concatenate([kid, d[:, 2].astype(np.int64)])
            amp = np.concatenate([amp, d[:, 3]])
        ts = np.arange(n_ep * round(EPOCH_S)) + 0.5  # 1-s grid
        hr, rr, _, _ = self._rates(ts, np.array([session]))
        ar = self._arousals.session == session
        dis = self._distress.session == session
        plan = self.plans[session]
        return SleepTruth.build(
            stages=self.stages[session, :n_ep].astype(np.int8),
            event_onset=onset,
            event_kernel=kid,
            event_amp=amp,
            kernels=self.kernels,
            arousal_onset=self._arousals.onset[ar],
            arousal_duration=self._arousals.duration[ar],
            distress_onset=self._distress.onset[dis],
            distress_duration=self._distress.duration[dis],
            distress_surge=self._distress.value[dis],
            distress_woke=plan.distress.woke,
            faults=self.faults[session],
            responses=[r for r in self.responses if r["session"] == session],
            t_end=t_end,
            fs=self.fs,
            heart_rate=hr[0].reshape(n_ep, -1).mean(axis=1),
            resp_rate=rr[0].reshape(n_ep, -1).mean(axis=1),
        )

    def _schedule(self, session: int, onset_s: float, kernel: int, amp: float) -> None:
        """Add a closed-loop event (rendered when its time comes, kept in the truth)."""
        row = (session, round(onset_s * self.fs), int(kernel), float(amp))
        self._dyn.append(row)
        self._dyn_log.append(row)
