"""Streaming synthetic sleepers: :class:`~nexus.sources.base.Source` objects paced by a clock.

:class:`SyntheticSource` is one session. It either owns a one-session
:class:`~nexus.sources.synthetic.fleet.SyntheticFleet` or is a slot of a shared fleet
(:meth:`SyntheticSource.from_fleet`): then the first slot that needs new samples generates them
for every session at once (vectorised) and each slot keeps its own queue until it reads them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.clock import Clock
from nexus.core.errors import InvalidInputError
from nexus.core.types import Chunk
from nexus.sources.base import Source
from nexus.sources.synthetic.faults import Fault, dropped_mask
from nexus.sources.synthetic.fleet import SyntheticFleet
from nexus.sources.synthetic.profile import SleeperProfile
from nexus.sources.synthetic.signals import CHANNELS
from nexus.sources.synthetic.truth import SleepTruth


class FleetFeed:
    """Hands a fleet's chunks out to per-session queues, generating only when a reader needs more.

    Parameters
    ----------
    fleet : SyntheticFleet
        The sessions.
    clock : Clock
        ``clock.now()`` seconds after the start, that much of the night exists.
    max_chunk_s : float
        Longest block generated at once, in seconds.
    """

    def __init__(self, fleet: SyntheticFleet, clock: Clock, max_chunk_s: float = 10.0) -> None:
        self.fleet = fleet
        self.clock = clock
        self.max_chunk = max(1, round(check_number("max_chunk_s", max_chunk_s, gt=0, unit="s") * fleet.fs))
        self.queues: list[deque[tuple[int, npt.NDArray[np.floating]]]] = [deque() for _ in range(fleet.n_sessions)]

    def pull(self) -> None:
        """Generate what the clock allows (at most ``max_chunk_s``) for every session."""
        f = self.fleet
        avail = min(int(np.floor(self.clock.now() * f.fs + 1e-6)), f.n_total) - f.n_done
        if avail <= 0:
            return
        n0 = f.n_done
        n = min(avail, self.max_chunk)
        block = f.next_chunk(n)
        for s, q in enumerate(self.queues):
            lost = dropped_mask(f.faults[s], n0, n, f.fs)
            if not lost.any():
                q.append((n0, block[s]))
                continue
            edges = np.flatnonzero(np.diff(np.concatenate(([1], lost.astype(np.int8), [1]))))
            for a, b in zip(edges[::2], edges[1::2], strict=True):
                q.append((n0 + int(a), block[s, :, a:b]))


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

    Examples
    --------
    >>> from nexus.core.clock import ManualClock
    >>> clock = ManualClock()
    >>> src = SyntheticSource("bed-1", clock, "teen", seed=3, hours=0.1)
    >>> _ = clock.advance(2.0)
    >>> src.read().data.shape
    (10, 512)
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
        fleet = SyntheticFleet.one(
            profile, seed, hours=hours, fs=fs, channels=channels, faults=faults, distress=distress
        )
        self._attach(session, FleetFeed(fleet, clock, max_chunk_s), 0)

    @classmethod
    def from_fleet(cls, feed: FleetFeed, index: int, session: str) -> SyntheticSource:
        """A source reading slot ``index`` of a shared :class:`FleetFeed`."""
        if not 0 <= index < feed.fleet.n_sessions:
            raise InvalidInputError(f"Invalid fleet slot {index}: expected 0..{feed.fleet.n_sessions - 1}.")
        src = cls.__new__(cls)
        src._attach(session, feed, index)
        return src

    def _attach(self, session: str, feed: FleetFeed, index: int) -> None:
        self.session = session
        self.feed = feed
        self.index = index
        self.fleet = feed.fleet
        self.channels = self.fleet.channels
        self.fs = self.fleet.fs
        self._seq = 0

    def read(self) -> Chunk | None:
        """Return the next available run of samples, or ``None``."""
        q = self.feed.queues[self.index]
        if not q:
            self.feed.pull()
        if not q:
            return None
        n0, data = q.popleft()
        chunk = Chunk(self.session, n0 / self.fs, self.fs, np.asarray(data, dtype=np.float64), self.channels, self._seq)
        self._seq += 1
        return chunk

    def play(self, t: float, kind: str, level_db: float) -> str:
        """Play a sound to the sleeper (see :meth:`SyntheticFleet.play`); returns the outcome."""
        return self.fleet.play(self.index, t, kind, level_db)

    def truth(self) -> SleepTruth:
        """Ground truth up to the samples generated so far."""
        return self.fleet.truth(self.index)
