"""The batched pipeline step: all running sessions of one layout advance together.

A :class:`Lane` holds the sessions that share channels and sampling rate, stacked on a leading
session axis. Incoming samples go into a per-lane jitter buffer, indexed by the lane's sample
clock; every step takes the samples that are due for *all* sessions at once as one array
``(sessions, channels, samples)`` and hands it to the analyzers:

* a line-noise notch and DC high-pass with carried state (:class:`~nexus.dsp.filters.StatefulFilter`)
  on the electrophysiology channels,
* the live stager (one stage per 30-s epoch per session),
* the event detectors (slow oscillations, spindles, rapid eye movements, heart beats,
  arousals, movement), each a batched stream from :mod:`nexus.events`.

Samples that do not arrive in time are *missing*: they are held at the last value for the
analyzers (so no session's gap stalls the others) and counted; samples that arrive after their
time was processed are *late* and counted (they are still recorded). Python work per session
stays out of this step: everything is an array operation over the session axis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.facility.step import Analyzer, FloatArray, IntArray, StepContext, StepOutput, StepResult


class Lane:
    """Sessions of one layout (channels, sampling rate), processed together.

    Parameters
    ----------
    channels : sequence of str
        Channel names (the same for every session of the lane).
    fs : float
        Sampling rate in Hz.
    capacity : int
        Number of session slots (the leading axis of every block).
    buffer_s : float
        Length of the jitter buffer, in seconds: samples further ahead than this are dropped
        (backpressure) and counted.
    analyzers : sequence of callables, optional
        Factories ``f(lane) -> Analyzer`` run in order on every step (see
        :func:`nexus.facility.analyzers.default_analyzers`).
    deterministic : bool
        Collect background work (live staging) on a fixed schedule instead of as soon as it is
        ready, so that a fast-forward run gives the same stages and events every time. Real-time
        lanes leave it off: there the freshest result wins.
    """

    def __init__(
        self,
        channels: Sequence[str],
        fs: float,
        capacity: int,
        *,
        buffer_s: float = 8.0,
        analyzers: Sequence[Callable[[Lane], Analyzer]] = (),
        deterministic: bool = False,
    ) -> None:
        self.channels = tuple(channels)
        self.deterministic = deterministic
        """Fast-forward: background work is collected on a fixed schedule, so a run repeats exactly."""
        self.fs = check_number("fs", fs, gt=0, unit="Hz")
        self.capacity = int(check_number("capacity", capacity, ge=1))
        self.n_channels = len(self.channels)
        self.size = max(16, int(np.ceil(buffer_s * self.fs)))
        self.ring = np.zeros((self.capacity, self.n_channels, self.size))
        # written once now: NumPy maps a large array lazily (in huge pages), and the first tick's writes to every
        # row faulted the whole ring in (164 MB for a thousand beds: 240 ms, a late first tick for every bed)
        self.ring.fill(0.0)
        self.have = np.zeros((self.capacity, self.size), dtype=bool)
        self.hold = np.zeros((self.capacity, self.n_channels))  # last good value, fills missing samples
        self.active = np.zeros(self.capacity, dtype=bool)
        self.origin = np.zeros(self.capacity, dtype=np.int64)  # lane index of each session's sample 0
        self.high = np.zeros(self.capacity, dtype=np.int64)  # lane index after the last sample received
        self.processed = 0  # lane index up to which every session was processed
        self.counts = {
            k: np.zeros(self.capacity, dtype=np.int64)
            for k in ("received", "missing", "late", "duplicate", "dropped", "bad")
        }
        self.missing_run = np.zeros(self.capacity, dtype=np.int64)  # consecutive missing samples now
        self.in_dropout = np.zeros(self.capacity, dtype=bool)  # set by the supervisor's dropout watch
        self.sessions: list[str | None] = [None] * self.capacity
        """The session id running in each slot (None: free); the lane owns the slot → session mapping."""
        # what the analyzers learnt in earlier steps, handed to them in each step's context
        self._probs = np.full((self.capacity, 5), np.nan)
        self._stage = np.full(self.capacity, -2, dtype=np.int64)
        self.glitch = np.zeros(self.capacity, dtype=bool)
        """Slots with an open technical or system glitch (set by the supervisor's monitor)."""
        self.distress = np.zeros(self.capacity, dtype=bool)
        """Slots with an open psyche glitch (set by the supervisor's monitor)."""
        self.staged = False
        """Whether an analyzer stages sleep (else stage gates are off); analyzers built later may ask."""
        if analyzers:  # every kernel of the loop compiled (or loaded) now, once per layout, never inside a tick
            from nexus.facility.threads import single_blas_thread
            from nexus.facility.warmup import warm_up

            single_blas_thread()  # the loop's small matrix products gain nothing from BLAS threads (see threads.py)

            warm_up(self.fs, self.channels, self.capacity)
        self.analyzers: list[Analyzer] = []
        for f in analyzers:
            a = f(self)
            self.analyzers.append(a)
            self.staged = self.staged or bool(getattr(a, "stages_sleep", False))
        wants = [getattr(a, "reads_raw", ()) for a in self.analyzers]
        self._raw_rows = (list(range(self.n_channels)) if "all" in wants
                          else sorted({int(r) for w in wants for r in w}))

    def analyzer(self, name: str) -> Analyzer | None:
        """The lane's analyzer called ``name`` (None when it has none)."""
        return next((a for a in self.analyzers if a.name == name), None)

    # -- slots -----------------------------------------------------------------------------------
    def free_slots(self) -> npt.NDArray[np.intp]:
        """Indices of unused slots."""
        return np.flatnonzero(~self.active)

    def attach(self, slots: npt.ArrayLike, start_index: int | None = None,
               sessions: Sequence[str] | None = None) -> None:
        """Start sessions in ``slots``; their sample 0 is lane index ``start_index`` (default: now).

        ``sessions`` names the session of each slot (default: ``slot-<k>``).
        """
        idx = np.asarray(slots, dtype=np.intp).ravel()
        if self.active[idx].any():
            raise InvalidInputError(f"Lane slots {idx[self.active[idx]].tolist()} are already in use.")
        if sessions is not None and len(sessions) != idx.size:
            raise InvalidInputError(f"Got {len(sessions)} session ids for {idx.size} slots.")
        for k, slot in enumerate(idx.tolist()):
            self.sessions[slot] = sessions[k] if sessions is not None else f"slot-{slot}"
        start = self.processed if start_index is None else int(start_index)
        self.active[idx] = True
        self.origin[idx] = start
        self.high[idx] = start
        self.have[idx] = False
        self.hold[idx] = 0.0
        self.missing_run[idx] = 0
        self.in_dropout[idx] = False
        self._probs[idx] = np.nan
        self._stage[idx] = -2
        self.glitch[idx] = False
        self.distress[idx] = False
        for c in self.counts.values():
            c[idx] = 0
        for a in self.analyzers:
            a.reset(idx)

    def detach(self, slots: npt.ArrayLike) -> None:
        """Stop sessions in ``slots`` (their slots become free)."""
        idx = np.asarray(slots, dtype=np.intp).ravel()
        self.active[idx] = False
        self.have[idx] = False
        for slot in idx.tolist():
            self.sessions[slot] = None

    def slot_of(self, session: str) -> int:
        """The slot a session runs in."""
        try:
            return self.sessions.index(session)
        except ValueError:
            raise InvalidInputError(f"Session '{session}' does not run in this lane.") from None

    def session_time(self, slots: npt.ArrayLike, lane_t: npt.ArrayLike) -> FloatArray:
        """Convert lane-stream seconds to seconds since each session's start."""
        idx = np.asarray(slots, dtype=np.intp)
        return np.asarray(lane_t, dtype=np.float64) - self.origin[idx] / self.fs

    # -- input -----------------------------------------------------------------------------------
    def put(self, slots: npt.ArrayLike | slice, start: npt.ArrayLike, data: npt.ArrayLike) -> IntArray:
        """Place samples of several sessions into the jitter buffer.

        Parameters
        ----------
        slots : array of int or slice
            Lane slots, one per row of ``data``.
        start : int or array of int
            Index of each row's first sample in its session (samples since the session start).
        data : ndarray, shape (n_rows, n_channels, n_samples)
            Samples; non-finite samples are counted as ``bad`` and treated as missing.

        Returns
        -------
        ndarray of int, shape (n_rows,)
            Samples accepted per row (the rest was late, too far ahead, or bad).
        """
        x = np.asarray(data)
        sl = np.arange(self.capacity)[slots] if isinstance(slots, slice) else np.asarray(slots, dtype=np.intp)
        n = x.shape[-1]
        if x.ndim != 3 or x.shape[0] != sl.size or x.shape[1] != self.n_channels:
            raise InvalidInputError(f"Lane.put needs ({sl.size}, {self.n_channels}, samples), got {x.shape}.")
        ix = _as_index(sl)  # a slice for contiguous slots (a fleet): no gathers and scatters below
        a = self.origin[ix] + np.asarray(start, dtype=np.int64)  # lane index of each row's first sample
        # one sum tells whether every sample is finite (the usual case): no per-sample mask then
        with np.errstate(over="ignore", invalid="ignore"):
            clean = bool(np.isfinite(np.sum(x)))
        ok = None if clean else np.isfinite(x).all(axis=1)  # (rows, samples)
        if ok is not None:
            self.counts["bad"][ix] += (~ok).sum(axis=1)
        # position of every sample on the lane clock, relative to what is still open
        lo = self.processed
        hi = self.processed + self.size
        # (np.minimum/np.maximum: np.clip on integers, without its checks per call)
        first = np.minimum(np.maximum(lo - a, 0), n)  # samples before `lo` are late
        last = np.minimum(np.maximum(hi - a, 0), n)  # samples from `hi` on are too far ahead
        self.counts["late"][ix] += first
        self.counts["dropped"][ix] += n - np.maximum(last, first)
        same = bool(np.all(a == a[0])) if a.size else True
        if same and a.size:
            f0, l0 = int(first[0]), int(last[0])
            if l0 > f0:
                self._write_rows(ix, int(a[0]) + f0, x[:, :, f0:l0], None if ok is None else ok[:, f0:l0])
        else:
            for r in range(sl.size):  # rows at different times (individual sources): one write each
                f0, l0 = int(first[r]), int(last[r])
                if l0 <= f0:
                    continue
                self._write_rows(
                    sl[r : r + 1], int(a[r]) + f0, x[r : r + 1, :, f0:l0], None if ok is None else ok[r : r + 1, f0:l0]
                )
        acc = np.maximum(last - first, 0)
        self.counts["received"][ix] += acc
        self.high[ix] = np.maximum(self.high[ix], a + last)
        return acc

    def _write_rows(
        self, sl: npt.NDArray[np.intp] | slice, lane_index: int, blk: FloatArray, ok: npt.NDArray[np.bool_] | None
    ) -> None:
        """Write samples ``blk`` (rows, channels, m) of slots ``sl`` from lane index ``lane_index`` on.

        ``ok`` (rows, m) marks the finite samples (None: all are); the others are left as they were.
        Contiguous slots and a stretch that does not wrap around the ring are written as slices.
        """
        m = blk.shape[-1]
        rows = _as_index(sl) if isinstance(sl, np.ndarray) else sl
        p0 = lane_index % self.size
        pieces = [(p0, 0, min(m, self.size - p0))]
        if pieces[0][2] < m:  # wraps around the end of the ring
            pieces.append((0, pieces[0][2], m))
        for p, b0, b1 in pieces:
            dst = slice(p, p + b1 - b0)
            if isinstance(rows, slice):
                if ok is None:
                    self.ring[rows, :, dst] = blk[:, :, b0:b1]
                    self.have[rows, dst] = True
                else:
                    okk = ok[:, b0:b1]
                    np.copyto(self.ring[rows, :, dst], blk[:, :, b0:b1], where=okk[:, None, :])
                    self.have[rows, dst] |= okk
            else:
                cur = self.ring[rows, :, dst]  # a copy (fancy index): merge, then write back
                if ok is None:
                    cur[...] = blk[:, :, b0:b1]
                    self.have[rows, dst] = True
                else:
                    okk = ok[:, b0:b1]
                    np.copyto(cur, blk[:, :, b0:b1], where=okk[:, None, :])
                    self.have[rows, dst] |= okk
                self.ring[rows, :, dst] = cur

    # -- the step --------------------------------------------------------------------------------
    def step(self, due_index: int, max_block: int | None = None, arrived_at: float | None = None) -> StepOutput:
        """Process every session up to lane index ``due_index`` (exclusive), in one batch.

        Each analyzer gets a :class:`~nexus.facility.step.StepContext` holding the block and
        what the analyzers before it found; their results are merged in order. ``arrived_at``
        is the ``time.perf_counter()`` at which the samples were taken in (default: now).
        Returns the analyzers' output; does nothing when nothing is due.
        """
        out = StepOutput()
        n = int(due_index) - self.processed
        if n <= 0:
            return out
        n = min(n, self.size, max_block or self.size)
        lo = self.processed
        p0 = lo % self.size
        if p0 + n <= self.size:
            block = self.ring[:, :, p0 : p0 + n].copy()
            mask = self.have[:, p0 : p0 + n].copy()
            self.have[:, p0 : p0 + n] = False
        else:  # the stretch wraps around the ring's end: two slice copies into one C-ordered block
            k = self.size - p0
            block = np.empty((self.capacity, self.n_channels, n))
            block[:, :, :k] = self.ring[:, :, p0:]
            block[:, :, k:] = self.ring[:, :, : n - k]
            mask = np.concatenate([self.have[:, p0:], self.have[:, : n - k]], axis=1)
            self.have[:, p0:] = False
            self.have[:, : n - k] = False
        started = (lo + np.arange(n))[None, :] >= self.origin[:, None]
        expected = started & self.active[:, None]
        missing = expected & ~mask
        n_missing = missing.sum(axis=1)
        self.counts["missing"] += n_missing
        # hold the last good value over missing samples (vectorised forward fill per session)
        if n_missing.any():
            idx = np.where(mask, np.arange(n)[None, :], -1)
            np.maximum.accumulate(idx, axis=1, out=idx)
            filled = np.take_along_axis(block, np.maximum(idx, 0)[:, None, :], axis=2)
            block = np.where((idx >= 0)[:, None, :], filled, self.hold[:, :, None])
        # consecutive missing samples at the end of the block (dropout tracking)
        tail_ok = mask.any(axis=1)
        last_ok = n - 1 - np.argmax(mask[:, ::-1], axis=1)
        self.missing_run = np.where(tail_ok, n - 1 - last_ok, self.missing_run + n) * self.active
        self.hold = block[:, :, -1].copy()
        block[~self.active] = 0.0
        self.processed = lo + n
        out.n_samples = n
        # unfiltered rows for the analyzers that read them: one copy of the whole block when all are read
        raw_block = block.copy() if len(self._raw_rows) == self.n_channels else None
        raw = ({r: raw_block[:, r] for r in self._raw_rows} if raw_block is not None
               else {r: block[:, r].copy() for r in self._raw_rows})
        ctx = StepContext(block, self.active.copy(), self.fs, self.channels, lo, self.deterministic, self.staged,
                          self._probs, self._stage, self.glitch.copy(), self.distress.copy(),
                          arrived_at=time.perf_counter() if arrived_at is None else arrived_at,
                          raw=raw, raw_block=raw_block)
        for a in self.analyzers:
            self._merge(ctx, a.step(ctx), out)
        return out

    def _merge(self, ctx: StepContext, res: object, out: StepOutput) -> None:
        if not isinstance(res, StepResult):
            raise TypeError(f"An analyzer returned {type(res).__name__}, expected StepResult.")
        if res.block is not None:
            ctx.block = res.block
        if res.probs is not None:
            valid = np.all(np.isfinite(res.probs), axis=1)
            self._probs = np.array(res.probs, dtype=np.float64)
            self._stage = np.where(valid, np.argmax(np.where(valid[:, None], res.probs, 0.0), axis=1), -2)
            ctx.probs, ctx.stage = self._probs, self._stage
        if res.stages is not None and len(res.stages):  # a closed epoch's stage wins over the running estimate
            self._stage[res.stages.slots] = res.stages.stages
        ctx.events.extend(e for e in res.events if len(e))
        if res.down_states is not None:
            ctx.down_states = res.down_states
        if res.glitch is not None:
            ctx.glitch = ctx.glitch | res.glitch
        if res.distress is not None:
            ctx.distress = ctx.distress | res.distress
        out.add(res)

    @property
    def stage(self) -> IntArray:
        """Latest stage of each slot (-2 where not staged yet); read-only view for reports."""
        v = self._stage.view()
        v.flags.writeable = False
        return v

    @property
    def probs(self) -> FloatArray:
        """Latest stage probabilities of each slot, shape (capacity, 5); read-only view."""
        v = self._probs.view()
        v.flags.writeable = False
        return v

    def finish(self) -> StepOutput:
        """Collect what analyzers still hold (background work) at the end of a run."""
        out = StepOutput()
        for a in self.analyzers:
            fin = getattr(a, "finish", None)
            if fin is not None:
                out.add(fin())
        return out

    def close(self) -> None:
        """Release what analyzers hold (worker threads); the lane is not used after."""
        for a in self.analyzers:
            close = getattr(a, "close", None)
            if close is not None:
                close()

    def pending(self) -> IntArray:
        """Samples received but not yet processed, per slot."""
        return np.maximum(self.high - self.processed, 0) * self.active


def _as_index(slots: npt.NDArray[np.intp]) -> slice | npt.NDArray[np.intp]:
    """``slots`` as a slice when they are consecutive and ascending (indexing then makes views), else as is."""
    if slots.size == 0:
        return slots
    s0, s1 = int(slots[0]), int(slots[-1])
    if s1 - s0 == slots.size - 1 and (slots.size < 3 or bool(np.all(np.diff(slots) == 1))):
        return slice(s0, s1 + 1)
    return slots


def merge_counts(lanes: Sequence[Lane]) -> dict[str, int]:
    """Totals of the lanes' sample counters (active and finished slots)."""
    tot: dict[str, int] = {}
    for lane in lanes:
        for k, v in lane.counts.items():
            tot[k] = tot.get(k, 0) + int(v.sum())
    return tot
