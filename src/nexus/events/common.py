"""Helpers shared by the detectors: checks, stage masks, segment reductions, windowed streaming.

The windowed streaming engine turns an offline detection core into a batched ``step()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.core.log import logger
from nexus.core.stages import EPOCH_S
from nexus.dsp.moving import runs
from nexus.events.table import EventBatch

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: a detection core: (data (rows, [k,] samples), fs, mask (rows, samples), state) -> events with row in .session
Core = Callable[[FloatArray, float, BoolArray], EventBatch]


def as_2d(data: npt.ArrayLike, what: str = "data") -> FloatArray:
    """Return ``data`` as float64 (rows, samples); reject NaN/inf with a clear message."""
    x = np.asarray(data, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise InvalidInputError(f"Invalid {what}: expected 1-D or 2-D (channels, samples), got {x.ndim}-D.")
    if not np.isfinite(x).all():
        raise InvalidInputError(
            f"Invalid {what}: it contains NaN or infinite values. Interpolate or cut the bad segment first."
        )
    return x


def finite(x: FloatArray, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> FloatArray:
    """``x`` itself when every value is finite (one cheap pass), else ``np.nan_to_num(x, ...)``.

    The live engine hands over finite blocks (missing samples are held), so the common case
    costs one check instead of the four passes and copy of :func:`numpy.nan_to_num` (``isfinite().all()``:
    half the cost of a sum inside ``np.errstate`` on a lane's blocks, and the same answer).
    """
    if np.isfinite(x).all():
        return x
    return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


def check_fs(fs: float, minimum: float) -> float:
    """Check the sampling rate, in Hz, against the minimum a detector needs."""
    return check_number("fs", fs, ge=minimum, unit="Hz")


def stage_mask(
    stages: npt.ArrayLike | None, n_samples: int, fs: float, include: Sequence[int] | None
) -> BoolArray:
    """Per-sample mask of the samples whose stage is in ``include``.

    Parameters
    ----------
    stages : array of int or None
        Stage codes (W=0 … R=4) either one per sample or one per 30-s epoch; None means all
        samples are used.
    n_samples : int
        Number of samples of the data.
    fs : float
        Sampling rate, in Hz.
    include : sequence of int or None
        Stages to keep; None keeps all.
    """
    if stages is None or include is None:
        return np.ones(n_samples, dtype=bool)
    s = np.asarray(stages).astype(np.int64).ravel()
    keep = np.asarray(list(include), dtype=np.int64)
    if s.size != n_samples:  # per epoch: which epochs are kept, then spread over their samples
        return epochs_to_samples(s, n_samples, fs, np.isin(s, keep))
    return np.isin(s, keep)


def epochs_to_samples(stages: npt.NDArray[np.int64], n_samples: int, fs: float,
                      values: npt.NDArray[Any] | None = None) -> npt.NDArray[Any]:
    """One stage per sample from one per 30-s epoch (or ``values``, one per epoch, spread the same way).

    A hypnogram longer than the data (e.g. a whole-night scoring for an excerpt that starts with
    it) is cut, with a log message; one more than one epoch shorter is an error. The last epoch's
    value also covers any samples beyond it.
    """
    n_epochs = int(np.ceil(n_samples / (EPOCH_S * fs)))
    if stages.size < n_epochs - 1 or stages.size == 0:
        raise InvalidInputError(
            f"Invalid hypnogram: {stages.size} epochs of 30 s for {n_samples / fs:.0f} s of data "
            f"({n_epochs} epochs). Give one stage per sample or per 30-s epoch, covering the data."
        )
    if stages.size > n_epochs + 1:
        logger.info("Hypnogram has %d epochs for %d epochs of data; the extra epochs are ignored.",
                    stages.size, n_epochs)
    v = stages if values is None else values
    per = EPOCH_S * fs
    if float(per).is_integer():  # whole samples per epoch: each value repeated (no index per sample)
        rep = np.repeat(v[: n_epochs], int(per))[:n_samples]
        if rep.size == n_samples:
            return rep
        return np.concatenate([rep, np.full(n_samples - rep.size, v[-1], dtype=v.dtype)])
    idx = np.minimum((np.arange(n_samples) / per).astype(np.int64), v.size - 1)
    return v[idx]


def fill_short_gaps(mask: BoolArray, max_gap: int) -> BoolArray:
    """Set to True the interior runs of False shorter than ``max_gap`` samples (merges close events)."""
    if max_gap <= 0:
        return mask
    out = mask.copy()
    n = mask.shape[-1]
    row, start, stop = runs(~mask)
    inner = (start > 0) & (stop < n) & ((stop - start) < max_gap)
    flat = out.reshape(-1, n)
    for r, a, b in zip(row[inner], start[inner], stop[inner], strict=True):  # one per gap, not per sample
        flat[r, a:b] = True
    return out


def segment_reduce(
    values: FloatArray, row: npt.NDArray[np.intp], start: npt.NDArray[np.intp], stop: npt.NDArray[np.intp],
    ufunc: np.ufunc,
) -> FloatArray:
    """Reduce ``values[row, start:stop]`` with ``ufunc`` (np.add, np.maximum, …) for every segment at once."""
    if start.size == 0:
        return np.zeros(0)
    n = values.shape[-1]
    flat = np.concatenate([values.reshape(-1), [0.0]])
    idx = np.empty(2 * start.size, dtype=np.intp)
    idx[0::2] = row * n + start
    idx[1::2] = row * n + stop
    return np.asarray(ufunc.reduceat(flat, idx)[0::2])


def segment_argext(
    values: FloatArray, row: npt.NDArray[np.intp], start: npt.NDArray[np.intp], stop: npt.NDArray[np.intp],
    find_max: bool,
) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Extreme value and its sample index (within the row) of each segment, vectorised."""
    if start.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.intp)
    ext = segment_reduce(values, row, start, stop, np.maximum if find_max else np.minimum)
    lengths = stop - start
    seg = np.repeat(np.arange(start.size), lengths)
    offs = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.repeat(start, lengths) + offs
    hit = values[np.repeat(row, lengths), pos] == ext[seg]
    _, first = np.unique(seg[hit], return_index=True)
    return ext, pos[hit][first]


class WindowedStream:
    """Run an offline detection core over a sliding window of a batched stream.

    The stream is advanced in lockstep for all sessions. Every ``hop_s`` seconds the core runs on
    the last ``left_s + hop_s + right_s`` seconds of a session; events whose onset falls in the
    newly confirmed stretch (older than ``right_s``) are returned once (with ``confirm_by_end``,
    events whose end falls there: for long events, with ``left_s`` longer than the longest event).
    With margins longer than the core's filter transients and event durations, the events equal
    those of the offline detector.

    Sessions are spread over ``n_groups`` evaluation phases (session ``s`` in group
    ``s % n_groups``), so the work of one evaluation is split over many steps instead of landing
    on one tick for all beds. Samples are kept in a preallocated buffer (no copy of the whole
    window per step).

    Parameters
    ----------
    core : callable
        ``core(data, fs, mask) -> EventBatch`` with ``data`` of shape (rows, [k,] samples)
        and event ``session`` holding the row; onsets in seconds from the window start.
    n_sessions, n_channels : int
        Leading shape of the blocks (channels are the rows of one session).
    fs : float
        Sampling rate, in Hz.
    left_s, right_s, hop_s : float
        Context kept before the confirmed stretch, look-ahead delay and evaluation period, in s.
    inner_shape : tuple of int
        Extra axes between channel and samples (e.g. (3,) for the accelerometer axes).
    n_groups : int, optional
        Evaluation phases (default: one per 100 ms of ``hop_s``, with ≥ 16 sessions per phase).
    time_extra : sequence of str, optional
        Extra columns holding times in s, shifted to stream time (default: names ending in
        ``peak_s``); other columns, such as durations (``rr_s``), are left as they are.
    gated : bool
        The core finds no events (and gathers no statistics) where the mask is False: rows
        whose whole window is masked out are then not evaluated at all (e.g. spindles while
        the sleeper is awake or in REM), which gives the same events for less work.

    Notes
    -----
    While the core runs, :attr:`rows` (rows evaluated), :attr:`win_start` (absolute sample of
    the window start), :attr:`done` and :attr:`until` (the stretch being confirmed) are set, for
    cores that accumulate statistics over the stream.
    """

    def __init__(
        self,
        core: Core,
        kind: str,
        n_sessions: int,
        fs: float,
        *,
        n_channels: int = 1,
        left_s: float,
        right_s: float,
        hop_s: float,
        inner_shape: tuple[int, ...] = (),
        extra_names: Sequence[str] = (),
        confirm_by_end: bool = False,
        n_groups: int | None = None,
        time_extra: Sequence[str] | None = None,
        gated: bool = False,
    ) -> None:
        self.core = core
        self.gated = bool(gated)
        # extra columns that are times (shifted from window to stream time); durations are not
        self.time_extra = tuple(time_extra) if time_extra is not None else tuple(
            k for k in extra_names if k.endswith("peak_s"))
        self.confirm_by_end = confirm_by_end
        self.kind = kind
        self.n_sessions = int(check_number("n_sessions", n_sessions, ge=1))
        self.n_channels = int(check_number("n_channels", n_channels, ge=1))
        self.fs = float(fs)
        self.left = round(left_s * fs)
        self.right = round(right_s * fs)
        self.hop = max(1, round(hop_s * fs))
        self.inner_shape = tuple(inner_shape)
        self.extra_names = tuple(extra_names)
        # default: one phase per 100 ms of hop, with at least 16 sessions per phase (per-call overhead)
        g = n_groups if n_groups is not None else min(max(1, round(hop_s / 0.1)), self.n_sessions // 16)
        self.n_groups = int(min(max(1, g), self.n_sessions))
        rows = self.n_sessions * self.n_channels
        session_of_row = np.arange(rows) // self.n_channels
        self._group_rows = [np.flatnonzero(session_of_row % self.n_groups == k) for k in range(self.n_groups)]
        # group k first confirms after hop * (k + 1) / n_groups samples, then every hop
        self._next = np.array([max(1, (self.hop * (k + 1)) // self.n_groups) for k in range(self.n_groups)])
        self._gdone = np.zeros(self.n_groups, dtype=np.int64)
        # ring buffer: absolute sample i lives at column i % cap (no compaction copies)
        self._cap = self.left + self.right + 2 * self.hop + 64
        self._buf = np.zeros((rows, *self.inner_shape, self._cap))
        self._mask = np.zeros((rows, self._cap), dtype=bool)
        # first sample of each row's current stream: history before it is missing (a reset row is
        # evaluated from there on, as a fresh stream would be, not over a zero-filled past)
        self._born = np.zeros(rows, dtype=np.int64)
        self.n_seen = 0  # samples received per session
        self._rate = 0.0  # samples per step (smoothed), to share the evaluations over the steps
        self._steps = 0
        self.rows = np.zeros(0, dtype=np.intp)
        self.win_start = 0
        self.done = 0
        self.until = 0

    @property
    def latency_s(self) -> float:
        """Worst-case delay between the end of an event and its report, in seconds."""
        return (self.right + self.hop) / self.fs

    def reset(self, sessions: npt.ArrayLike) -> None:
        """Forget the buffered signal of some sessions (a new client in that bed, or a stream gap).

        The history before the reset becomes missing: the core sees these sessions' windows
        start at the reset, exactly as for a stream that started then (a baseline over the
        last 30 s is then undefined until enough new data has come, not a mean over zeros).
        """
        idx = np.asarray(sessions, dtype=np.intp).ravel()
        rows = (idx[:, None] * self.n_channels + np.arange(self.n_channels)).ravel()
        self._buf[rows] = 0.0
        self._mask[rows] = False
        self._born[rows] = self.n_seen

    def _expected(self) -> tuple[int, ...]:
        if self.n_channels == 1:
            return (self.n_sessions, *self.inner_shape)
        return (self.n_sessions, self.n_channels, *self.inner_shape)

    def _window(self, arr: npt.NDArray[Any], rows: npt.NDArray[np.intp], start: int) -> npt.NDArray[Any]:
        """Samples ``start .. n_seen`` of ``rows`` as one contiguous array."""
        a, b = start % self._cap, self.n_seen % self._cap
        if self.n_seen - start == 0:
            return arr[rows, ..., :0]
        if a < b:
            return arr[rows, ..., a:b]
        return np.concatenate([arr[rows, ..., a:], arr[rows, ..., :b]], axis=-1)

    def _append(self, x: FloatArray, m: BoolArray) -> None:
        n = x.shape[-1]
        need = self.left + self.right + self.hop + n + 1
        if need > self._cap:  # a block larger than the spare room: re-lay the ring out, bigger
            lo = max(0, int(self._gdone.min()) - self.left)
            all_rows = np.arange(self._buf.shape[0])
            old_b, old_m = self._window(self._buf, all_rows, lo), self._window(self._mask, all_rows, lo)
            self._cap = need + self.hop
            self._buf = np.zeros((*self._buf.shape[:-1], self._cap))
            self._mask = np.zeros((self._mask.shape[0], self._cap), dtype=bool)
            pos = np.arange(lo, self.n_seen) % self._cap
            self._buf[..., pos] = old_b
            self._mask[:, pos] = old_m
        a = self.n_seen % self._cap
        first = min(n, self._cap - a)
        self._buf[..., a:a + first] = x[..., :first]
        self._mask[:, a:a + first] = m[:, :first]
        if first < n:
            self._buf[..., : n - first] = x[..., first:]
            self._mask[:, : n - first] = m[:, first:]
        self.n_seen += n

    def step(self, block: npt.ArrayLike, mask: npt.ArrayLike | None = None) -> EventBatch:
        """Append one block for every session and return the events confirmed by it.

        Parameters
        ----------
        block : ndarray, shape (n_sessions, [n_channels, [*inner]], n_samples)
            New samples, in µV (milli-g for the accelerometer).
        mask : ndarray of bool, shape (n_sessions,) or (n_sessions, n_samples), optional
            Whether each session's new samples may hold events (e.g. the current stage is in the
            detector's stages); default all True.
        """
        x = np.asarray(block, dtype=np.float64)
        exp = self._expected()
        if x.shape[:-1] not in (exp, (self.n_sessions, self.n_channels, *self.inner_shape)):
            raise InvalidInputError(
                f"Invalid block shape {x.shape}: expected ({', '.join(map(str, exp))}, n_samples)."
            )
        n = x.shape[-1]
        rows = self.n_sessions * self.n_channels
        x = finite(x.reshape(rows, *self.inner_shape, n), nan=0.0, posinf=0.0, neginf=0.0)
        if mask is None:
            m = np.ones((rows, n), dtype=bool)
        else:
            mm = np.asarray(mask, dtype=bool)
            if mm.ndim == 1:
                mm = np.repeat(mm[:, None], n, axis=1)
            m = mm if self.n_channels == 1 else np.repeat(mm, self.n_channels, axis=0)  # (only copied from)
        self._append(x, m)
        confirmed = self.n_seen - self.right
        due = np.flatnonzero(confirmed >= self._next)
        self._rate = 0.9 * self._rate + 0.1 * n if self._steps else float(n)  # samples per step, smoothed
        self._steps += 1
        if due.size > 1:
            due = self._quota(due, confirmed)
        out = [self._evaluate(int(k), confirmed) for k in due]  # a few groups per step, never per sample
        return EventBatch.concat(self.kind, out, self.extra_names)

    def _quota(self, due: npt.NDArray[np.intp], confirmed: int) -> npt.NDArray[np.intp]:
        """The due groups to evaluate in this step: the most overdue first, about an even share per step.

        A slow stream (features at 1 Hz) gets new samples only every few steps, which would make
        all the groups due on those steps fall due together; spreading them over the following
        steps keeps the cost of each step even. A group overdue by half a hop is always run.
        """
        steps_per_hop = self.hop / max(self._rate, 1e-9)
        share = int(np.ceil(self.n_groups / max(steps_per_hop, 1e-9))) + 1
        if due.size <= share:
            return due
        late = confirmed - self._next[due]
        order = np.argsort(-late, kind="stable")
        take = max(share, int((late >= max(1, self.hop // 2)).sum()))
        return np.sort(due[order[:take]])

    def flush(self) -> EventBatch:
        """Report the events still held back at the end of the stream."""
        # one sample past the end, so that events ending with the stream are confirmed too
        out = [self._evaluate(k, self.n_seen + 1) for k in range(self.n_groups) if self._gdone[k] <= self.n_seen]
        return EventBatch.concat(self.kind, out, self.extra_names)

    def _evaluate(self, group: int, until: int) -> EventBatch:
        rows = self._group_rows[group]
        done = int(self._gdone[group])
        start = max(0, done - self.left)
        self._gdone[group] = until
        self._next[group] = until + self.hop
        first = np.maximum(self._born[rows], start)
        if first.max() == start:  # no row reset within the window (the usual case)
            return self._run(rows, start, done, until)
        # rows reset within the window start at their reset: one core call per distinct start
        out = [
            self._run(rows[first == b], int(b), max(done, int(b)), until)
            for b in np.unique(first)
            if b < self.n_seen
        ]
        return EventBatch.concat(self.kind, out, self.extra_names)

    def _run(self, rows: npt.NDArray[np.intp], start: int, done: int, until: int) -> EventBatch:
        """Run the core on samples ``start .. n_seen`` of ``rows``; keep the events confirmed in ``done .. until``."""
        mask = self._window(self._mask, rows, start)
        if self.gated:
            live = mask.any(axis=-1)
            if not live.all():
                rows, mask = rows[live], mask[live]
        if rows.size == 0:
            return EventBatch(self.kind, extra={k: np.zeros(0) for k in self.extra_names})
        self.rows, self.win_start, self.done, self.until = rows, start, done, until
        ev = self.core(self._window(self._buf, rows, start), self.fs, mask)
        if not len(ev):  # (most evaluations: nothing to keep, shift or map; concat drops empty batches)
            return ev
        t0 = start / self.fs
        ref = ev.onset + t0 + (ev.duration if self.confirm_by_end else 0.0)
        keep = (ref >= done / self.fs - 1e-9) & (ref < until / self.fs - 1e-9)
        ev = ev.select(keep)
        ev.onset = ev.onset + t0
        for k in self.time_extra:
            if k in ev.extra:
                ev.extra[k] = ev.extra[k] + t0
        row = rows[ev.session]
        ev.channel = row % self.n_channels
        ev.session = row // self.n_channels
        return ev
