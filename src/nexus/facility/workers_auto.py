"""How many worker processes a fast-forward night uses when the user does not say.

The beds of ``nexus simulate`` are shared among worker processes (:mod:`nexus.facility.simulate`);
each process steps its own lane, so a second core roughly halves the night's wall time. A worker
costs a process start, its imports and its kernels' warm-up (a few seconds), which only pays for
itself with enough beds, hence at most one worker per :data:`BEDS_PER_WORKER` beds.
"""

from __future__ import annotations

import os

BEDS_PER_WORKER = 50
"""Beds a worker should have at least before another one is started."""


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def auto_workers(beds: int, cores: int | None = None) -> int:
    """Worker processes for ``beds`` beds: one per usable core, at most one per :data:`BEDS_PER_WORKER` beds."""
    cores = usable_cores() if cores is None else int(cores)
    return max(1, min(cores, -(-int(beds) // BEDS_PER_WORKER)))
