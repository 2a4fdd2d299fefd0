"""The analyzers of the batched step: filters with carried state, live staging, event detectors.

Each analyzer wraps one batched computation of the pure layers (:mod:`nexus.dsp`,
:mod:`nexus.staging`, :mod:`nexus.events`) for a :class:`~nexus.facility.pipeline.Lane`: it picks
its channels by role from the lane's channel names, steps on the stacked block
``(sessions, channels, samples)`` and appends its results to the step's output. A lane without a
channel an analyzer needs simply goes without it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.montage import channel_roles
from nexus.core.stages import EPOCH_S
from nexus.dsp.filters import StatefulFilter, highpass_sos, notch_sos
from nexus.facility.pipeline import Lane
from nexus.facility.step import Analyzer, FloatArray, StageBatch, StepContext, StepResult

AnalyzerFactory = Callable[[Lane], Analyzer]


class _Null:
    """An analyzer for a lane that lacks the channels of a real one: passes the block on."""

    def __init__(self, name: str) -> None:
        self.name = name

    def step(self, ctx: StepContext) -> StepResult:
        return StepResult()

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        return None


class CleanFilter:
    """DC high-pass and mains notch with carried state on the electrophysiology channels.

    Parameters
    ----------
    lane : Lane
        The lane filtered (its leading shape: sessions × electrophysiology channels).
    highpass_hz : float
        High-pass cut-off in Hz (removes electrode offset and drift).
    line_hz : float
        Mains frequency in Hz (50 or 60); skipped when above 45 % of the sampling rate.
    """

    name = "filter"

    def __init__(self, lane: Lane, highpass_hz: float = 0.3, line_hz: float = 50.0) -> None:
        self.rows = channel_roles(lane.channels)["ephys"]
        sos = [highpass_sos(highpass_hz, lane.fs, order=1)]
        if line_hz < 0.45 * lane.fs:
            sos.append(notch_sos(line_hz, lane.fs))
        self.filter = StatefulFilter(np.vstack(sos), (lane.capacity, len(self.rows)), init="step")
        contiguous = bool(self.rows) and self.rows == list(range(self.rows[0], self.rows[-1] + 1))
        self._sel: slice | list[int] = slice(self.rows[0], self.rows[-1] + 1) if contiguous else self.rows

    def step(self, ctx: StepContext) -> StepResult:
        """Filter the electrophysiology rows of the block in place; return it."""
        block = ctx.block
        if not self.rows:
            return StepResult()
        if isinstance(self._sel, slice):  # a view of the block: filtered where it lies, no copy
            rows = block[:, self._sel]
            self.filter.step(rows, out=rows)
        else:
            block[:, self._sel] = self.filter.step(block[:, self._sel])
        return StepResult(block=block)

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """Restart the filters of some sessions."""
        self.filter.reset(slots)


_STAGE_CODES = 7
"""Live stage codes -2 (no estimate yet) … 4 (REM), see :attr:`nexus.facility.pipeline.Lane.stage`."""


class EventDetector:
    """A batched streaming detector of :mod:`nexus.events` on some rows of the block.

    The detector itself spreads its periodic work over the steps (its sessions are split over
    evaluation phases), so feeding it every step keeps the cost of a step even.

    Parameters
    ----------
    name : str
        Analyzer name (for logs).
    stream : object
        The detector, made for the lane's capacity: ``step(x, mask) -> EventBatch`` (or
        ``step(x)``) and ``reset(sessions)``.
    rows : sequence of int
        Channel rows the detector reads; one row gives it (sessions, samples), several
        (sessions, rows, samples).
    stages : sequence of int, optional
        Only look for events while the live stage is one of these (no restriction when None
        or when the lane has no stager).
    takes_mask : bool
        Whether the stream's ``step`` accepts a mask.
    """

    def __init__(
        self, name: str, stream: Any, rows: Sequence[int], stages: Sequence[int] | None = None, takes_mask: bool = True
    ) -> None:
        self.name = name
        self.stream = stream
        self.rows = list(rows)
        self.stages = None if stages is None else np.asarray(stages)
        # stage codes run from -2 (no estimate) to 4 (REM): a lookup table instead of np.isin at every step
        self._stage_ok = np.zeros(_STAGE_CODES, dtype=bool)
        if self.stages is not None:
            self._stage_ok[self.stages[(self.stages >= -2) & (self.stages < _STAGE_CODES - 2)] + 2] = True
        self.takes_mask = takes_mask
        self._row_map = np.asarray(self.rows, dtype=np.intp)
        # consecutive rows are taken as a view of the block (the stream copies them into its window), not gathered
        r0 = self.rows[0] if self.rows else 0
        self._sel: int | slice | list[int] = (
            r0 if len(self.rows) == 1
            else slice(r0, r0 + len(self.rows)) if self.rows == list(range(r0, r0 + len(self.rows)))
            else self.rows
        )

    def step(self, ctx: StepContext) -> StepResult:
        """Feed the detector and return its newly confirmed events (channel = lane row)."""
        block, active = ctx.block, ctx.active
        x = block[:, self._sel]
        if self.takes_mask:
            mask = active
            if self.stages is not None and ctx.staged:
                # (np.minimum/np.maximum: the same as np.clip on integers, without its ~10 us of checks per call)
                mask = active & self._stage_ok[np.minimum(np.maximum(ctx.stage, -2), _STAGE_CODES - 3) + 2]
            ev = self.stream.step(x, mask)
        else:
            ev = self.stream.step(x)
        down = getattr(self.stream, "down_states", None)
        if not len(ev):
            return StepResult(down_states=down)
        rows = self._row_map[ev.channel] if len(self.rows) > 1 else np.full(len(ev), self.rows[0])
        keep = active[ev.session]
        ev = type(ev)(ev.kind, ev.session, rows, ev.onset, ev.duration, ev.extra)
        return StepResult(events=[ev if keep.all() else ev.select(keep)], down_states=down)

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """Forget the signal of some sessions."""
        self.stream.reset(np.asarray(slots, dtype=np.intp))


class LiveStaging:
    """Live sleep staging of every session of the lane (:class:`nexus.staging.live.LiveStager`).

    The stager re-estimates the epoch in progress every 5 s of data for all sessions at once; the
    estimate becomes the lane's current stage (``StepResult.probs``, which gates the event
    detectors) and each closed epoch is reported in a step's output. Blocks are handed over in
    pieces of at most 4 s, so that no closed epoch is skipped when a fast-forward step is long.
    Epochs follow the lane's clock (sessions of a fleet start together, so their epochs are
    their own).

    With ``background=True`` the stager runs on a worker thread: a step only queues its block,
    and collects the estimates finished since the last step. The 5-s re-estimation of a
    thousand beds then no longer lands inside one tick (it overlaps the next ticks on the other
    core), at the price of stages arriving a few hundred ms later. Results stay in order. On a
    real-time lane a step takes every result that is ready; on a deterministic (fast-forward)
    lane it takes exactly the result of the step before, waiting for it if need be, so that the
    stage gating the detectors never depends on thread timing and a simulated night repeats.

    Parameters
    ----------
    lane : Lane
        The lane; it needs an EEG channel (EOG and EMG are used when present).
    night_hours : float
        Expected night length, in hours (a feature of the stager).
    background : bool
        Run the stager on a worker thread.
    """

    name = "staging"
    PIECE_S = 4.0
    GATHER_SLACK_S = 1.0
    """Room for one tick beyond the 5-s hand-over in the gathered blocks, in s (longer steps grow them)."""

    def __init__(self, lane: Lane, night_hours: float = 8.0, background: bool = True) -> None:
        from nexus.staging.live import LiveStager

        roles = channel_roles(lane.channels)
        kinds, rows = [], []
        for kind in ("eeg", "eog", "emg"):
            if roles[kind]:
                kinds.append(kind)
                rows.append(roles[kind][0])
        self.rows = rows
        self.stages_sleep = True
        # in the background the stager keeps to its own thread (one core), so that its 5-s
        # re-estimate of every bed does not take the core the ticks run on
        self.stager = LiveStager(
            lane.capacity, lane.fs, kinds, night_hours=night_hours, workers=1 if background else None
        )
        self.piece = max(1, int(self.PIECE_S * lane.fs))
        self._pool: Any = None
        self._jobs: deque[tuple[Any, FloatArray | None]] = deque()  # (future, its gathered block)
        self._buf: FloatArray | None = None  # (capacity, rows, samples) gathered for the worker
        self._buf_n = 0
        self._spare: list[FloatArray] = []  # gathered blocks the worker is done with, to fill again
        self._buf_active = np.zeros(lane.capacity, dtype=bool)
        self._used = np.zeros(lane.capacity, dtype=bool)
        self.min_submit = round(5.0 * lane.fs)
        """Samples gathered before a hand-over to the worker (one stager block)."""
        if background:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexus-staging")
            # two blocks to gather into (one filling, one with the worker), written once now: the first writes
            # to fresh memory cost page faults (80 ms for a thousand beds) that must not fall inside a tick
            size = self.min_submit + round(self.GATHER_SLACK_S * lane.fs)
            for _ in range(2):
                block = np.empty((lane.capacity, len(rows), size))
                block.fill(0.0)
                self._spare.append(block)

    def _run(self, x: FloatArray, active: npt.NDArray[np.bool_]) -> tuple[Any, list[StageBatch]]:
        est, closed = None, []
        for a in range(0, x.shape[-1], self.piece):
            self.stager.push(x[..., a : a + self.piece])
            before = self.stager.n_blocks
            est = self.stager.update()
            if est.final and self.stager.n_blocks != before:  # an epoch closed just now
                slots = np.flatnonzero(active)
                onset = np.full(slots.size, float(est.epoch_index[0]) * EPOCH_S)
                closed.append(StageBatch(slots.astype(np.int64), onset, est.stage[slots].astype(np.int64),
                                         np.array(est.probabilities[slots], dtype=np.float64)))
        return est, closed

    @staticmethod
    def _result(results: list[tuple[Any, list[StageBatch]]]) -> StepResult:
        """One step result from the stager results taken in this step (latest estimate, closed epochs)."""
        probs = None
        closed: list[StageBatch] = []
        for est, cl in results:
            if est is not None:
                probs = np.asarray(est.probabilities, dtype=np.float64)
            closed += cl
        stages = None
        if closed:
            stages = StageBatch(np.concatenate([c.slots for c in closed]), np.concatenate([c.onsets for c in closed]),
                                np.concatenate([c.stages for c in closed]), np.concatenate([c.probs for c in closed]))
        return StepResult(probs=probs, stages=stages)

    def step(self, ctx: StepContext) -> StepResult:
        """Hand the block to the stager; return the newest estimate and the closed epochs that are ready.

        With a worker thread, short blocks are gathered until a stager block (5 s) is complete before
        they are handed over: the stager only re-estimates on whole blocks, and one hand-over per
        block instead of one per tick spares the ticks a thread wake-up each.
        """
        self._used |= ctx.active
        if self._pool is None:
            x = np.take(ctx.block, self.rows, axis=1)  # a C-ordered copy of the rows in one pass
            return self._result([self._run(x, ctx.active)])
        self._gather(ctx.block)
        self._buf_active = ctx.active.copy()
        if self._buf_n < self.min_submit:
            return StepResult() if ctx.deterministic else self._result(self._ready())
        self._submit()
        taken = []
        if ctx.deterministic:  # the previous step's result, always, and never this step's
            while len(self._jobs) > 1:
                taken.append(self._take())
        else:
            taken = self._ready()
        return self._result(taken)

    def _gather(self, block: FloatArray) -> None:
        """Copy the stager's rows of ``block`` into the block being gathered for the worker (the worker's own).

        The gathered block is filled tick by tick and handed over as it is, so that a hand-over costs
        no copy of the whole 5 s of a thousand beds; blocks the worker is done with are used again
        (a fresh one of a thousand beds is 30 MB whose first writes cost the tick tens of ms).
        """
        n = block.shape[-1]
        need = self._buf_n + n
        if self._buf is None and self._spare:
            self._buf = self._spare.pop()
        if self._buf is None or need > self._buf.shape[-1]:
            self._spare.clear()  # a longer step than before: blocks of the new size from now on
            grown = np.empty((block.shape[0], len(self.rows), max(self.min_submit + n, need)))
            if self._buf is not None:
                grown[..., : self._buf_n] = self._buf[..., : self._buf_n]
            self._buf = grown
        for k, r in enumerate(self.rows):
            self._buf[:, k, self._buf_n : need] = block[:, r]
        self._buf_n = need

    def _ready(self) -> list[tuple[Any, list[StageBatch]]]:
        taken = []
        while self._jobs and self._jobs[0][0].done():
            taken.append(self._take())
        return taken

    def _submit(self) -> None:
        """Hand the gathered blocks to the worker."""
        if self._buf is None or not self._buf_n or self._pool is None:
            return
        x = self._buf[..., : self._buf_n]
        self._jobs.append((self._pool.submit(self._run, x, self._buf_active), self._buf))
        self._buf, self._buf_n = None, 0

    def _take(self) -> tuple[Any, list[StageBatch]]:
        """The oldest job's result (waiting for it); its gathered block goes back to the spares."""
        job, gathered = self._jobs.popleft()
        out: tuple[Any, list[StageBatch]] = job.result()
        if gathered is not None:
            self._spare.append(gathered)
        return out

    def finish(self) -> StepResult:
        """Wait for the queued blocks and return their epochs (end of the run)."""
        self._submit()
        taken = []
        while self._jobs:
            taken.append(self._take())
        self.close()
        return self._result(taken)

    def close(self) -> None:
        """Stop the worker thread (after the queued blocks) and the stager's own."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.stager.close()

    def _reset(self, slots: npt.NDArray[np.intp]) -> tuple[Any, list[StageBatch]]:
        self.stager.reset(slots)
        return None, []

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """Start the stager afresh for new sleepers in ``slots`` (queued behind pending blocks)."""
        slots = np.asarray(slots, dtype=np.intp).copy()
        slots = slots[self._used[slots]]  # a slot that never carried data is fresh: a reset would only cost
        self._used[slots] = False  # 30 s of artefact epochs (the stager's rule after a reset)
        if not slots.size:
            return
        if self._pool is None:
            self._reset(slots)
        else:
            self._submit()  # the gathered samples belong to the sessions before the reset
            self._jobs.append((self._pool.submit(self._reset, slots), None))


def live_staging(lane: Lane) -> Analyzer:
    """The :class:`LiveStaging` of a lane, or nothing when the lane has no EEG or too low a rate."""
    from nexus.staging.offline import MIN_FS

    if not channel_roles(lane.channels)["eeg"] or lane.fs <= MIN_FS:
        return _Null("staging")
    return LiveStaging(lane)


def _first(roles: dict[str, list[int]], role: str, n: int = 1) -> list[int] | None:
    rows = roles[role]
    return rows[:n] if len(rows) >= n else None


def slow_waves(lane: Lane) -> Analyzer:
    """Slow oscillations (and causal down-states for the dreamscape) on the first EEG channel."""
    from nexus.events.slow_waves import SlowWaveStream

    rows = _first(channel_roles(lane.channels), "eeg")
    if rows is None or lane.fs < 10:
        return _Null("slow_waves")
    return EventDetector("slow_waves", SlowWaveStream(lane.capacity, lane.fs), rows, stages=(2, 3))


def spindles(lane: Lane) -> Analyzer:
    """Sleep spindles on the first EEG channel (N2/N3 only once a stage is known)."""
    from nexus.events.spindles import SpindleStream

    rows = _first(channel_roles(lane.channels), "eeg")
    if rows is None or lane.fs < 64:
        return _Null("spindles")
    return EventDetector("spindles", SpindleStream(lane.capacity, lane.fs), rows, stages=(2, 3))


def rems(lane: Lane) -> Analyzer:
    """Rapid eye movements on the first two EOG channels (LOC, ROC)."""
    from nexus.events.rems import REMStream

    rows = _first(channel_roles(lane.channels), "eog", 2)
    if rows is None or lane.fs < 16:
        return _Null("rems")
    return EventDetector("rems", REMStream(lane.capacity, lane.fs), rows, stages=(4,))


def heart(lane: Lane) -> Analyzer:
    """R-peaks, RR intervals and heart rate from the ECG."""
    from nexus.events.heart import HeartRateStream

    rows = _first(channel_roles(lane.channels), "ecg")
    if rows is None or lane.fs < 50:
        return _Null("heart")
    return EventDetector("heart", HeartRateStream(lane.capacity, lane.fs), rows)


def movement(lane: Lane) -> Analyzer:
    """Body movements from the three accelerometer axes."""
    from nexus.events.movement import MovementStream

    rows = _first(channel_roles(lane.channels), "acc", 3)
    if rows is None:
        return _Null("movement")
    return EventDetector("movement", MovementStream(lane.capacity, lane.fs), rows, takes_mask=False)


class ArousalDetector:
    """AASM arousals (:class:`nexus.events.arousals.ArousalStream`) from EEG, chin EMG and the live stage."""

    name = "arousals"

    def __init__(self, lane: Lane) -> None:
        from nexus.events.arousals import ArousalStream

        roles = channel_roles(lane.channels)
        self.eeg = roles["eeg"][0]
        self.emg = roles["emg"][0] if roles["emg"] else None
        self.stream = ArousalStream(lane.capacity, lane.fs)

    def step(self, ctx: StepContext) -> StepResult:
        """Feed EEG, EMG and the current stages; return the arousals that ended."""
        block, active = ctx.block, ctx.active
        emg = block[:, self.emg] if self.emg is not None else None
        ev = self.stream.step(block[:, self.eeg], ctx.stage, emg)
        if not len(ev):
            return StepResult()
        ev = type(ev)(ev.kind, ev.session, np.full(len(ev), self.eeg), ev.onset, ev.duration, ev.extra)
        keep = active[ev.session]
        return StepResult(events=[ev if keep.all() else ev.select(keep)])

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """Forget the signal and baselines of some sessions."""
        self.stream.reset(np.asarray(slots, dtype=np.intp))


def arousals(lane: Lane) -> Analyzer:
    """Arousals, when the lane has EEG at ≥ 64 Hz and a live stager (the AASM rule needs the stage)."""
    if not channel_roles(lane.channels)["eeg"] or lane.fs < 64 or not lane.staged:
        return _Null("arousals")
    return ArousalDetector(lane)


def clean_filter(lane: Lane) -> Analyzer:
    """The :class:`CleanFilter` of a lane."""
    return CleanFilter(lane)


def default_analyzers(*, staging: bool = True, events: bool = True, monitor: bool = True, dreamscape: bool = True,
                      block_s: float = 0.1, stimulate: bool = True) -> list[AnalyzerFactory]:
    """The analyzers of a facility lane, in order: filters, stager, detectors, glitch monitor, dreamscape loop.

    ``block_s`` is the length of the lane's steps in s (the CLAS prediction horizon covers it);
    ``stimulate=False`` runs the dreamscapes as a sham (every decision logged, no click played).
    """
    chain: list[AnalyzerFactory] = [clean_filter]
    if staging:
        chain.append(live_staging)
    if events:
        chain += [slow_waves, spindles, rems, arousals, heart, movement]
    if monitor:
        from nexus.facility.monitoring import glitch_watch

        chain.append(glitch_watch)
    if dreamscape:
        from nexus.facility.closed_loop import dreamscape_loop

        chain.append(dreamscape_loop(block_s=block_s, stimulate=stimulate))
    return chain
