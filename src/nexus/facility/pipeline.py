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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class StepOutput:
    """What one pipeline step produced for a lane.

    Attributes
    ----------
    n_samples : int
        Samples per session processed in this step.
    events : list
        :class:`~nexus.events.table.EventBatch` objects; ``session`` holds the lane slot and
        ``onset`` seconds since the lane's stream start (see :meth:`Lane.session_time`).
    epochs : list of tuple
        ``(slots, onsets, stages)`` arrays of newly staged epochs (onset in lane-stream seconds).
    """

    n_samples: int = 0
    events: list[Any] = field(default_factory=list)
    epochs: list[tuple[IntArray, FloatArray, IntArray]] = field(default_factory=list)


class Analyzer(Protocol):
    """One batched computation of the step (filters, stager, detector)."""

    name: str

    def step(self, block: FloatArray, active: npt.NDArray[np.bool_], out: StepOutput, lane: Lane) -> FloatArray:
        """Consume (and possibly transform) the block (sessions, channels, samples)."""
        ...

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """Forget the history of some sessions (a new session in the slot, or a stream gap)."""
        ...


def channel_roles(channels: Sequence[str]) -> dict[str, list[int]]:
    """Row indices of channels by role: ``eeg``, ``eog``, ``emg``, ``ecg``, ``acc``, ``ephys``."""
    roles: dict[str, list[int]] = {k: [] for k in ("eeg", "eog", "emg", "ecg", "acc", "ephys")}
    for i, name in enumerate(channels):
        low = name.lower()
        for role in ("eeg", "eog", "emg", "ecg", "acc"):
            if low.startswith(role):
                roles[role].append(i)
        if low.split(" ")[0] in ("eeg", "eog", "emg", "ecg"):
            roles["ephys"].append(i)
    return roles


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
        self.stage_now = np.full(self.capacity, -2, dtype=np.int64)  # latest live stage per slot
        self.has_stager = False  # set by a staging analyzer
        self.epochs_staged = 0
        self.analyzers: list[Analyzer] = [f(self) for f in analyzers]

    # -- slots -----------------------------------------------------------------------------------
    def free_slots(self) -> npt.NDArray[np.intp]:
        """Indices of unused slots."""
        return np.flatnonzero(~self.active)

    def attach(self, slots: npt.ArrayLike, start_index: int | None = None) -> None:
        """Start sessions in ``slots``; their sample 0 is lane index ``start_index`` (default: now)."""
        idx = np.asarray(slots, dtype=np.intp).ravel()
        if self.active[idx].any():
            raise InvalidInputError(f"Lane slots {idx[self.active[idx]].tolist()} are already in use.")
        start = self.processed if start_index is None else int(start_index)
        self.active[idx] = True
        self.origin[idx] = start
        self.high[idx] = start
        self.have[idx] = False
        self.hold[idx] = 0.0
        self.missing_run[idx] = 0
        self.in_dropout[idx] = False
        self.stage_now[idx] = -2
        for c in self.counts.values():
            c[idx] = 0
        for a in self.analyzers:
            a.reset(idx)

    def detach(self, slots: npt.ArrayLike) -> None:
        """Stop sessions in ``slots`` (their slots become free)."""
        idx = np.asarray(slots, dtype=np.intp).ravel()
        self.active[idx] = False
        self.have[idx] = False

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
        first = np.clip(lo - a, 0, n)  # samples before `lo` are late
        last = np.clip(hi - a, 0, n)  # samples from `hi` on are too far ahead
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
    def step(self, due_index: int, max_block: int | None = None) -> StepOutput:
        """Process every session up to lane index ``due_index`` (exclusive), in one batch.

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
        for a in self.analyzers:
            block = a.step(block, self.active, out, self)
        return out

    def finish(self) -> StepOutput:
        """Collect what analyzers still hold (background work) at the end of a run."""
        out = StepOutput()
        for a in self.analyzers:
            fin = getattr(a, "finish", None)
            if fin is not None:
                fin(out, self)
        return out

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
