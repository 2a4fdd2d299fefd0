"""Closed-loop responses of the synthetic sleeper to sound.

Pure decision rules used by :meth:`SyntheticFleet.play <nexus.sources.synthetic.fleet.SyntheticFleet.play>`:

* A pink-noise click that lands on the up-state of a slow oscillation (CLAS, Ngo et al. 2013)
  evokes a slow oscillation and a phase-locked spindle and enlarges the next slow oscillations by
  about 30 % (Ngo et al. report ≈ +20–40 % SO amplitude and more fast-spindle activity in the
  stimulation window).
* Any sound can arouse the sleeper, more likely when loud, in lighter stages, and for sensitive
  sleepers; a mistimed click (not on an up-state) adds a little to that risk.
* A loud prompt in wake, N1 or early N2 can wake the sleeper: the next epochs become wake.
"""

from __future__ import annotations

import math

from nexus.core.stages import Stage

SOUND_KINDS: tuple[str, ...] = ("click", "sound", "prompt")
"""``click``: 50-ms pink-noise burst (CLAS); ``sound``: soundscape or tone; ``prompt``: spoken cue."""

# level in dB SPL at which half of the sounds arouse an average sleeper, per stage
AROUSAL_THRESHOLD_DB = {Stage.W: 200.0, Stage.N1: 48.0, Stage.N2: 56.0, Stage.N3: 66.0, Stage.R: 58.0}
WAKE_THRESHOLD_DB = {Stage.W: 50.0, Stage.N1: 55.0, Stage.N2: 65.0, Stage.N3: 80.0, Stage.R: 70.0}
SO_ENHANCEMENT = 1.3
"""Factor on the amplitude of the slow oscillations that follow an on-target click."""


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def arousal_probability(stage: Stage, level_db: float, sensitivity: float, on_target: bool, kind: str) -> float:
    """Probability that a sound of ``level_db`` dB SPL arouses the sleeper in ``stage``.

    Parameters
    ----------
    stage : Stage
        Stage at the time of the sound.
    level_db : float
        Sound level at the ear, in dB SPL.
    sensitivity : float
        The profile's ``sound_sensitivity`` (0–1, 0.5 = average; each 0.1 shifts the threshold by 4 dB).
    on_target : bool
        For clicks: whether it landed on a slow-oscillation up-state.
    kind : str
        One of :data:`SOUND_KINDS`.
    """
    thr = AROUSAL_THRESHOLD_DB.get(stage, 60.0) - 40.0 * (sensitivity - 0.5)
    if kind == "prompt":
        thr -= 4.0  # speech is more salient than noise
    p = _sigmoid((level_db - thr) / 3.0)
    if kind == "click" and not on_target and stage in (Stage.N1, Stage.N2, Stage.N3, Stage.R):
        p = min(1.0, p + 0.04)
    return p


def wake_probability(stage: Stage, level_db: float, sensitivity: float, kind: str) -> float:
    """Probability that a sound wakes the sleeper (only prompts and loud sounds do)."""
    if kind == "click":
        return 0.0
    thr = WAKE_THRESHOLD_DB.get(stage, 70.0) - 40.0 * (sensitivity - 0.5)
    return _sigmoid((level_db - thr) / 3.0)
