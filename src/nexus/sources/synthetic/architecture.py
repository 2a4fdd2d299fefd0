"""Sleep architecture: a cycle model that writes the true hypnogram of a synthetic night.

The night is lights-out to lights-on. After a sleep-onset latency, NREM–REM cycles of about
90 min follow: N1 → N2 → N3 (long early, absent late) → N2 → REM (short early, long late), with
brief awakenings at cycle ends and scattered in light sleep, short N2 interruptions of N3 and
short N1/W interruptions of REM. Parameters were calibrated against the 39 expert hypnograms of
Sleep-EDF (sleep-cassette, ages 25–34) and YASA's sample hypnograms (see
``bench/synth_calibration.py``): stage shares of sleep ≈ N1 8 %, N2 51 %, N3 17 %, R 22 %,
REM latency ≈ 80 min, ≈ 80 % of N3 in the first half of the sleep period.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nexus.core.stages import EPOCH_S, Stage
from nexus.sources.synthetic.profile import SleeperProfile

W, N1, N2, N3, R = (int(s) for s in (Stage.W, Stage.N1, Stage.N2, Stage.N3, Stage.R))


def _minutes(x: float) -> int:
    """Whole epochs in ``x`` minutes (at least 0)."""
    return max(0, round(x * 60.0 / EPOCH_S))


def sleep_onset_latency(profile: SleeperProfile, rng: np.random.Generator) -> float:
    """Draw a sleep-onset latency in minutes for ``profile``."""
    median = 9.0 + 25.0 * profile.stress + 8.0 * (0.5 - profile.sleep_pressure) + 0.08 * max(profile.age - 30, 0)
    median += {"morning": -2.0, "intermediate": 0.0, "evening": 5.0}[profile.chronotype]
    return float(np.clip(median * rng.lognormal(0.0, 0.45), 2.0, 120.0))


def generate_hypnogram(profile: SleeperProfile, n_epochs: int, rng: np.random.Generator) -> npt.NDArray[np.int8]:
    """Write the true hypnogram of one night.

    Parameters
    ----------
    profile : SleeperProfile
        Who sleeps.
    n_epochs : int
        Length of the night in 30-s epochs (lights-out to lights-on).
    rng : numpy.random.Generator
        Source of randomness (the night is a pure function of its state).

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
        Stages W=0, N1=1, N2=2, N3=3, R=4 per epoch.
    """
    age = profile.age
    # night-to-night variability: deep-sleep propensity and fragility differ from night to night
    n3_night = float(rng.lognormal(0.0, 0.3))
    fragility = float(rng.lognormal(0.0, 0.5))
    # age effects: N3 falls ~2 %/decade after 20, wake and N1 rise
    n3_gain = float(np.clip(1.25 - 0.017 * (age - 20.0) + 0.5 * (profile.sleep_pressure - 0.5), 0.15, 1.6))
    n3_gain *= n3_night
    wake_gain = (1.0 + 0.025 * max(age - 30.0, 0.0) + 1.5 * profile.stress) * fragility
    segs: list[tuple[int, int]] = [(W, _minutes(sleep_onset_latency(profile, rng)))]
    total = segs[0][1]
    k = 0
    n3_draw = ((25.0, 50.0), (12.0, 32.0), (-8.0, 18.0), (-15.0, 10.0))
    while total < n_epochs:
        cycle_len = float(np.clip(rng.normal(85.0 if k == 0 else 100.0, 14.0), 65.0, 140.0))
        n1 = rng.uniform(3.0, 8.0) if k == 0 else rng.uniform(1.0, 4.0)
        lo, hi = n3_draw[min(k, 3)]
        n3 = max(0.0, n3_gain * rng.uniform(lo, hi))
        rem = float(np.clip(12.0 + 8.0 * k + rng.normal(0.0, 5.0), 3.0, 50.0))
        if k == 0 and rng.random() < 0.12:  # skipped first REM period
            rem = 0.0
        n2 = max(cycle_len - n1 - n3 - rem, 8.0)
        n2a = n2 * rng.uniform(0.25, 0.5) if n3 > 0 else n2 * rng.uniform(0.6, 0.8)
        cycle = [(N1, _minutes(n1)), *_interrupted(N2, _minutes(n2a), N1, rng, rate=0.03)]
        cycle += _interrupted(N3, _minutes(n3), N2, rng, rate=0.08)
        cycle += [*_interrupted(N2, _minutes(n2 - n2a), N1, rng, rate=0.03)]
        cycle += _interrupted(R, _minutes(rem), N1, rng, rate=0.04)
        if rng.random() < min(0.9, 0.45 * wake_gain):  # awakening at the cycle's end
            cycle.append((W, max(1, _minutes(rng.exponential(3.0 * wake_gain)))))
            cycle.append((N1, int(rng.integers(1, 4))))
        for stage, n in cycle:
            segs.append((stage, n))
            total += n
        k += 1
    hyp = np.concatenate([np.full(n, s, dtype=np.int8) for s, n in segs if n > 0])[:n_epochs]
    hyp = _scatter_awakenings(hyp, wake_gain, rng)
    # lights-on: the last minutes are often awake
    tail = _minutes(rng.exponential(4.0))
    if tail:
        hyp[-tail:] = W
    return hyp


def _interrupted(stage: int, n: int, other: int, rng: np.random.Generator, rate: float) -> list[tuple[int, int]]:
    """Split a bout of ``n`` epochs of ``stage`` with short bouts of ``other`` (``rate`` per epoch)."""
    out: list[tuple[int, int]] = []
    left = n
    while left > 0:
        run = min(left, max(2, int(rng.exponential(1.0 / rate))))
        out.append((stage, run))
        left -= run
        if left > 2:
            out.append((other, int(rng.integers(1, 3))))
    return out


def _scatter_awakenings(hyp: npt.NDArray[np.int8], wake_gain: float, rng: np.random.Generator) -> npt.NDArray[np.int8]:
    """Add brief awakenings (1–3 epochs, followed by an N1 epoch) inside light sleep."""
    sleep = np.flatnonzero(np.isin(hyp, (N1, N2)))
    if sleep.size == 0:
        return hyp
    n = rng.poisson(2.0 * wake_gain * sleep.size / 120.0)
    for i in rng.choice(sleep, size=min(n, sleep.size), replace=False):
        d = int(rng.integers(1, 4))
        hyp[i : i + d] = W
        if i + d < hyp.size:
            hyp[i + d] = N1
    return hyp
