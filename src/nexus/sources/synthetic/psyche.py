"""Psyche of the synthetic sleeper: distress episodes (nightmares).

An episode happens mostly in REM (late REM periods more than early ones), lasts 1–4 min, raises the
heart rate by 20–40 bpm, speeds up breathing, brings movement and chin-EMG bursts, and often ends
in an awakening (the epochs after it become wake in the true hypnogram).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.stages import EPOCH_S, Stage
from nexus.sources.synthetic.profile import SleeperProfile


@dataclass
class DistressTable:
    """Distress episodes of one night (arrays of equal length).

    Attributes
    ----------
    onset, duration : ndarray of float
        In seconds from lights-out.
    hr_surge : ndarray of float
        Peak heart-rate increase in bpm.
    woke : ndarray of bool
        Whether the episode ended in an awakening.
    """

    onset: npt.NDArray[np.float64]
    duration: npt.NDArray[np.float64]
    hr_surge: npt.NDArray[np.float64]
    woke: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.onset.size)


def place_distress(
    profile: SleeperProfile, stages: npt.NDArray[np.int8], rng: np.random.Generator, n: int | None = None
) -> DistressTable:
    """Place distress episodes in a night and write their awakenings into ``stages`` (in place).

    Parameters
    ----------
    profile : SleeperProfile
        Its ``nightmare_propensity`` gives the expected count (``3 × propensity``) when ``n`` is None.
    stages : ndarray of int8
        The true hypnogram; epochs after an episode that wakes the sleeper are set to W.
    rng : numpy.random.Generator
        Randomness.
    n : int, optional
        Exact number of episodes (``--distress N``).
    """
    count = int(rng.poisson(3.0 * profile.nightmare_propensity)) if n is None else int(n)
    n_ep = stages.size
    # candidates: mostly REM epochs (weighted later in the night), sometimes N1/N2
    weight = np.where(stages == Stage.R, 1.0, np.where(np.isin(stages, (Stage.N1, Stage.N2)), 0.08, 0.0))
    weight *= 0.5 + np.arange(n_ep) / max(n_ep, 1)
    weight[: min(n_ep, 20)] = 0.0
    weight[max(n_ep - 8, 0) :] = 0.0
    if count == 0 or weight.sum() <= 0:
        z = np.zeros(0)
        return DistressTable(z, z.copy(), z.copy(), np.zeros(0, dtype=bool))
    onset_ep = np.sort(rng.choice(n_ep, size=count, replace=count > np.count_nonzero(weight), p=weight / weight.sum()))
    frac = rng.uniform(0.0, 1.0, count)
    onset = (onset_ep + frac) * EPOCH_S
    duration = rng.uniform(60.0, 240.0, count)
    surge = rng.uniform(20.0, 40.0, count)
    woke = rng.random(count) < 0.7
    # in onset order, an episode drawn inside the one before, or inside the wake its awakening wrote, begins in
    # the first sleep epoch (R, N1, N2) after it instead: a nightmare is a dream (the wake epochs held a second
    # nightmare 0.3-4 min after the first in 2 of 6 four-hour nights of seeds 11101-11106); one that no longer
    # fits in the night is left out
    keep = np.ones(count, dtype=bool)
    free = 0  # first epoch the next episode may begin in
    for i in range(count):
        if onset_ep[i] < free:
            later = np.flatnonzero((weight[free:] > 0) & np.isin(stages[free:], (Stage.R, Stage.N1, Stage.N2)))
            if later.size == 0:
                keep[i] = False
                continue
            onset_ep[i] = free + later[0]
            onset[i] = (onset_ep[i] + frac[i]) * EPOCH_S
        end_ep = int((onset[i] + duration[i]) // EPOCH_S)
        free = end_ep + 2  # a whole epoch between two episodes
        if woke[i]:
            first = end_ep + 1
            k = int(rng.integers(2, 7))
            stages[first : first + k] = Stage.W
            if first + k < n_ep:
                stages[first + k] = Stage.N1
            free = first + k
    return DistressTable(onset[keep], duration[keep], surge[keep], woke[keep])
