"""Technical faults, injectable and deterministic: electrode off, pops, clipping, line noise, dropouts, jitter.

A :class:`Fault` names its kind, channel, onset and duration. Faults are applied to generated
samples after the physiology, so the same night with and without faults differs only inside the
fault windows. All randomness derives from the fault itself (its ``seed``), never from the chunking.

Kinds
-----
``electrode_off``
    The channel goes flat (``variant=0``) or drifts by hundreds of µV with mains hum (``variant=1``).
``electrode_pop``
    A step of ±300–800 µV that decays with a 0.5-s time constant, repeated every few seconds.
``clipping``
    The amplifier saturates at its rail of ±``level`` µV (default 100 µV): the channel's gain triples and
    its baseline steps to 0.95 × ``level`` towards one rail (side from the seed), as when an electrode's
    offset potential shifts, so every channel sits on the rail for a good share of the fault. A gain step
    alone left a quiet channel (chin EMG of a few µV) far inside ±100 µV: a fault named clipping that
    never clipped.
``line_noise``
    A 50 Hz (``variant=0``) or 60 Hz (``variant=1``) sinusoid of ``level`` µV (default 40 µV) is added.
``dropped_samples``
    All channels read exactly 0 (the samples were lost; a stream omits them instead).
``clock_jitter``
    Samples are repeated or skipped at random (the amplifier clock wanders by a few samples).

Two more kinds are injectable but not part of ``--faults all`` (:data:`EXTRA_FAULT_KINDS`), for
the glitch monitor's bench and tests:

``flat_line``
    The channel holds one value (a stuck amplifier): ``level`` µV, default 20-80 µV from the seed.
``implausible_amplitude``
    The channel is scaled by ``level`` (default 1000: a corrupt physical range, nV read as µV).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number, check_option

FAULT_KINDS: tuple[str, ...] = (
    "electrode_off",
    "electrode_pop",
    "clipping",
    "line_noise",
    "dropped_samples",
    "clock_jitter",
)
EXTRA_FAULT_KINDS: tuple[str, ...] = ("flat_line", "implausible_amplitude")
"""Injectable kinds left out of ``all`` (see the module docstring)."""
ALL_CHANNELS = "*"


@dataclass(frozen=True)
class Fault:
    """One technical fault.

    Attributes
    ----------
    kind : str
        One of :data:`FAULT_KINDS`.
    channel : str
        Channel name, or ``"*"`` for all channels (``dropped_samples`` and ``clock_jitter`` are always all).
    onset, duration : float
        In seconds from the start of the night.
    level : float
        Kind-specific size in µV (clipping level, line-noise amplitude); 0 = default.
    variant : int
        Kind-specific variant (flat/drifting electrode, 50/60 Hz).
    seed : int
        Randomness of this fault.
    """

    kind: str
    channel: str = ALL_CHANNELS
    onset: float = 0.0
    duration: float = 60.0
    level: float = 0.0
    variant: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        check_option("fault", self.kind, FAULT_KINDS + EXTRA_FAULT_KINDS)
        check_number("fault onset", self.onset, ge=0, unit="s")
        check_number("fault duration", self.duration, gt=0, unit="s")

    @property
    def label(self) -> str:
        """EDF+ annotation text, e.g. ``"fault:electrode_off C4-M1"``."""
        ch = "all" if self.channel == ALL_CHANNELS else self.channel.split(" ", 1)[-1]
        return f"fault:{self.kind} {ch}"


def schedule_faults(kinds: Sequence[str], hours: float, channels: Sequence[str], seed: int) -> tuple[Fault, ...]:
    """Place one fault of each kind in ``kinds`` through the night, deterministically from ``seed``.

    Onsets are spread over the night (never in the first 10 min), durations 30–180 s, channels
    chosen among the electrophysiology channels present.
    """
    for k in kinds:
        check_option("fault", k, FAULT_KINDS + EXTRA_FAULT_KINDS)
    rng = np.random.default_rng([seed, 0xFA17])
    phys = [c for c in channels if c.split(" ", 1)[0] in ("EEG", "EOG", "EMG")] or list(channels)
    total = hours * 3600.0
    out = []
    n = len(kinds)
    for i, k in enumerate(kinds):
        lo = 600.0 + i * (total - 900.0) / max(n, 1)
        hi = 600.0 + (i + 1) * (total - 900.0) / max(n, 1)
        dur = float(rng.uniform(30.0, 180.0))
        onset = float(rng.uniform(lo, max(lo, hi - dur))) if total > 1200 else float(rng.uniform(0, total / 2))
        ch = ALL_CHANNELS if k in ("dropped_samples", "clock_jitter") else str(rng.choice(phys))
        out.append(
            Fault(
                k,
                ch,
                onset,
                min(dur, max(total - onset, 1.0)),
                0.0,
                int(rng.integers(0, 2)),
                int(rng.integers(0, 2**31)),
            )
        )
    return tuple(out)


def apply_faults(
    data: npt.NDArray[np.floating],
    faults: Sequence[Fault],
    channels: Sequence[str],
    n0: int,
    fs: float,
) -> None:
    """Apply one session's faults to its samples ``data[channel, sample]`` (in place).

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Samples of one session starting at sample ``n0`` of the night.
    faults : sequence of Fault
        The session's faults (those outside the window are skipped).
    channels : sequence of str
        Channel names of the rows of ``data``.
    n0 : int
        Index of the first sample in the night.
    fs : float
        Sampling rate in Hz.
    """
    n = data.shape[1]
    for f in faults:
        a, b = round(f.onset * fs), round((f.onset + f.duration) * fs)
        lo, hi = max(a, n0), min(b, n0 + n)
        if lo >= hi:
            continue
        if f.channel == ALL_CHANNELS:
            rows: list[int] = list(range(len(channels)))
        elif f.channel in channels:
            rows = [list(channels).index(f.channel)]
        else:
            continue
        sl = slice(lo - n0, hi - n0)
        t = np.arange(lo, hi) / fs  # time in the night, so the result does not depend on chunking
        tf = t - f.onset
        if f.kind == "electrode_off":
            if f.variant == 0:
                data[rows, sl] = 0.05 * np.sin(2 * np.pi * 0.01 * t)
            else:
                drift = 400.0 * np.sin(2 * np.pi * tf / 47.0) + 150.0 * np.sin(2 * np.pi * tf / 11.0)
                data[rows, sl] = drift + 80.0 * np.sin(2 * np.pi * 50.0 * t)
        elif f.kind == "electrode_pop":
            period = 4.0 + (f.seed % 5)
            phase = tf % period
            sign = np.where((tf // period) % 2 == 0, 1.0, -1.0)
            data[rows, sl] += sign * (300.0 + 100.0 * (f.seed % 6)) * np.exp(-phase / 0.5)
        elif f.kind == "clipping":
            lvl = f.level or 100.0
            # a gain step and an offset step drive the amplifier onto one of its rails (see the module docstring)
            side = 1.0 if f.seed % 2 else -1.0
            data[rows, sl] = np.clip(3.0 * data[rows, sl] + side * 0.95 * lvl, -lvl, lvl)
        elif f.kind == "line_noise":
            hz = 60.0 if f.variant else 50.0
            data[rows, sl] += (f.level or 40.0) * np.sin(2 * np.pi * hz * t)
        elif f.kind == "dropped_samples":
            data[:, sl] = 0.0
        elif f.kind == "flat_line":
            held = f.level or (20.0 + f.seed % 61) * (1.0 if f.seed % 2 else -1.0)
            data[rows, sl] = held
        elif f.kind == "implausible_amplitude":
            data[rows, sl] *= f.level or 1000.0
        elif f.kind == "clock_jitter":
            # index warp from a hash of the absolute sample number: repeats and skips of 1-3 samples
            k = np.arange(lo, hi)
            off = ((k // max(int(fs // 4), 1)) * 2654435761 + f.seed) % 7 - 3
            src = np.clip(k + off - n0, 0, n - 1)
            data[:, sl] = data[:, src]


def dropped_mask(faults: Sequence[Fault], n0: int, n: int, fs: float) -> npt.NDArray[np.bool_]:
    """True for the samples of ``[n0, n0 + n)`` lost to ``dropped_samples`` faults."""
    mask = np.zeros(n, dtype=bool)
    for f in faults:
        if f.kind != "dropped_samples":
            continue
        a, b = round(f.onset * fs), round((f.onset + f.duration) * fs)
        mask[max(a - n0, 0) : max(min(b - n0, n), 0)] = True
    return mask
