"""Many whole synthetic nights at once, vectorised across sleepers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.sources.synthetic.faults import Fault
from nexus.sources.synthetic.fleet import SyntheticFleet
from nexus.sources.synthetic.night import SyntheticNight
from nexus.sources.synthetic.profile import SleeperProfile
from nexus.sources.synthetic.signals import CHANNELS

BLOCK_SAMPLES = 131_072
"""Samples per session × sessions per block: keeps the working set in cache (numpy here is memory-bound)."""


def iter_batch(fleet: SyntheticFleet, block_s: float | None = None) -> Iterator[tuple[int, npt.NDArray[np.floating]]]:
    """Walk a fleet through its whole night in blocks.

    Parameters
    ----------
    fleet : SyntheticFleet
        The sessions, not yet started or part-way.
    block_s : float, optional
        Seconds per block; by default about ``BLOCK_SAMPLES / n_sessions`` samples (≈ 5 s for
        100 sessions at 256 Hz), which measured fastest.

    Yields
    ------
    n0 : int
        Index of the first sample of the block.
    block : ndarray, shape (n_sessions, n_channels, n_samples)
        The samples of every session (see :meth:`SyntheticFleet.next_chunk`).
    """
    if block_s is None:
        step = max(fleet.hop, BLOCK_SAMPLES // fleet.n_sessions)
    else:
        step = max(1, round(check_number("block_s", block_s, gt=0, unit="s") * fleet.fs))
    while fleet.n_done < fleet.n_total:
        n0 = fleet.n_done
        yield n0, fleet.next_chunk(min(step, fleet.n_total - n0))


def synthesize_batch(
    profiles: SleeperProfile | str | Sequence[SleeperProfile | str],
    seeds: Sequence[int],
    hours: float = 8.0,
    fs: float = 256.0,
    channels: Sequence[str] = CHANNELS,
    faults: Sequence[Sequence[Fault]] | None = None,
    distress: int | Sequence[int | None] | None = None,
    dtype: type[np.floating] = np.float32,
) -> list[SyntheticNight]:
    """Generate ``len(seeds)`` whole nights together (one :class:`SyntheticFleet`, blocks of 10 min).

    The nights are the same as :func:`~nexus.sources.synthetic.night.synthesize_night` with the same
    seed would give (up to ``dtype``). Memory is ``n × channels × samples × itemsize``: for many
    long nights stream with :func:`iter_batch` instead.

    Notes
    -----
    Whole nights are already vectorised along time and compiled, so nearly all the work is per
    sample and per sleeper: batching saves only the set-up and call overhead, about 1.0–1.3× per
    night (``bench/synth_speed.py`` explains where the time goes); it pays when streaming short
    chunks (about 15× for 100 sessions in 1-s chunks).
    """
    fleet = SyntheticFleet(
        profiles, seeds, hours=hours, fs=fs, channels=channels, faults=faults, distress=distress, dtype=dtype
    )
    out = np.empty((fleet.n_sessions, len(fleet.channels), fleet.n_total), dtype=dtype)
    step = max(fleet.hop, BLOCK_SAMPLES // fleet.n_sessions)
    for a in range(0, fleet.n_total, step):
        b = min(a + step, fleet.n_total)
        fleet.next_chunk(b - a, out=out[:, :, a:b])
    return [
        SyntheticNight(out[i], fleet.channels, fleet.fs, fleet.truth(i), fleet.profiles[i], fleet.seeds[i])
        for i in range(fleet.n_sessions)
    ]
