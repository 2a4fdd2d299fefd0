"""One whole synthetic night: signals plus ground truth, and its EDF+ form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.formats.edf import Annotation, Recording, Signal
from nexus.sources.synthetic.faults import Fault
from nexus.sources.synthetic.fleet import SyntheticFleet
from nexus.sources.synthetic.profile import SleeperProfile, get_profile
from nexus.sources.synthetic.signals import CHANNELS, UNITS
from nexus.sources.synthetic.truth import SleepTruth

BLOCK_S = 600.0
"""Seconds generated per step when a whole night is made (bounds the working memory)."""


@dataclass
class SyntheticNight:
    """A synthetic night.

    Attributes
    ----------
    signals : ndarray of float64, shape (n_channels, n_samples)
        In µV (Resp in arbitrary units, Acc in milli-g).
    channels : tuple of str
        Channel names, one per row.
    fs : float
        Sampling rate in Hz.
    truth : SleepTruth
        Stages per epoch, events, distress episodes, faults.
    profile : SleeperProfile
        Who slept.
    seed : int
        The seed that made it.
    """

    signals: npt.NDArray[np.float64]
    channels: tuple[str, ...]
    fs: float
    truth: SleepTruth
    profile: SleeperProfile
    seed: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.signals.shape[1] / self.fs

    @property
    def stages(self) -> npt.NDArray[np.int8]:
        """True stage per 30-s epoch."""
        return self.truth.stages

    def channel(self, name: str) -> npt.NDArray[np.float64]:
        """Samples of one channel."""
        if name not in self.channels:
            raise InvalidInputError(f"No channel '{name}' in this night. Channels: {', '.join(self.channels)}.")
        return self.signals[self.channels.index(name)]

    def to_recording(self) -> Recording:
        """The night as a :class:`~nexus.formats.edf.Recording` with the truth as EDF+ annotations."""
        sigs = [Signal(c, self.signals[i], self.fs, UNITS[c]) for i, c in enumerate(self.channels)]
        anns = [Annotation(o, d, t) for o, d, t in self.truth.annotations()]
        p = self.profile
        return Recording(signals=sigs, annotations=anns, patient=f"{p.name} age={p.age:g} male={int(p.male)}")


def synthesize_night(
    profile: SleeperProfile | str = "typical_adult",
    hours: float = 8.0,
    seed: int = 0,
    fs: float = 256.0,
    faults: Sequence[Fault] = (),
    distress: int | None = None,
    channels: Sequence[str] = CHANNELS,
) -> SyntheticNight:
    """Generate one night of polysomnography with its ground truth.

    Parameters
    ----------
    profile : SleeperProfile or str
        A profile or preset name (``"typical_adult"``, ``"older_adult"``, ``"insomniac"``,
        ``"nightmare_prone"``, ``"teen"``).
    hours : float
        Length in hours (lights-out to lights-on), > 0 and ≤ 24.
    seed : int
        The same seed (and arguments) gives the same night, sample for sample.
    fs : float
        Sampling rate in Hz (≥ 100).
    faults : sequence of Fault
        Technical faults to inject (see :func:`~nexus.sources.synthetic.faults.schedule_faults`).
    distress : int, optional
        Exact number of distress episodes (default: drawn from the profile's nightmare propensity).
    channels : sequence of str
        Channels to produce (default: all ten).

    Returns
    -------
    SyntheticNight

    Examples
    --------
    >>> night = synthesize_night("typical_adult", hours=0.5, seed=1)
    >>> night.signals.shape
    (10, 460800)
    """
    check_number("hours", hours, gt=0, le=24, unit="h")
    prof = get_profile(profile)
    fleet = SyntheticFleet.one(prof, seed, hours=hours, fs=fs, channels=channels, faults=faults, distress=distress)
    n_total = fleet.n_total
    out = np.empty((len(fleet.channels), n_total))
    step = round(BLOCK_S * fleet.fs)
    for a in range(0, n_total, step):
        b = min(a + step, n_total)
        fleet.next_chunk(b - a, out=out[None, :, a:b])
    return SyntheticNight(out, fleet.channels, fleet.fs, fleet.truth(0), prof, int(seed))
