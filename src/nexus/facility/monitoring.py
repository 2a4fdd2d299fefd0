"""The glitch monitor in the lane: technical faults and distress from the raw signals, every step.

:class:`GlitchWatch` runs :class:`~nexus.monitor.live.GlitchMonitor` on the unfiltered block (the
clean-up filter would hide line noise, flat lines and clipping), with the stage and the arousals
that the analyzers before it found. Its glitches go to the supervisor (journaled, rate-free: the
monitor already debounces them into episodes), and its flags go into the step context for the
dreamscape loop after it: an open technical glitch pauses stimulation for that bed, an open
distress episode makes its program go quiet or soothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nexus.facility.pipeline import Lane
from nexus.facility.step import SlotGlitch, StepContext, StepResult
from nexus.monitor.live import GlitchMonitor


class GlitchWatch:
    """The glitch monitor of a lane (slots are named by their index; the supervisor names sessions)."""

    name = "monitor"
    reads_raw = "all"

    def __init__(self, lane: Lane) -> None:
        self.capacity = lane.capacity
        self.monitor = GlitchMonitor(lane.capacity, lane.channels, lane.fs,
                                     sessions=[str(k) for k in range(lane.capacity)])

    def step(self, ctx: StepContext) -> StepResult:
        """Judge the raw block; return the glitches opened or closed and the beds' glitch/distress flags."""
        if ctx.raw_block is not None:
            raw = ctx.raw_block
        elif ctx.raw:
            raw = np.stack([ctx.raw[r] for r in range(len(ctx.channels))], axis=1)
        else:
            raw = ctx.block
        arousal = np.zeros(self.capacity, dtype=np.int64)
        for ev in ctx.events_of("arousal"):
            np.add.at(arousal, ev.session, 1)
        found = self.monitor.step(raw, ctx.active, ctx.t_end, stages=ctx.stage, arousals=arousal)
        glitches = [SlotGlitch(int(g.session), float(g.onset_s), g.kind, g.message, g.channel, g.duration_s,
                               dict(g.evidence)) for g in found]
        return StepResult(glitches=glitches, glitch=self.monitor.active_flags().copy(),
                          distress=self.monitor.psyche_flags().copy())

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """New sessions in ``slots``: their episodes and windows are forgotten."""
        idx = np.asarray(slots, dtype=np.intp)
        self.monitor.reset(idx, [str(int(k)) for k in idx])


def glitch_watch(lane: Lane) -> GlitchWatch:
    """The :class:`GlitchWatch` of a lane."""
    return GlitchWatch(lane)
