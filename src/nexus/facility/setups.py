"""One loop, many setups: dry runs, CLAS replays and rendered nights through the facility loop.

Every way of playing a dreamscape — a dry run on synthetic sleepers (``nexus dreamscape try``), a
causal CLAS replay of a recording (``dreamscape clas-replay``), a night rendered from a
hypnogram (``dreamscape render``), the CLAS benchmark — is the facility loop
(:class:`~nexus.facility.supervisor.Supervisor` → lane → analyzers → :class:`DreamscapeLoop`)
with a different *setup*: a source (a :class:`~nexus.sources.synthetic.fleet.SyntheticFleet`
or a recording's samples, :class:`ArrayFleet`), a fast-forward clock, a sink per bed, and where
the stages come from (:data:`STAGE_SOURCES`): the live stager, a known hypnogram (each epoch
known when it ends, as it would be live), the synthetic sleeper's true stages (an oracle,
labelled so), or N3 throughout (excerpts).

:func:`run_loop` runs a setup and returns every bed's commands and decisions (times in seconds
since the bed's start). The CLAS prediction horizon is the sound latency plus the step; clicks
that could not be delivered in time are dropped, as live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number, check_option
from nexus.core.clock import ManualClock
from nexus.core.errors import InvalidInputError
from nexus.core.stages import EPOCH_S
from nexus.dreamscape.controller import Command
from nexus.dreamscape.schema import Program
from nexus.facility.analyzers import (
    AnalyzerFactory,
    arousals,
    clean_filter,
    heart,
    live_staging,
    movement,
    rems,
    slow_waves,
    spindles,
)
from nexus.facility.closed_loop import DreamscapeLoop
from nexus.facility.pipeline import Lane
from nexus.facility.step import StageBatch, StepContext, StepResult
from nexus.facility.supervisor import Supervisor
from nexus.sinks.bedside import BedSink, CountingSink

STAGE_SOURCES = ("live", "hypnogram", "oracle", "n3")
"""Where a setup's stages come from: the live stager, a known hypnogram, the sleeper's truth, or N3 throughout."""


class ArrayFleet:
    """Known samples of some beds (a recording), handed out chunk by chunk; zeros after the end.

    Parameters
    ----------
    data : ndarray, shape (beds, channels, samples)
        Samples in µV.
    fs : float
        Sampling rate in Hz.
    channels : sequence of str
        Channel names (roles are read from their prefixes: ``EEG``, ``EOG``, ``EMG``, ...).
    """

    def __init__(self, data: npt.ArrayLike, fs: float, channels: Sequence[str]) -> None:
        self.data = np.asarray(data, dtype=np.float64)
        if self.data.ndim != 3 or self.data.shape[1] != len(channels):
            raise InvalidInputError(
                f"ArrayFleet needs (beds, {len(channels)} channels, samples), got {self.data.shape}."
            )
        self.fs = float(fs)
        self.channels = tuple(channels)
        self.pos = 0

    def next_chunk(self, n_samples: int) -> npt.NDArray[np.float64]:
        """The next ``n_samples`` of every bed (zeros past the end)."""
        a, b = self.pos, self.pos + int(n_samples)
        self.pos = b
        out = np.zeros((self.data.shape[0], self.data.shape[1], b - a))
        m = max(0, min(b, self.data.shape[-1]) - a)
        out[:, :, :m] = self.data[:, :, a : a + m]
        return out


class KnownStages:
    """Stage probabilities from known stages (a hypnogram or the sleeper's truth), one-hot.

    By default epoch ``e`` becomes known when it ends, as a live stager would report it; with
    ``known_at_start`` it is known from its first sample (an excerpt known to be N3).

    Parameters
    ----------
    lane : Lane
        The lane.
    stages : ndarray, shape (capacity, n_epochs)
        Stage codes per slot (artefact/unscored epochs give no stage).
    epoch_s : float
        Epoch length in s.
    known_at_start : bool
        Whether an epoch's stage is known from its start.
    """

    name = "staging"
    stages_sleep = True

    def __init__(self, lane: Lane, stages: npt.ArrayLike, *, epoch_s: float = EPOCH_S,
                 known_at_start: bool = False) -> None:
        st = np.asarray(stages, dtype=np.int64)
        if st.ndim != 2 or st.shape[0] != lane.capacity:
            raise InvalidInputError(f"Known stages need shape ({lane.capacity}, epochs), got {st.shape}.")
        self.stages = st
        self.epoch_s = float(epoch_s)
        self.shift = 0 if known_at_start else 1
        self._last = -1

    def step(self, ctx: StepContext) -> StepResult:
        """The probabilities of the latest known epoch; the epochs that closed in this step."""
        e = int(np.floor(ctx.t_end / self.epoch_s + 1e-9)) - self.shift
        if e < 0:
            return StepResult()
        e = min(e, self.stages.shape[1] - 1)
        code = self.stages[:, e]
        ok = (code >= 0) & (code <= 4)
        probs = np.full((code.size, 5), np.nan)
        probs[ok] = np.eye(5)[code[ok]]
        closed = None
        if e != self._last and self.shift:
            slots = np.flatnonzero(ctx.active).astype(np.int64)
            closed = StageBatch(slots, np.full(slots.size, e * self.epoch_s), code[slots], probs[slots])
        self._last = e
        return StepResult(probs=probs, stages=closed)

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """Nothing to forget: the stages are known."""


class TruthDistress:
    """Distress flags from the synthetic sleepers' true episodes, reported ``delay_s`` late.

    Stands in for the psyche monitor in dry runs (labelled so in their results).
    """

    name = "distress"

    def __init__(self, fleet: Any, delay_s: float = 2.0) -> None:
        self.fleet = fleet
        self.delay_s = float(delay_s)

    def step(self, ctx: StepContext) -> StepResult:
        """The beds whose true distress episode overlaps this step (minus the delay)."""
        t1 = ctx.t_end - self.delay_s
        t0 = t1 - ctx.n_samples / ctx.fs
        if t1 <= 0:
            return StepResult()
        return StepResult(distress=np.asarray(self.fleet.distress_active(max(t0, 0.0), t1), dtype=bool))

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """Nothing to forget."""


def _chain(stage_source: str, stages: Any, *, events: bool, arousal: bool, fleet: Any, distress_truth: bool,
           block_s: float, sound_latency_s: float, stimulate: bool) -> list[AnalyzerFactory]:
    chain: list[AnalyzerFactory] = [clean_filter]
    if stage_source == "live":
        chain.append(live_staging)
    else:
        known = stages
        chain.append(lambda lane: KnownStages(lane, known, known_at_start=stage_source == "n3"))
    if events:
        chain += [slow_waves, spindles, rems, arousals, heart, movement]
    elif arousal:
        chain += [slow_waves, arousals]
    if distress_truth:
        chain.append(lambda lane: TruthDistress(fleet))
    chain.append(lambda lane: DreamscapeLoop(lane, block_s=block_s, sound_latency_s=sound_latency_s,
                                             stimulate=stimulate))
    return chain


@dataclass
class LoopRun:
    """What a setup's beds heard and why.

    Attributes
    ----------
    commands : list of list of Command
        Per bed, the commands its sink played, in time order (``t`` in s since the bed's start).
    decisions : list of list of dict
        Per bed, every decision as journaled (``onset`` in s since the bed's start).
    stages : str
        Where the stages came from.
    seconds : float
        Length of the run, in s.
    loop : DreamscapeLoop
        The loop (per-bed counters: commands by kind, late clicks, slow-oscillation power in N3).
    """

    commands: list[list[Command]]
    decisions: list[list[dict[str, Any]]]
    stages: str
    seconds: float
    loop: Any
    glitches: list[Any] = field(default_factory=list)


def run_loop(
    fleet: Any,
    programs: Sequence[Program | None],
    seconds: float,
    *,
    sinks: Sequence[BedSink | None] | None = None,
    stages: str = "live",
    hypnograms: npt.ArrayLike | None = None,
    step_s: float = 0.5,
    tick_s: float = 0.1,
    sound_latency_s: float = 0.05,
    events: bool = False,
    arousal: bool = True,
    distress_truth: bool = False,
    stimulate: bool = True,
    progress: Callable[[float, float], None] | None = None,
) -> LoopRun:
    """Run beds through the facility loop in fast-forward.

    Parameters
    ----------
    fleet : object
        The beds' signals: ``fs``, ``channels`` and ``next_chunk(n) -> (beds, channels, n)``
        (:class:`ArrayFleet`, :class:`~nexus.sources.synthetic.fleet.SyntheticFleet`).
    programs : sequence of Program or None
        One per bed (None: a natural night).
    seconds : float
        How long to run, in s.
    sinks : sequence of BedSink or None, optional
        One per bed (default: a :class:`~nexus.sinks.bedside.CountingSink` each).
    stages : {"live", "hypnogram", "oracle", "n3"}
        Where the stages come from (see :data:`STAGE_SOURCES`).
    hypnograms : array_like, shape (beds, epochs), optional
        The known stages for ``hypnogram`` (for ``oracle``: taken from ``fleet.stages``).
    step_s : float
        Lane step, in s (stages and arousals reach the controller once a step; a sleeper's response
        to a sound starts at the latest one step late).
    tick_s : float
        The live tick the decisions are made for, in s: the CLAS horizon is ``sound_latency_s + tick_s``.
    sound_latency_s : float
        Latency of the sound path, in s.
    events : bool
        Run every event detector (else only the slow-wave and arousal detectors the controller reads).
    arousal : bool
        Run the arousal detector (needs a stage source; the controller silences on arousals).
    distress_truth : bool
        Report the synthetic sleepers' true distress episodes (2 s late) in place of the psyche monitor.
    stimulate : bool
        False: a sham night (decisions logged, no clicks).
    progress : callable, optional
        ``progress(done_s, total_s)`` after each tick.
    """
    check_option("stage source", stages, STAGE_SOURCES)
    seconds = check_number("seconds", seconds, gt=0, unit="s")
    n = len(programs)
    known: Any = None
    if stages == "hypnogram":
        if hypnograms is None:
            raise InvalidInputError("Give the hypnograms (one per bed) for stages='hypnogram'.")
        known = np.atleast_2d(np.asarray(hypnograms, dtype=np.int64))
    elif stages == "oracle":
        known = np.asarray(fleet.stages, dtype=np.int64)
    elif stages == "n3":
        known = np.full((n, int(np.ceil(seconds / EPOCH_S)) + 1), 3, dtype=np.int64)
    sinks = list(sinks) if sinks is not None else [CountingSink() for _ in range(n)]
    chain = _chain(stages, known, events=events, arousal=arousal, fleet=fleet, distress_truth=distress_truth,
                   block_s=tick_s, sound_latency_s=sound_latency_s, stimulate=stimulate)
    tick = max(step_s, 10.0)
    sup = Supervisor(ManualClock(), analyzers=chain, step_s=step_s, buffer_s=2 * tick + 2.0, record_signals=False)
    names = [f"bed-{k}" for k in range(n)]
    decisions: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    index = {name: k for k, name in enumerate(names)}

    def keep(kind: str, records: list[dict[str, Any]]) -> None:
        for r in records:
            if r["kind"] == "decision":
                decisions[index[r["session"]]].append(r)

    sup.listeners.append(keep)
    sup.add_fleet(fleet, names, programs=list(programs), sinks=sinks)
    loop = sup.lanes[0].analyzer("dreamscape")
    sup.run(seconds, tick_s=tick, on_tick=(lambda rep: progress(rep.t, seconds)) if progress else None)
    sup.close()
    commands: list[list[Command]] = []
    for k in range(n):  # commands as each bed played them, on its own clock (the fleet starts at lane time 0)
        sink = sinks[k]
        played = getattr(sink, "played", None)
        if played is None:  # a tee of several outputs: the one that keeps what it played
            played = next((s.played for s in getattr(sink, "sinks", []) if hasattr(s, "played")), [])
        commands.append([Command(k, float(c.t), c.kind, dict(c.params)) for c in played])
    return LoopRun(commands, decisions, stages, seconds, loop, list(sup.glitches))
