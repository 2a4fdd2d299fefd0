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
SO_GAIN_SD = 0.35
"""Spread (SD of the log) between sleepers of their slow-wave amplitude (montage, skull, age beyond its trend)."""
SO_GAIN_RANGE = (0.4, 1.6)
SO_EPOCH_SD = 0.15  # epoch-to-epoch wander (SD of the log) of the slow-wave amplitude
SO_SPACING = (1.0, 1.45)  # each wave of a train starts this many of its predecessor's lengths after it ...
SO_PAUSE = (0.2, 2.0)  # ... and a train breaks off with this probability, for an exponential pause (mean, s)
SO_SPINDLE_P = 0.3  # share of N2/N3 slow waves with a spindle riding on their up-state
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
    swa : float
        The sleeper's slow-wave factor (age and individual amplitude); multiplies the delta power.
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


def _slow_wave_trains(
    stages: npt.NDArray[np.int8],
    t_drawn: npt.NDArray[np.float64],
    kernels: KernelTable,
    fs: float,
    level: float,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Slow waves in irregular trains, as many per epoch as drawn in ``t_drawn`` (those that fit the epoch).

    Each epoch's waves follow one another (a wave starts 1–1.45 of the previous one's length after it), with
    pauses; the kernel (0.57–1.43 Hz, varied up-state) is drawn per wave. The peak-to-peak amplitude is
    80–190 µV times the sleeper's ``level``, the epoch's wander and the decay through the night; waves under
    75 µV are ``delta_wave`` events (the slow-oscillation definition starts at 75 µV), down to 10 µV.
    Returns onsets (s), kernel indices and amplitudes (µV), unsorted; spindles ride on some up-states.
    """
    ep = np.sort(np.floor(t_drawn / EPOCH_S).astype(np.int64))
    n = ep.size
    so, dw, sp = kernels.ids("slow_oscillation"), kernels.ids("delta_wave"), kernels.ids("spindle")
    if n == 0:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0)
    shape = rng.integers(0, so.size, n)
    dur = kernels.lengths[so[shape]] / fs
    gap = dur * rng.uniform(*SO_SPACING, n)
    gap += np.where(rng.random(n) < SO_PAUSE[0], rng.exponential(SO_PAUSE[1], n), 0.0)
    first = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])  # first wave of each epoch
    csum = np.cumsum(gap) - gap  # start of each wave relative to the night's first, then to its epoch's first
    rel = csum - np.repeat(csum[first], np.diff(np.r_[first, n]))
    onset = ep * EPOCH_S + rng.uniform(0.0, 1.5, n)[np.repeat(first, np.diff(np.r_[first, n]))] + rel
    wander = rng.lognormal(0.0, SO_EPOCH_SD, stages.size)[ep]
    amp = rng.uniform(80.0, 190.0, n) * level * wander * swa_decay(onset)
    keep = onset + dur <= (ep + 1) * EPOCH_S + 0.5
    big = amp >= 75.0
    kid = np.where(big, so[shape], dw[shape])
    amp = np.maximum(amp, 10.0)
    # spindles on the up-state (slow-oscillation–spindle coupling), in N2 and N3 only
    up_start = np.zeros(so.size)
    for j, k in enumerate(so):
        w = kernels.waves[k, : kernels.lengths[k]]
        lo = int(np.argmin(w))
        up_start[j] = (lo + int(np.argmax(w[lo:] >= 0.0))) / fs
    up_t = onset + up_start[shape]
    ride = keep & (rng.random(n) < SO_SPINDLE_P)
    ride &= np.isin(stages[np.minimum((up_t // EPOCH_S).astype(np.int64), stages.size - 1)], (2, 3))
    k_sp = sp[rng.integers(0, sp.size, n)]
    a_sp = rng.uniform(20.0, 50.0, n)
    return (np.concatenate([onset[keep], up_t[ride]]), np.concatenate([kid[keep], k_sp[ride]]),
            np.concatenate([amp[keep], a_sp[ride]]))


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
        if kind in ("slow_oscillation", "k_complex"):  # (slow oscillations are redrawn below, in trains)
            a = np.maximum(a * age_amp * swa_decay(t), lo)
        if kind in SIGNED:
            a *= rng.choice((-1.0, 1.0), size=t.size)
        onsets.append(t)
        kids.append(rng.choice(ids, size=t.size))
        amps.append(a)
    # slow waves come in irregular trains, with a per-sleeper amplitude: drawn from a stream of their own (the
    # draws above are kept, so the other events, arousals and distress of a seed do not change)
    so_rng = rng.spawn(1)[0]
    so_gain = float(np.clip(so_rng.lognormal(0.0, SO_GAIN_SD), *SO_GAIN_RANGE))
    i_so = list(EVENT_RATES).index("slow_oscillation")
    onsets[i_so], kids[i_so], amps[i_so] = _slow_wave_trains(stages, onsets[i_so], kernels, fs, age_amp * so_gain,
                                                             so_rng)
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
        swa=age_amp * so_gain,
    )
