"""Every bed's closed epochs so far (stage, confidence, hypnodensity), in NumPy arrays instead of Python objects.

A night of 500 beds closes 960 epochs a bed in 8 h. Kept as Python dicts of lists (one list of five floats per
epoch), that is ~480,000 objects the garbage collector tracks by morning, and every full collection late in the
night scans all of them inside a tick. :class:`EpochTable` keeps them in preallocated arrays (one row per bed,
one column per 30-s epoch, sized for the planned night and doubled if a night runs longer), which the collector
never looks into. Readers get the same Python values the dicts gave: the stored floats are the rounded ones,
kept as float64 so that ``tolist`` gives them back exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Code of an epoch not staged (yet): what the hypnogram shows for a gap.
UNSCORED = -2


class EpochTable:
    """Stage code, confidence and hypnodensity per bed (row) and 30-s epoch (column).

    Parameters
    ----------
    beds
        Number of beds (rows).
    epochs
        Epochs to make room for at first (the planned night: 120 an hour); more are made by doubling.
    width
        Values per hypnodensity (P(W, N1, N2, N3, R): 5).
    """

    def __init__(self, beds: int, epochs: int, width: int = 5) -> None:
        cap = max(int(epochs), 1)
        self.width = int(width)
        # np.full, not np.zeros: every page is written here, at set-up. np.zeros maps the memory lazily and the
        # first epoch close's writes (one column across every bed's row) faulted the whole hypnodensity table in
        # inside a tick: 34 ms at 500 beds x 8 h (19 MB), the slowest tick of a 'nexus run' floor after the start.
        self._codes = np.full((beds, cap), UNSCORED, dtype=np.int16)
        self._staged = np.full((beds, cap), False)
        self._has_probs = np.full((beds, cap), False)
        self._conf = np.full((beds, cap), 0.0)
        self._dens = np.full((beds, cap, self.width), 0.0)
        self._end = np.zeros(beds, dtype=np.int64)  # highest staged epoch + 1, per bed
        self._count = np.zeros(beds, dtype=np.int64)  # distinct epochs staged (negative ones included), per bed
        self._negative: dict[int, set[int]] = {}  # epochs before a bed's start (never seen; counted, not shown)

    @property
    def capacity(self) -> int:
        """Epochs there is room for now, per bed."""
        return int(self._codes.shape[1])

    @property
    def beds(self) -> int:
        """Beds (rows) there is room for now."""
        return int(self._codes.shape[0])

    def _reserve(self, last: int, last_bed: int) -> None:
        """Make room for epoch ``last`` and bed ``last_bed`` (by doubling: beds join a running floor later)."""
        cap, n = self.capacity, self.beds
        if last < cap and last_bed < n:
            return
        while cap <= last:
            cap *= 2
        if last_bed >= n:
            n = max(last_bed + 1, 2 * n)

        def grown(a: np.ndarray, fill: float | int | bool) -> np.ndarray:
            out = np.full((n, cap, *a.shape[2:]), fill, dtype=a.dtype)
            out[:a.shape[0], :a.shape[1]] = a
            return out

        self._codes, self._staged = grown(self._codes, UNSCORED), grown(self._staged, False)
        self._has_probs, self._conf, self._dens = (grown(self._has_probs, False), grown(self._conf, 0.0),
                                                   grown(self._dens, 0.0))
        if n > len(self._end):
            self._end = np.concatenate((self._end, np.zeros(n - len(self._end), dtype=np.int64)))
            self._count = np.concatenate((self._count, np.zeros(n - len(self._count), dtype=np.int64)))

    def put_stages(self, beds: Sequence[int], epochs: Sequence[int], codes: Sequence[int]) -> None:
        """Write stage codes of (bed, epoch) pairs; a pair given twice keeps its last code."""
        if not len(beds):
            return
        rows, cols, vals = _last_of_each(beds, epochs, codes)
        self._reserve(0, int(rows.max()))
        neg = cols < 0
        for r, c in zip(rows[neg].tolist(), cols[neg].tolist(), strict=True):
            seen = self._negative.setdefault(r, set())
            if c not in seen:
                seen.add(c)
                self._count[r] += 1
        rows, cols, vals = rows[~neg], cols[~neg], vals[~neg]
        if not len(rows):
            return
        self._reserve(int(cols.max()), int(rows.max()))
        new = ~self._staged[rows, cols]
        np.add.at(self._count, rows[new], 1)
        self._staged[rows, cols] = True
        self._codes[rows, cols] = vals
        np.maximum.at(self._end, rows, cols + 1)

    def put_probs(self, beds: Sequence[int], epochs: Sequence[int], confidence: Sequence[float],
                  density: np.ndarray) -> None:
        """Write confidence and hypnodensity (rows of ``width`` values) of (bed, epoch) pairs; the last one wins."""
        if not len(beds):
            return
        order = np.arange(len(beds))
        rows, cols, idx = _last_of_each(beds, epochs, order)
        keep = cols >= 0
        rows, cols, idx = rows[keep], cols[keep], idx[keep]
        if not len(rows):
            return
        self._reserve(int(cols.max()), int(rows.max()))
        self._has_probs[rows, cols] = True
        self._conf[rows, cols] = np.asarray(confidence, dtype=np.float64)[idx]
        self._dens[rows, cols] = np.asarray(density, dtype=np.float64)[idx]

    def count(self, bed: int) -> int:
        """Distinct epochs staged for ``bed`` (0 for a bed nothing was written for yet)."""
        return int(self._count[bed]) if bed < len(self._count) else 0

    def _n(self, bed: int) -> int:
        return int(self._end[bed]) if bed < len(self._end) else 0

    def stages(self, bed: int) -> list[int]:
        """One stage code per epoch from 0 to the last staged one (:data:`UNSCORED` where none came)."""
        return self._codes[bed, :self._n(bed)].tolist() if bed < self.beds else []

    def confidence(self, bed: int) -> list[float | None]:
        """Confidence per epoch (as :meth:`stages`; None where the epoch came without probabilities)."""
        n = self._n(bed)
        if n == 0:
            return []
        return [c if h else None for c, h in zip(self._conf[bed, :n].tolist(), self._has_probs[bed, :n].tolist(),
                                                  strict=True)]

    def density(self, bed: int) -> list[list[float] | None]:
        """Hypnodensity per epoch (as :meth:`stages`; None where the epoch came without probabilities)."""
        n = self._n(bed)
        if n == 0:
            return []
        return [d if h else None for d, h in zip(self._dens[bed, :n].tolist(), self._has_probs[bed, :n].tolist(),
                                                  strict=True)]


def _last_of_each(beds: Sequence[int], epochs: Sequence[int],
                  values: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (bed, epoch, value) triples with each (bed, epoch) pair once, its last value."""
    rows = np.asarray(beds, dtype=np.int64)
    cols = np.asarray(epochs, dtype=np.int64)
    vals = np.asarray(values)
    if len(rows) > 1:
        key = (rows << 32) + (cols + (1 << 31))  # one int64 per pair (epochs within +-2^31)
        _, first_rev = np.unique(key[::-1], return_index=True)
        if len(first_rev) < len(rows):  # a pair twice: keep its last write
            last = np.sort(len(rows) - 1 - first_rev)
            rows, cols, vals = rows[last], cols[last], vals[last]
    return rows, cols, vals
