"""What a client's night plays tonight: consent, the natural-night schedule and the weaning plan, in one place.

:func:`plan_tonight` is what the facility asks before a bed starts. In order:

1. consent (:func:`~nexus.guard.consent.plan_night`): no ``recording`` and nothing runs; no ``audio`` and the
   night is record-only; CLAS, memory and incubation cues are taken out without their scopes;
2. the weaning plan (:func:`~nexus.guard.dependency.weaning_plan`): while it runs, the night's stimulation dose
   (CLAS clicks per night, cue repetitions) is scaled by the current week's ``dose_factor``, and natural nights
   come as often as that week asks;
3. natural nights (:func:`~nexus.guard.dependency.natural_night_due`): at least one night in seven is
   record-only unless the client opted out.

The week of a running taper is counted from the night the plan first judged natural sleep stable, in the
current run of such judgments: the plan is judged afresh every night over the nights before it, so a client who
keeps sleeping well moves on one taper week every seven nights, and one whose natural sleep stops being stable
leaves the taper (back to one natural night in seven). Pure functions, no database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nexus.core.checks import plural
from nexus.dreamscape.schema import Program
from nexus.guard.consent import Scope, parse_scopes, plan_night, restrict_program
from nexus.guard.dependency import NATURAL_EVERY, NightSummary, natural_night_due, weaning_plan


@dataclass(frozen=True)
class Tonight:
    """The night a bed starts with, and why.

    Attributes
    ----------
    run : bool
        False when the client's consent does not allow a night at all (no ``recording``).
    program : Program or None
        What plays (None: a natural, record-only night).
    mode : str
        ``"stimulation"``, ``"record_only"`` or ``"refused"``.
    natural : str or None
        Why tonight is a natural night when the schedule or the weaning plan made it one.
    dose_factor : float
        Stimulation dose relative to the program as written (1 without a running weaning plan).
    reasons : list of str
        One line per decision, for the client's view and the audit log.
    """

    run: bool
    program: Program | None
    mode: str
    natural: str | None = None
    dose_factor: float = 1.0
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the audit entry of the night's plan: no names, the audit outlives an erasure)."""
        return {"run": self.run, "mode": self.mode, "plays_program": self.program is not None,
                "natural": self.natural, "dose_factor": self.dose_factor, "reasons": list(self.reasons)}


def scale_dose(program: Program, factor: float) -> Program:
    """The program with CLAS clicks per night and cue repetitions scaled by ``factor`` (0..1), rounded down.

    A CLAS block or cue whose count falls to zero is taken out.
    """
    f = min(max(float(factor), 0.0), 1.0)
    if f >= 1.0:
        return program
    doc = program.model_dump(mode="json", exclude_none=True)
    for sc in doc.get("scenes", {}).values():
        clas = sc.get("clas")
        if clas is not None:
            n = math.floor(int(clas.get("max_per_night", 600)) * f)
            if n < 1:
                sc.pop("clas")
            else:
                clas["max_per_night"] = n
        cues = []
        for c in sc.get("cues", []):
            n = math.floor(int(c.get("max", 5)) * f)
            if n >= 1:
                cues.append({**c, "max": n})
        sc["cues"] = cues
    return Program.model_validate(doc)


HISTORY = 8 * NATURAL_EVERY
"""Nights read back to find when a running taper started."""


def _taper_week(nights: Sequence[NightSummary], weeks: list[dict[str, float]]) -> dict[str, float]:
    """The current taper week: nights since the plan started (in its current run of judgments) // 7."""
    ns = sorted(nights, key=lambda n: n.night)[-HISTORY:]
    run = 0
    for i in range(len(ns) - 1, -1, -1):  # judged before night i: was natural sleep stable then?
        if not weaning_plan(ns[:i]).start:
            break
        run += 1
    return weeks[min(run // NATURAL_EVERY, len(weeks) - 1)]


def plan_tonight(scopes: Iterable[str], nights: Sequence[NightSummary], program: Program | None) -> Tonight:
    """Decide tonight's night for a client: consent, then the weaning plan, then the natural-night schedule.

    Parameters
    ----------
    scopes : iterable of str
        The client's consent scopes now (see :mod:`nexus.guard.consent`).
    nights : sequence of NightSummary
        The client's earlier nights (any order).
    program : Program or None
        The client's program as written (None: a natural night was asked for).
    """
    have = set(parse_scopes(scopes))
    plan = plan_night(have, program)
    reasons = list(plan.reasons)
    if not plan.run:
        return Tonight(False, None, "refused", reasons=reasons)
    if program is None or plan.mode == "record_only":
        return Tonight(True, None, "record_only", reasons=reasons or ["no program: a natural night"])
    opt_out = Scope.OPT_OUT_NATURAL_NIGHTS in have
    wean = weaning_plan(nights)
    factor, natural = 1.0, None
    if wean.start:
        week = _taper_week(nights, wean.weeks)
        factor = float(week["dose_factor"])
        reasons.append(f"weaning plan, week {int(week['week'])}: {wean.reason}; stimulation dose x{factor:g}, "
                       f"{plural(int(week['natural_nights']), 'natural night')} a week")
        recent = sorted(nights, key=lambda n: n.night)[-(NATURAL_EVERY - 1):]
        if factor <= 0.0:
            natural = f"weaning plan, week {int(week['week'])}: every night is natural now"
        elif not opt_out and sum(not n.stimulated for n in recent) < int(week["natural_nights"]):
            natural = (f"weaning plan, week {int(week['week'])}: {int(week['natural_nights'])} natural nights a "
                       "week and tonight is one")
    if natural is None:
        due, why = natural_night_due(nights, opt_out=opt_out)
        if due:
            natural = why
        elif opt_out:
            reasons.append(why)
    if natural is not None:
        return Tonight(True, None, "record_only", natural, factor, [*reasons, f"natural night: {natural}"])
    removed = [r for r in plan.reasons if "psyche_monitoring" not in r]
    prog = restrict_program(program, plan) if removed else program
    if factor < 1.0:
        prog = scale_dose(prog, factor)
    return Tonight(True, prog, "stimulation", None, factor, reasons)
