"""The guard of a lane: each bed's consent and the anti-exploitation policy, applied in the live loop.

:class:`LaneGuard` belongs to a :class:`~nexus.facility.closed_loop.DreamscapeLoop`. It keeps one
:class:`~nexus.guard.runtime.SessionGuard` per slot and does three things:

* at assignment and at every program change, the program is cut down to what the client's consent allows
  (:func:`~nexus.guard.consent.plan_night`, :func:`~nexus.guard.consent.restrict_program`), so the controller
  never decides what it may not play;
* after every controller step, each command is screened (consent now, and after distress only silence or a
  quiet soothing sound; a stimulus driven by psyche data is refused) before it reaches a sink — the runtime
  guard of the policy, for whatever slipped through the program checks;
* a refused command is dropped and its decision replaced by a ``guard_refused`` decision (the command, the
  rule and the reason) that the recorder journals and the facility stores and audits like any other.

Cost: the distress marks are one vectorised update per step; Python work is per command (a few per bed and
minute), never per sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.dreamscape.controller import Command, Decision
from nexus.dreamscape.schema import Program
from nexus.guard.consent import Scope, plan_night, restrict_program
from nexus.guard.exploitation import STIMULI, check_program
from nexus.guard.runtime import SessionGuard, command_dict

ALL_SCOPES: tuple[str, ...] = tuple(s.value for s in Scope if s is not Scope.OPT_OUT_NATURAL_NIGHTS)
"""The scopes a bed runs under when its caller gives none (a dry run of a program on synthetic sleepers)."""

REFUSED = "guard_refused"
"""Decision kind of a command the guard refused."""


class LaneGuard:
    """Consent and anti-exploitation guard of every slot of a lane.

    Parameters
    ----------
    capacity : int
        Slots of the lane.
    """

    def __init__(self, capacity: int) -> None:
        self.guards: list[SessionGuard | None] = [None] * capacity
        self.written: list[Program | None] = [None] * capacity
        """Each slot's program as written (before consent took anything out)."""
        self.refused = np.zeros(capacity, dtype=np.int64)
        """Commands refused per slot since its session started."""
        self.open = np.zeros(capacity, dtype=bool)
        """Slots with a distress episode open at the last step."""

    def assign(self, slot: int, program: Program | None, scopes: Iterable[str] | None) -> tuple[Program | None,
                                                                                                list[str]]:
        """Start guarding a slot; return the program the controller may run under consent, and why it changed.

        ``scopes`` None means every scope (a dry run without clients); ``program`` None is a natural night.
        """
        sc = list(ALL_SCOPES if scopes is None else scopes)
        self.written[slot] = program
        self.refused[slot] = 0
        self.open[slot] = False
        run, why = self.allowed_program(program, sc)
        self.guards[slot] = SessionGuard(str(slot), sc, run)
        return run, why

    @staticmethod
    def allowed_program(program: Program | None, scopes: Sequence[str], *,
                        running: bool = False) -> tuple[Program | None, list[str]]:
        """``program`` cut down to ``scopes``, and one line per thing taken out.

        When nothing may play the result is None at the start of a night (a natural night), and for a
        ``running`` night the program with every sound taken out (its rules all silence), so that the
        controller silences the bed at its next step and keeps its place in the night.
        """
        if program is None:
            return None, []
        plan = plan_night(scopes, program)
        why = [r for r in plan.reasons if "psyche_monitoring" not in r]
        if (not plan.run or plan.mode == "record_only") and not running:
            return None, why
        return (restrict_program(program, plan) if why else program), why

    def scopes(self, slot: int) -> list[str]:
        """The consent scopes a slot runs under now (empty for a free slot)."""
        g = self.guards[slot]
        return [] if g is None else list(g.scopes)

    def release(self, slot: int) -> None:
        """Stop guarding a slot (its session ended)."""
        self.guards[slot] = None
        self.written[slot] = None

    def set_scopes(self, slot: int, scopes: Iterable[str]) -> tuple[Program | None, list[str]]:
        """New consent for a running slot: the program it may run now (None: nothing may play) and why."""
        g = self.guards[slot]
        sc = list(scopes)
        if g is None:
            return None, []
        g.set_scopes(sc)
        run, why = self.allowed_program(self.written[slot], sc, running=True)
        g.set_program(run)
        return run, why

    def set_program(self, slot: int, program: Program) -> tuple[Program | None, list[str], list[str]]:
        """A program change: (the program to run under consent, what consent took out, policy violations).

        With violations nothing changes and the slot keeps its program.
        """
        violations = [str(v) for v in check_program(program)]
        g = self.guards[slot]
        if violations or g is None:
            return None, [], violations
        self.written[slot] = program
        run, why = self.allowed_program(program, g.scopes, running=True)
        g.set_program(run)
        return run, why, []

    def screen(self, t: float, cmds: list[Command], decisions: list[Decision],
               distress: npt.NDArray[np.bool_]) -> tuple[list[Command], list[Decision]]:
        """The commands that may play and the decisions to journal (refused ones as ``guard_refused``).

        Parameters
        ----------
        t : float
            End of the step on the lane clock, in s (distress flags are marked at it).
        cmds, decisions : list
            The controller's commands and decisions of the step.
        distress : ndarray of bool, shape (capacity,)
            Slots with an open distress episode in this step.

        Notes
        -----
        While an episode is open no stimulus passes; after it, none for the hold (at least five minutes, or the
        program's distress response) counted from the episode's onset, as the controller counts it.
        """
        onsets = distress & ~self.open
        if onsets.any():
            for s in np.flatnonzero(onsets).tolist():
                g = self.guards[s]
                if g is not None:
                    g.exploitation.last_distress = float(t)
        self.open = distress.copy()
        if not cmds:
            return cmds, decisions
        basis = {id(d.command): d for d in decisions if d.command is not None}
        ok: list[Command] = []
        swap: dict[int, Decision] = {}
        for c in cmds:
            g = self.guards[c.session]
            d = basis.get(id(c))
            if g is None:
                ok.append(c)
                continue
            if self.open[c.session] and c.kind in STIMULI:
                allowed, rule, reason = False, "anti_exploitation", (f"'{c.kind}' during a distress episode: only "
                                                                     "silence or a soothing sound may play")
            else:
                allowed, rule, reason = g.check(c.t, c, inputs=None if d is None else d.inputs)
            if allowed:
                ok.append(c)
                continue
            self.refused[c.session] += 1
            inputs = {"rule": rule, "command": command_dict(c)}
            if d is not None:
                inputs |= {"decided": d.kind, "inputs": d.inputs, "decided_because": d.reason}
            swap[id(c)] = Decision(float(c.t), int(c.session), REFUSED, None, inputs, f"Refused ({rule}): {reason}.")
        if not swap:
            return ok, decisions
        out = [swap.pop(id(d.command), d) if d.command is not None else d for d in decisions]
        out += list(swap.values())  # refused commands that had no decision of their own
        return ok, out


def refusal(decision: dict[str, Any]) -> bool:
    """Whether a journaled decision (a dict) is a guard refusal."""
    return decision.get("kind", decision.get("description")) == REFUSED
