"""The closed loop of a lane: every bed's dreamscape, played to its sink at each step.

:class:`DreamscapeLoop` is the last analyzer of a facility lane. At each step it hands one
batched :class:`~nexus.dreamscape.controller.Controller` (one row per slot) what the analyzers
before it found — the hypnodensity (stage probabilities), the arousals, the slow-wave
down-states, the glitch and distress flags — and the EEG for closed-loop auditory stimulation
(CLAS). The commands go to each bed's sink (:class:`~nexus.sinks.bedside.SinkBank`), every
running bed's lease is renewed, and every decision comes back in the step's
:class:`~nexus.facility.step.CommandBatch` for the recorder to journal and store.

A bed whose program raises, or whose sink fails, goes to the safe state with a system glitch;
the other beds go on. A bed without a program (a natural night) is recorded and staged like
the others and hears nothing.

Times: the controller runs on the lane's stream clock (seconds since the lane started); a bed's
wake window is shifted by its own lights-out when it is assigned. The CLAS prediction horizon is
the sound path's latency plus the live tick (a crossing found anywhere in a tick must still lie
ahead when the tick has been processed); in real time, clicks that would arrive late are dropped
by the sink bank, never played on the wrong phase. The controller decides sample by sample from
causal estimates, so its decisions do not depend on how samples are chunked: a fast-forward lane
may step in longer blocks and still make the decisions of a live facility ticking every
``tick_s``; its sinks then receive each command with its exact time, which may lie inside the
block just processed (a synthetic sleeper judges the sound at that time and responds from the
first sample it has not generated yet).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.log import logger
from nexus.core.montage import channel_roles
from nexus.dreamscape.check import Issue, check_text
from nexus.dreamscape.controller import Command, Controller, Decision
from nexus.dreamscape.schema import Program
from nexus.dsp.filters import StatefulFilter, bandpass_sos
from nexus.facility.guarding import LaneGuard
from nexus.facility.pipeline import Lane
from nexus.facility.step import CommandBatch, SlotGlitch, StepContext, StepResult
from nexus.safety.extraction import Action, ExtractionMachine, ExtractionMode, OrderOutcome, WakeRamp
from nexus.sinks.bedside import BedSink, SinkBank

PROCESSING_S = 0.045
"""Allowance for the step's own processing time, in s (the sample-to-command p99 measured at 1000 beds was 44 ms)."""

SO_BAND_HZ = (0.5, 2.0)
"""Band of the slow-oscillation power tracked per bed in N3, in Hz."""

COUNTED = ("click", "cue", "scene", "protect", "wake", "silence")


class DreamscapeLoop:
    """The batched dreamscape controller of a lane, its sinks and leases.

    Parameters
    ----------
    lane : Lane
        The lane (its first EEG channel drives CLAS).
    block_s : float
        The live tick, in s (part of the CLAS prediction horizon).
    sound_latency_s : float
        Latency of the sound path (sink buffer to the ear), in s.
    lease_s : float
        Lease renewed at each step, in s.
    stimulate : bool
        False runs a sham: every decision is made and logged, no click is played.
    """

    name = "dreamscape"

    def __init__(self, lane: Lane, *, block_s: float = 0.1, sound_latency_s: float = 0.05, lease_s: float = 2.0,
                 stimulate: bool = True) -> None:
        roles = channel_roles(lane.channels)
        self.eeg = roles["eeg"][0]
        self.reads_raw = (self.eeg,)  # CLAS phase from the unfiltered EEG (the clean-up high-pass shifts it)
        self.capacity = lane.capacity
        self.fs = lane.fs
        # CLAS decides at the end of each live tick for crossings still ahead: horizons from the sound path's
        # latency plus the processing allowance to one tick beyond
        self.ctrl = Controller([None] * lane.capacity, lane.fs, latency_s=sound_latency_s + PROCESSING_S,
                               stimulate=stimulate, tick_s=block_s)
        self.bank = SinkBank(lane.capacity, lease_s=max(lease_s, 3 * block_s))
        self.counts = {k: np.zeros(lane.capacity, dtype=np.int64) for k in COUNTED}
        """Commands played per slot and kind (since the slot's session started)."""
        self.late = np.zeros(lane.capacity, dtype=np.int64)
        self.so_power = np.zeros(lane.capacity)  # sum of squared 0.5-2 Hz EEG while the live stage is N3, µV²
        self.so_samples = np.zeros(lane.capacity, dtype=np.int64)
        self._so = StatefulFilter(bandpass_sos(*SO_BAND_HZ, fs=lane.fs, order=2), (lane.capacity,), init="zeros")
        self._failed_seen = np.zeros(lane.capacity, dtype=bool)
        self.has_program = np.zeros(lane.capacity, dtype=bool)
        self.extraction = ExtractionMachine(lane.capacity)
        """Each bed's extraction (see :meth:`extract`)."""
        self.guard = LaneGuard(lane.capacity)
        """Each bed's consent and the anti-exploitation policy (see :mod:`nexus.facility.guarding`)."""

    # -- beds ------------------------------------------------------------------------------------
    def assign(self, slot: int, program: Program | None, sink: BedSink | None, *, t_start: float,
               scopes: Sequence[str] | None = None) -> None:
        """Start a bed: its program (None: natural night), its sink, lights-out at lane time ``t_start`` (s).

        The program runs cut down to the client's consent ``scopes`` (None: every scope, for dry runs without
        clients); what consent took out is journaled as a ``consent_applied`` decision.
        """
        run, why = self.guard.assign(slot, program, scopes)
        self.ctrl.assign(slot, run, t_start=t_start)
        if why:
            self.ctrl.note(t_start, slot, "consent_applied", {"scopes": list(self.guard.scopes(slot)), "removed": why},
                           "The program runs as far as the client's consent allows: " + "; ".join(why) + ".")
        self.bank.attach(slot, sink)
        self.has_program[slot] = run is not None
        for v in self.counts.values():
            v[slot] = 0
        self.late[slot] = 0
        self.so_power[slot] = 0.0
        self.so_samples[slot] = 0
        self._failed_seen[slot] = False
        self.extraction.clear(slot)

    def release(self, slot: int, t: float) -> BedSink | None:
        """End a bed: its sink goes to the safe state and leaves the bank; its row hears nothing more."""
        self.ctrl.assign(slot, None, t_start=t)
        self.has_program[slot] = False
        self.guard.release(slot)
        return self.bank.detach(slot, t)

    def update_program(self, slot: int, text: str, *, t: float, fmt: str = "yaml") -> Any:
        """Replace a running bed's program if, and only if, the new text passes every check.

        The checks are those of ``nexus dreamscape check`` and the anti-exploitation policy; a refusal is
        journaled as a ``program_rejected`` decision and the bed keeps its program. An accepted program runs
        as far as the client's consent allows.
        """
        report = check_text(text, source=f"session {slot} update", fmt=fmt)
        if not report.ok or report.program is None or not self.has_program[slot]:
            return self.ctrl.update_program(slot, text, fmt=fmt, t=t)  # refused and journaled there
        run, why, violations = self.guard.set_program(slot, report.program)
        if violations:
            report.errors.extend(Issue("", None, f"anti-exploitation policy: {v}") for v in violations)
            self.ctrl.note(t, slot, "program_rejected", {"violations": violations},
                           "The new program breaks the anti-exploitation policy; the session keeps its program.")
            return report
        assert run is not None
        rep = self.ctrl.update_program(slot, json.dumps(run.model_dump(mode="json", exclude_none=True)),
                                       fmt="json", t=t)
        if why:
            self.ctrl.note(t, slot, "consent_applied", {"removed": why},
                           "The new program runs as far as the client's consent allows: " + "; ".join(why) + ".")
        rep.source = report.source
        return rep

    def set_consent(self, slot: int, scopes: Sequence[str], t: float) -> list[str]:
        """New consent scopes for a running bed, effective now; returns what they took out of the program.

        The program is cut down again, a bed that may no longer hear anything is silenced at once, and the
        change is journaled (``consent_changed``).
        """
        had = self.has_program[slot]
        run, why = self.guard.set_scopes(slot, scopes)
        self.ctrl.note(t, slot, "consent_changed", {"scopes": list(scopes), "removed": why},
                       "Consent changed; the night goes on as far as it allows" + (": " + "; ".join(why) if why
                                                                                   else "") + ".")
        if had and run is not None:
            self.ctrl.update_program(slot, json.dumps(run.model_dump(mode="json", exclude_none=True)),
                                     fmt="json", t=t)
            if not self.guard.guards[slot].may_sound():  # type: ignore[union-attr]
                cmd = Command(slot, float(t), "silence", {"for_s": None})
                self.bank.deliver([cmd], t)
                self.ctrl.note(t, slot, "quiet", {"consent": list(scopes)}, "No 'audio' consent: silent at once.")
        return why

    # -- extraction ------------------------------------------------------------------------------
    def extract(self, slot: int, mode: str | ExtractionMode, t: float) -> tuple[OrderOutcome, list[Decision]]:
        """Order the extraction of a bed at lane time ``t`` (s): stimulation stops now, before this returns.

        Returns the outcome (see :class:`~nexus.safety.extraction.ExtractionMachine`) and the
        decisions taken (the order and what was done at once), for the caller to journal. The
        wake and the end follow in later steps (their decisions go out with the step's).
        """
        ramp = None
        prog = self.ctrl.programs[slot]
        if self.has_program[slot] and prog.wake is not None:
            r = prog.wake.ramp
            ramp = WakeRamp(r.sound, r.from_db, r.to_db, r.over_min * 60.0)
        outcome, actions = self.extraction.order(slot, mode, t, ramp)
        decisions = [Decision(float(t), int(slot), "extraction_order", None,
                              {"requested": outcome.requested.value, "mode": outcome.mode.value,
                               "outcome": outcome.outcome}, outcome.reason)]
        cmds = self._apply(actions, t, decisions)
        if cmds:
            rep = self.bank.deliver(cmds, t)
            self._count(cmds, t)
            if rep.failed:
                self.bank.detach(slot, t)
        return outcome, decisions

    def silence_now(self, slot: int, t: float) -> None:
        """Silence a bed that is not under extraction yet, before its order is carried out (cheap)."""
        sink = self.bank.sinks[slot]
        if sink is not None and not self.extraction.extracting[slot]:
            sink.go_safe(t)

    def _apply(self, actions: list[Action], t: float, decisions: list[Decision]) -> list[Command]:
        """Carry out extraction actions; return the commands to deliver (wake ramps)."""
        cmds: list[Command] = []
        for a in actions:
            s = a.slot
            if a.kind in ("stop", "end"):
                if a.kind == "stop":
                    self.ctrl.assign(s, None, t_start=t)  # the program is gone: nothing more is decided
                    self.has_program[s] = False
                sink = self.bank.sinks[s]
                if sink is not None:
                    sink.go_safe(t)
                cmd = Command(s, float(t), "silence", {"for_s": None})
                decisions.append(Decision(float(t), s, f"extraction_{a.kind}", cmd,
                                          {"speaker": sink is not None, "safe": sink is None or sink.safe},
                                          a.reason + ("" if sink is not None else
                                                      " No speaker at this bed: wake the sleeper in person.")))
            elif a.kind == "wake":
                cmd = Command(s, float(t), "wake", dict(a.params))
                cmds.append(cmd)
                decisions.append(Decision(float(t), s, "extraction_wake", cmd, {"speaker": self.bank.sinks[s]
                                                                                 is not None}, a.reason))
        return cmds

    # -- the step --------------------------------------------------------------------------------
    def step(self, ctx: StepContext) -> StepResult:
        """Decide for every bed, play the commands, renew the leases; return commands and decisions."""
        t = ctx.t_end
        eeg = ctx.raw.get(self.eeg, ctx.block[:, self.eeg])
        arousal = np.zeros(self.capacity, dtype=bool)
        for ev in ctx.events_of("arousal"):
            arousal[ev.session] = True
        glitches: list[SlotGlitch] = []
        probs = np.where(ctx.active[:, None], ctx.probs, np.nan)
        try:
            cmds = self.ctrl.step(t, eeg=eeg, probs=probs, arousal=arousal, distress=ctx.distress,
                                  glitch=ctx.glitch)
        except Exception as exc:  # the batched part failed: every bed of the lane goes to the safe state
            logger.error("The dreamscape controller failed (%s: %s): every bed of the lane goes silent.",
                         type(exc).__name__, exc)
            cmds = []
            for s in np.flatnonzero(self.has_program & ctx.active).tolist():
                self.bank.detach(s, t)
                self.ctrl.enabled[s] = False
                glitches.append(SlotGlitch(s, t, "controller_error", f"The controller failed: {exc}. Safe state."))
        # the runtime guard: consent now, and the anti-exploitation policy, before anything reaches a sink
        cmds, self.ctrl.decisions = self.guard.screen(t, cmds, self.ctrl.decisions, ctx.distress & ctx.active)
        done = time.perf_counter()
        newly = np.flatnonzero(self.ctrl.failed & ~self._failed_seen)
        for s in newly.tolist():
            self._failed_seen[s] = True
            self.bank.detach(s, t)  # silent now, and no lease left to lapse
            glitches.append(SlotGlitch(s, t, "controller_error",
                                       "The program of this bed failed; the bed is in the safe state."))
        if self.extraction.extracting.any():
            cmds = cmds + self._apply(self.extraction.advance(t, probs), t, self.ctrl.decisions)
        live = ctx.active & ~self.ctrl.failed
        self.bank.renew(np.flatnonzero(live), t)
        for s in self.bank.expire(t).tolist():
            glitches.append(SlotGlitch(s, t, "lease_lapsed", "The bed's lease lapsed: safe state."))
        # real time: a click due before the end of this block is late; fast-forward: commands keep their
        # exact times (decided as a live facility would, see the module notes)
        rep = self.bank.deliver(cmds, t, late_before=ctx.start_index / ctx.fs if ctx.deterministic else t)
        for s in rep.failed:
            self.ctrl.assign(s, None, t_start=t)  # the bed's program stops: nothing more is decided for it
            self.bank.detach(s, t)
            glitches.append(SlotGlitch(s, t, "sink_error", "The bed's sink failed; it is in the safe state."))
        self._count(cmds, ctx.start_index / ctx.fs if ctx.deterministic else t)
        decisions = self.ctrl.take_decisions()
        lat = [done - ctx.arrived_at for c in cmds if c.kind == "click"]
        self._so_power(eeg, ctx)
        return StepResult(commands=CommandBatch(cmds, decisions, lat), glitches=glitches)

    def _count(self, cmds: list[Any], late: float) -> None:
        for c in cmds:
            if c.kind in self.counts:
                if c.kind == "click" and c.t < late:
                    self.late[c.session] += 1
                    continue
                self.counts[c.kind][c.session] += 1

    def _so_power(self, eeg: npt.NDArray[np.float64], ctx: StepContext) -> None:
        y = self._so.step(np.ascontiguousarray(eeg))
        n3 = ctx.active & (ctx.stage == 3)
        if n3.any():
            self.so_power[n3] += np.einsum("ij,ij->i", y[n3], y[n3])
            self.so_samples[n3] += y.shape[1]

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """A stream gap: the slow-oscillation filter starts afresh (the controller resets its phase on glitches)."""
        self._so.reset(np.asarray(slots, dtype=np.intp))

    def close(self) -> None:
        """Silence and close every sink."""
        self.bank.close()


def dreamscape_loop(*, block_s: float = 0.1, sound_latency_s: float = 0.05,
                    stimulate: bool = True) -> Callable[[Lane], Any]:
    """A factory of :class:`DreamscapeLoop` for lanes that have an EEG channel."""

    def make(lane: Lane) -> Any:
        from nexus.facility.analyzers import _Null

        if not channel_roles(lane.channels)["eeg"] or lane.fs < 20:
            return _Null("dreamscape")
        return DreamscapeLoop(lane, block_s=block_s, sound_latency_s=sound_latency_s, stimulate=stimulate)

    return make
