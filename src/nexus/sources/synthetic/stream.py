"""A streaming synthetic sleeper: the :class:`~nexus.sources.base.Source` of one session."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from nexus.core.clock import Clock
from nexus.core.types import Chunk
from nexus.sources.base import Source
from nexus.sources.synthetic.faults import Fault, dropped_mask
from nexus.sources.synthetic.fleet import SyntheticFleet
from nexus.sources.synthetic.profile import SleeperProfile
from nexus.sources.synthetic.signals import CHANNELS
from nexus.sources.synthetic.truth import SleepTruth


class SyntheticSource(Source):
    """One synthetic sleeper, delivered as the clock advances (real time or fast-forward).

    :meth:`read` returns the samples that became available since the last call (at most
    ``max_chunk_s`` seconds at once), ``None`` when there are none yet, and ``None`` for ever once
    the night is over. Samples lost to a ``dropped_samples`` fault are left out: the next chunk's
    ``t0`` jumps over the gap while ``seq`` counts on.

    Parameters
    ----------
    session : str
        Session identifier put on every chunk.
    clock : Clock
        Time source; ``clock.now()`` seconds after the start, that much of the night exists.
    profile, seed, hours, fs, channels, faults, distress
        As for :class:`~nexus.sources.synthetic.fleet.SyntheticFleet`.
    max_chunk_s : float
        Longest chunk returned by one :meth:`read`, in seconds.
    """

    def __init__(
        self,
        session: str,
        clock: Clock,
        profile: SleeperProfile | str = "typical_adult",
        seed: int = 0,
        *,
        hours: float = 8.0,
        fs: float = 256.0,
        channels: Sequence[str] = CHANNELS,
        faults: Sequence[Fault] = (),
        distress: int | None = None,
        max_chunk_s: float = 10.0,
    ) -> None:
        self.session = session
        self.clock = clock
        self.fleet = SyntheticFleet(
            profile,
            [seed],
            hours=hours,
            fs=fs,
            channels=channels,
            faults=[tuple(faults)],
            distress=distress,
            dtype=np.float64,
        )
        self.channels = self.fleet.channels
        self.fs = self.fleet.fs
        self.max_chunk = max(1, round(max_chunk_s * self.fs))
        self._faults = tuple(faults)
        self._seq = 0
        self._pending: list[tuple[int, npt.NDArray[np.float64]]] = []

    def read(self) -> Chunk | None:
        """Return the next available run of samples, or ``None``."""
        if not self._pending:
            avail = min(int(np.floor(self.clock.now() * self.fs + 1e-6)), self.fleet.n_total) - self.fleet.n_done
            if avail <= 0:
                return None
            n0 = self.fleet.n_done
            n = min(avail, self.max_chunk)
            data = self.fleet.next_chunk(n)[0]
            lost = dropped_mask(self._faults, n0, n, self.fs)
            if lost.any():
                edges = np.flatnonzero(np.diff(np.concatenate(([1], lost.astype(np.int8), [1]))))
                for a, b in zip(edges[::2], edges[1::2], strict=True):
                    self._pending.append((n0 + int(a), data[:, a:b]))
            else:
                self._pending.append((n0, data))
            if not self._pending:
                return None
        n0, data = self._pending.pop(0)
        chunk = Chunk(self.session, n0 / self.fs, self.fs, data, self.channels, self._seq)
        self._seq += 1
        return chunk

    def play(self, t: float, kind: str, level_db: float) -> str:
        """Play a sound to the sleeper (see :meth:`SyntheticFleet.play`); returns the outcome."""
        return self.fleet.play(0, t, kind, level_db)

    def truth(self) -> SleepTruth:
        """Ground truth up to the samples generated so far."""
        return self.fleet.truth(0)
