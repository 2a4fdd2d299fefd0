"""Dependency index, natural nights and a weaning plan — pure functions over a client's night summaries.

Orthosomnia (Baron et al. 2017) is the warning: sleep technology can make sleep worse by making people rely on
it. So the Nexus tracks how much a client's nights lean on stimulation, gives a *natural night* (record-only) at
least one night in seven unless the client opts out, and tapers stimulation once natural sleep is stable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nexus.core.checks import plural

NATURAL_EVERY = 7
"""At least one natural night in this many, unless the client opts out."""
STABLE_GAP_PTS = 5.0
"""Natural sleep is stable when its sleep efficiency is within this many points of stimulated nights' ..."""
STABLE_MIN_SE = 80.0
"""... and at least this high (%)."""
MIN_NATURAL_FOR_PLAN = 2
"""Natural nights needed before a plan can be judged."""
TAPER: tuple[tuple[int, float], ...] = ((2, 0.75), (3, 0.5), (4, 0.25), (7, 0.0))
"""Weaning weeks: (natural nights per week, stimulation dose relative to now)."""


@dataclass(frozen=True)
class NightSummary:
    """One night of a client, as the dependency index reads it.

    Attributes
    ----------
    night : str
        The date of lights-out, ``YYYY-MM-DD`` (nights are ordered by it).
    stimulated : bool
        Whether anything stimulated (CLAS clicks or cues); a natural night is record-only.
    stimuli : int
        Clicks and cues played.
    se : float or None
        Sleep efficiency in %, ``None`` when unknown.
    """

    night: str
    stimulated: bool
    stimuli: int = 0
    se: float | None = None


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


@dataclass(frozen=True)
class DependencyIndex:
    """How much a client's nights lean on stimulation.

    Attributes
    ----------
    nights, stimulated_nights, natural_nights : int
    share_stimulated : float
        Share of nights with stimulation (0..1).
    mean_dose : float
        Stimuli per stimulated night.
    se_natural, se_stimulated : float or None
        Mean sleep efficiency (%) on natural and on stimulated nights.
    gap_pts : float or None
        ``se_stimulated - se_natural``: how much worse sleep is without stimulation.
    share_trend : float or None
        Share of stimulated nights in the last 7 minus the 7 before (positive: growing reliance).
    level : str
        ``low``, ``moderate`` or ``high``; ``unknown`` with no nights.
    """

    nights: int
    stimulated_nights: int
    natural_nights: int
    share_stimulated: float
    mean_dose: float
    se_natural: float | None
    se_stimulated: float | None
    gap_pts: float | None
    share_trend: float | None
    level: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (client view, export)."""
        return dict(self.__dict__)


def dependency_index(nights: Sequence[NightSummary]) -> DependencyIndex:
    """The dependency index of a client's nights (any order; sorted by date here).

    Notes
    -----
    ``level`` is ``high`` when at least 85 % of nights are stimulated and sleep without stimulation is either
    unmeasured or ``STABLE_GAP_PTS`` or more worse; ``moderate`` from 60 %; ``low`` below.
    """
    ns = sorted(nights, key=lambda n: n.night)
    stim = [n for n in ns if n.stimulated]
    nat = [n for n in ns if not n.stimulated]
    share = len(stim) / len(ns) if ns else 0.0
    se_s = _mean([n.se for n in stim if n.se is not None and math.isfinite(n.se)])
    se_n = _mean([n.se for n in nat if n.se is not None and math.isfinite(n.se)])
    gap = se_s - se_n if se_s is not None and se_n is not None else None
    trend = None
    if len(ns) >= 14:
        last, before = ns[-7:], ns[-14:-7]
        trend = (sum(n.stimulated for n in last) - sum(n.stimulated for n in before)) / 7.0
    if not ns:
        level = "unknown"
    elif share >= 0.85 and (gap is None or gap >= STABLE_GAP_PTS):
        level = "high"
    elif share >= 0.6:
        level = "moderate"
    else:
        level = "low"
    return DependencyIndex(len(ns), len(stim), len(nat), share, _mean([float(n.stimuli) for n in stim]) or 0.0,
                           se_n, se_s, gap, trend, level)


def natural_night_due(nights: Sequence[NightSummary], *, opt_out: bool = False,
                      every: int = NATURAL_EVERY) -> tuple[bool, str]:
    """Whether tonight should be a natural (record-only) night, and why.

    One in ``every`` nights is natural: tonight is, when none of the last ``every - 1`` nights was.
    """
    if opt_out:
        return False, "the client opted out of scheduled natural nights"
    recent = sorted(nights, key=lambda n: n.night)[-(every - 1):]
    if len(recent) < every - 1:
        return False, f"{plural(len(recent), 'night')} so far; a natural night comes at least once every {every} nights"
    last = plural(every - 1, "night")
    if all(n.stimulated for n in recent):
        return True, f"no natural night in the last {last}: tonight is record-only (at least one in {every})"
    return False, f"a natural night was among the last {last}"


@dataclass(frozen=True)
class WeaningPlan:
    """A taper of stimulation: one step per week, or a reason why not yet."""

    start: bool
    reason: str
    weeks: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"start": self.start, "reason": self.reason, "weeks": list(self.weeks)}


def weaning_plan(nights: Sequence[NightSummary]) -> WeaningPlan:
    """Taper stimulation when natural sleep is stable; otherwise keep natural nights going and say why."""
    idx = dependency_index(nights)
    keep = [{"week": 1, "natural_nights": 1, "dose_factor": 1.0}]
    if idx.stimulated_nights == 0:
        return WeaningPlan(False, "no stimulated nights: nothing to taper", [])
    if idx.natural_nights < MIN_NATURAL_FOR_PLAN or idx.se_natural is None or idx.se_stimulated is None:
        return WeaningPlan(False, f"only {plural(idx.natural_nights, 'natural night')} with a sleep score; "
                                  f"{MIN_NATURAL_FOR_PLAN} are needed to judge natural sleep", keep)
    if idx.se_natural < STABLE_MIN_SE or (idx.gap_pts or 0.0) > STABLE_GAP_PTS:
        return WeaningPlan(False, f"natural sleep not stable yet: SE {idx.se_natural:.1f} % natural vs "
                                  f"{idx.se_stimulated:.1f} % stimulated (needs ≥ {STABLE_MIN_SE:g} % and within "
                                  f"{STABLE_GAP_PTS:g} points)", keep)
    weeks = [{"week": i + 1, "natural_nights": n, "dose_factor": f} for i, (n, f) in enumerate(TAPER)]
    return WeaningPlan(True, f"natural sleep is stable (SE {idx.se_natural:.1f} % natural vs "
                             f"{idx.se_stimulated:.1f} % stimulated): taper over {len(TAPER)} weeks", weeks)
