"""The plan of one synthetic night: true hypnogram, scheduled events, arousals and distress.

A plan is drawn once per session (cheap: a few thousand events) and then rendered in chunks by
:class:`~nexus.sources.synthetic.fleet.SyntheticFleet`, so whole-night signals are never held.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.stages import EPOCH_S
from nexus.sources.synthetic.architecture import generate_hypnogram
from nexus.sources.synthetic.profile import SleeperProfile
from nexus.sources.synthetic.psyche import DistressTable, place_distress
from nexus.sources.synthetic.signals import KernelTable

# kind → (events per minute in W, N1, N2, N3, R), (low, high) peak-to-peak amplitude in µV
EVENT_RATES: dict[str, tuple[tuple[float, ...], tuple[float, float]]] = {
    "slow_oscillation": ((0.0, 0.0, 1.5, 38.0, 0.0), (80.0, 190.0)),
    "k_complex": ((0.0, 0.1, 1.5, 0.3, 0.0), (100.0, 200.0)),
    "vertex_wave": ((0.0, 2.5, 0.3, 0.0, 0.0), (40.0, 80.0)),
    "spindle": ((0.0, 0.2, 4.5, 1.5, 0.0), (25.0, 60.0)),
    "sawtooth": ((0.0, 0.0, 0.0, 0.0, 1.5), (30.0, 60.0)),
    "rem": ((0.0, 0.0, 0.0, 0.0, 18.0), (60.0, 200.0)),
    "saccade": ((15.0, 1.0, 0.0, 0.0, 0.0), (50.0, 150.0)),
    "sem": ((2.0, 6.0, 0.3, 0.0, 0.0), (50.0, 120.0)),
    "blink": ((12.0, 0.5, 0.0, 0.0, 0.0), (80.0, 200.0)),
    "twitch": ((0.0, 0.0, 0.4, 0.0, 6.0), (20.0, 50.0)),
    "emg_burst": ((1.5, 0.2, 0.0, 0.0, 0.0), (30.0, 80.0)),
    "movement": ((1.0, 0.1, 0.0, 0.0, 0.0), (1.0, 3.0)),
}
SIGNED = {"rem", "saccade", "sem"}  # horizontal eye movements go left or right
AROUSALS_PER_HOUR = (0.0, 6.0, 8.0, 4.0, 3.0)


@dataclass
class NightPlan:
    """Everything drawn in advance for one night.

    Attributes
    ----------
    stages : ndarray of int8, shape (n_epochs,)
        True hypnogram (YASA codes).
    ev_onset : ndarray of int64
        Event onsets in samples, sorted.
    ev_kernel : ndarray of int64
        Kernel index per event (see :class:`~nexus.sources.synthetic.signals.KernelTable`).
    ev_amp : ndarray of float32
        Signed peak-to-peak amplitude in µV (milli-g for movements).
    arousal_onset, arousal_duration : ndarray of float
        Arousals in seconds.
    distress : DistressTable
        Distress episodes.
    hr0, rr0 : float
        Baseline heart rate (bpm) and breathing rate (breaths/min) in N2.
    gains : ndarray, shape (n_spectral_sources,)
        Per-sleeper amplitude factors of the background.
    posture : ndarray, shape (3,)
        Gravity in milli-g on Acc X, Y, Z.
    """

    stages: npt.NDArray[np.int8]
    ev_onset: npt.NDArray[np.int64]
    ev_kernel: npt.NDArray[np.int64]
    ev_amp: npt.NDArray[np.float32]
    arousal_onset: npt.NDArray[np.float64]
    arousal_duration: npt.NDArray[np.float64]
    distress: DistressTable
    hr0: float
    rr0: float
    gains: npt.NDArray[np.float64]
    posture: npt.NDArray[np.float64]
    swa: float


def swa_decay(t_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Factor of slow-wave amplitude through the night (1 at lights-out, ≈ 0.55 after 8 h)."""
    return 0.5 + 0.5 * np.exp(-np.asarray(t_s, dtype=float) / (3600.0 * 4.0))


def plan_night(
    profile: SleeperProfile,
    n_epochs: int,
    fs: float,
    kernels: KernelTable,
    rng: np.random.Generator,
    distress: int | None = None,
) -> NightPlan:
    """Draw the plan of one night (see :class:`NightPlan`)."""
    stages = generate_hypnogram(profile, n_epochs, rng)
    dis = place_distress(profile, stages, rng, distress)
    onsets: list[npt.NDArray[np.float64]] = []
    kids: list[npt.NDArray[np.int64]] = []
    amps: list[npt.NDArray[np.float64]] = []
    age_amp = float(np.clip(1.2 - 0.008 * (profile.age - 20.0), 0.55, 1.3))
    for kind, (rates, (lo, hi)) in EVENT_RATES.items():
        lam = np.asarray(rates)[stages] * EPOCH_S / 60.0
        if kind == "rem":  # phasic REM: eye movements cluster in bursts
            lam = lam * rng.choice((0.15, 2.0), size=lam.size, p=(0.55, 0.45))
        counts = rng.poisson(lam)
        ep = np.repeat(np.arange(stages.size), counts)
        t = (ep + rng.random(ep.size)) * EPOCH_S
        ids = kernels.ids(kind)
        a = rng.uniform(lo, hi, t.size)
        if kind in ("slow_oscillation", "k_complex"):
            a = np.maximum(a * age_amp * swa_decay(t), lo)  # a slow oscillation is > 75 µV by definition
        if kind in SIGNED:
            a *= rng.choice((-1.0, 1.0), size=t.size)
        onsets.append(t)
        kids.append(rng.choice(ids, size=t.size))
        amps.append(a)
    # arousals: NREM/REM, a few per hour, more with stress and age; each brings EMG and movement
    lam = np.asarray(AROUSALS_PER_HOUR)[stages] * EPOCH_S / 3600.0
    lam *= (1.0 + 2.0 * profile.stress) * (1.0 + 0.015 * max(profile.age - 30.0, 0.0))
    ep = np.repeat(np.arange(stages.size), rng.poisson(lam))
    a_on = np.sort((ep + rng.random(ep.size)) * EPOCH_S)
    a_on = a_on[np.concatenate(([True], np.diff(a_on) > 20.0))] if a_on.size else a_on
    a_dur = rng.uniform(3.0, 14.0, a_on.size)
    burst = kernels.ids("emg_burst")
    move = kernels.ids("movement")
    onsets += [a_on + 0.5, a_on + 0.3]
    kids += [rng.choice(burst, size=a_on.size), rng.choice(move, size=a_on.size)]
    amps += [rng.uniform(20.0, 60.0, a_on.size), rng.uniform(0.5, 2.0, a_on.size)]
    # distress: movement and EMG bursts through each episode
    for o, d in zip(dis.onset, dis.duration, strict=True):
        k = max(1, int(d / 12.0))
        t = o + np.sort(rng.uniform(0.0, d, k))
        onsets += [t, t + 0.2]
        kids += [rng.choice(burst, size=k), rng.choice(move, size=k)]
        amps += [rng.uniform(30.0, 80.0, k), rng.uniform(1.0, 3.0, k)]
    t_all = np.concatenate(onsets)
    order = np.argsort(t_all, kind="stable")
    male = profile.male
    return NightPlan(
        stages=stages,
        ev_onset=np.round(t_all[order] * fs).astype(np.int64),
        ev_kernel=np.concatenate(kids)[order].astype(np.int64),
        ev_amp=np.concatenate(amps)[order].astype(np.float32),
        arousal_onset=a_on,
        arousal_duration=a_dur,
        distress=dis,
        hr0=float(rng.normal(60.0 if male else 64.0, 5.0)),
        rr0=float(rng.normal(14.0, 1.5)),
        gains=rng.lognormal(0.0, 0.12, 3) * np.array([age_amp**0.5, age_amp**0.5, 1.0]),
        posture=np.array([0.0, 0.0, 1000.0]) if rng.random() < 0.6 else np.array([0.0, 1000.0, 0.0]),
        swa=age_amp,
    )
