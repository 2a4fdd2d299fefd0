"""What one batched step of a lane reads and returns: the step context and typed result batches.

A lane step hands every analyzer a :class:`StepContext` — the block of samples and what the
analyzers before it found in this step (stage probabilities, events, slow-wave down-states,
glitch flags) — and gets a :class:`StepResult` back. Analyzers never write into the lane or
into each other: the lane merges each result into the context of the next analyzer, and into
the :class:`StepOutput` that one recorder (:mod:`nexus.facility.recorder`) writes.

Arrays have the lane's *slot* as leading axis (``capacity`` rows, free slots included; see
:attr:`StepContext.active`). Times are seconds on the lane's stream clock (lane index / fs);
:meth:`nexus.facility.pipeline.Lane.session_time` converts them to seconds since a session's
start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class StageBatch:
    """Epochs closed by the live stager in one step.

    Attributes
    ----------
    slots : ndarray of int
        Lane slots.
    onsets : ndarray of float
        Epoch onsets, in lane-stream seconds.
    stages : ndarray of int
        Stage codes (0..4, -1 artefact, -2 not enough data).
    probs : ndarray, shape (len(slots), 5)
        The hypnodensity of each epoch: P(W, N1, N2, N3, R); NaN rows where not staged.
    """

    slots: IntArray
    onsets: FloatArray
    stages: IntArray
    probs: FloatArray

    def __len__(self) -> int:
        return int(self.slots.size)


@dataclass
class CommandBatch:
    """What the dreamscape controller decided in one step.

    Attributes
    ----------
    commands : list
        :class:`~nexus.dreamscape.controller.Command` objects; ``session`` is the lane slot and
        ``t`` lane-stream seconds.
    decisions : list
        :class:`~nexus.dreamscape.controller.Decision` objects (every decision, with its inputs,
        rule and output), same slot and time convention.
    click_latency_s : list of float
        Wall-clock seconds from the arrival of the samples that triggered each click to its
        command (sample-to-command latency; live lanes only).
    """

    commands: list[Any] = field(default_factory=list)
    decisions: list[Any] = field(default_factory=list)
    click_latency_s: list[float] = field(default_factory=list)


@dataclass
class SlotGlitch:
    """A glitch an analyzer found in a slot (the supervisor names the session).

    ``onset`` is in lane-stream seconds; ``duration`` in s (None while the episode is open);
    ``evidence`` what the detector saw (values, thresholds crossed).
    """

    slot: int
    onset: float
    kind: str
    message: str
    channel: str | None = None
    duration: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepContext:
    """What an analyzer may read in one lane step.

    Attributes
    ----------
    block : ndarray, shape (capacity, channels, samples)
        The samples of this step in µV (filtered once the filter analyzer has run).
    active : ndarray of bool, shape (capacity,)
        Slots with a running session.
    fs : float
        Sampling rate in Hz.
    channels : tuple of str
        Channel names.
    start_index : int
        Lane index of the block's first sample.
    deterministic : bool
        Fast-forward lane: background work is collected on a fixed schedule.
    staged : bool
        Whether the lane has a stager (else ``probs`` stays NaN and stage gates are off).
    probs : ndarray, shape (capacity, 5)
        Latest stage probabilities (W, N1, N2, N3, R); NaN rows where not staged yet.
    stage : ndarray of int, shape (capacity,)
        Latest stage code (-2 where not staged yet).
    glitch : ndarray of bool, shape (capacity,)
        Slots with an open technical or system glitch (stimulation pauses).
    distress : ndarray of bool, shape (capacity,)
        Slots with an open psyche glitch (distress).
    events : list of EventBatch
        Events found so far in this step (``session`` = slot, ``onset`` in lane seconds).
    down_states : object or None
        :class:`~nexus.events.slow_waves.DownStates` of the slow-wave detector (times in lane seconds).
    arrived_at : float
        ``time.perf_counter()`` when the step's samples were taken in (for latency figures).
    raw : dict of int to ndarray
        Unfiltered copies (capacity, samples) of the channel rows that analyzers asked for with
        a ``reads_raw`` attribute (CLAS reads the raw EEG: the clean-up filter shifts the phase).
    raw_block : ndarray or None
        The whole unfiltered block (capacity, channels, samples) when an analyzer reads every raw
        row (``reads_raw = "all"``); ``raw`` then holds views of its rows.
    """

    block: FloatArray
    active: BoolArray
    fs: float
    channels: tuple[str, ...]
    start_index: int
    deterministic: bool
    staged: bool
    probs: FloatArray
    stage: IntArray
    glitch: BoolArray
    distress: BoolArray
    events: list[Any] = field(default_factory=list)
    down_states: Any = None
    arrived_at: float = 0.0
    raw: dict[int, FloatArray] = field(default_factory=dict)
    raw_block: FloatArray | None = None

    @property
    def n_samples(self) -> int:
        """Samples per slot in this step."""
        return int(self.block.shape[-1])

    @property
    def t_end(self) -> float:
        """Lane-stream time at the end of the block, in s."""
        return (self.start_index + self.n_samples) / self.fs

    def events_of(self, kind: str) -> list[Any]:
        """The event batches of one kind found so far in this step."""
        return [e for e in self.events if e.kind == kind]


@dataclass
class StepResult:
    """What one analyzer returns from a step; every field is optional.

    Attributes
    ----------
    block : ndarray or None
        A transformed block that later analyzers read instead (filters).
    probs : ndarray or None
        The newest stage probabilities, shape (capacity, 5) (a stager).
    stages : StageBatch or None
        Epochs closed in this step (a stager).
    events : list of EventBatch
        Newly confirmed events.
    down_states : object or None
        Down-states of the slow-wave detector.
    commands : CommandBatch or None
        The controller's commands and decisions.
    glitches : list of SlotGlitch
        Anomalies found (an analyzer's own failure, a sink that failed, ...).
    glitch, distress : ndarray of bool or None
        Slots with an open technical/system glitch, or an open distress episode (a monitor);
        OR-ed into the context's flags for the analyzers after it.
    """

    block: FloatArray | None = None
    glitch: BoolArray | None = None
    distress: BoolArray | None = None
    probs: FloatArray | None = None
    stages: StageBatch | None = None
    events: list[Any] = field(default_factory=list)
    down_states: Any = None
    commands: CommandBatch | None = None
    glitches: list[SlotGlitch] = field(default_factory=list)


@dataclass
class StepOutput:
    """Everything one lane step produced, for the recorder.

    Attributes
    ----------
    n_samples : int
        Samples per slot processed in this step.
    stages, events, commands, glitches : lists
        The typed batches of all analyzers, in analyzer order.
    """

    n_samples: int = 0
    stages: list[StageBatch] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    commands: list[CommandBatch] = field(default_factory=list)
    glitches: list[SlotGlitch] = field(default_factory=list)

    def add(self, res: StepResult) -> None:
        """Append the batches of one analyzer's result."""
        if res.stages is not None and len(res.stages):
            self.stages.append(res.stages)
        self.events.extend(e for e in res.events if len(e))
        if res.commands is not None:
            self.commands.append(res.commands)
        self.glitches.extend(res.glitches)


class Analyzer(Protocol):
    """One batched computation of a lane step (filters, stager, detector, controller)."""

    name: str

    def step(self, ctx: StepContext) -> StepResult:
        """Read what the step context holds; return what was found."""
        ...

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """Forget the history of some slots (a new session in the slot, or a stream gap)."""
        ...
