"""Bulk look-ups used by the fleet: ragged index ranges and per-session interval tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


def concat_ranges(lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Concatenate ``arange(lo[i], hi[i])`` for all i, without a Python loop."""
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    return starts + np.arange(total)


@dataclass
class IntervalTable:
    """Non-overlapping intervals per session (arousals, distress), searchable in bulk."""

    session: npt.NDArray[np.int64]
    onset: npt.NDArray[np.float64]
    duration: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]
    span: float
    keys: npt.NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        order = np.lexsort((self.onset, self.session))
        for name in ("session", "onset", "duration", "value"):
            setattr(self, name, getattr(self, name)[order])
        self.keys = self.session * self.span + self.onset

    def level(
        self, t: npt.NDArray[np.float64], sessions: int | npt.NDArray[np.int64], ramp: float = 1.0
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Level in [0, 1] (ramped over ``ramp`` s) and value of the interval covering each (session, t).

        ``sessions`` is a count (sessions ``0..n-1``) or an array of session indices; the results
        have shape ``(n_sessions, t.size)``.
        """
        from nexus.sources.synthetic._render import interval_level  # (numba is imported on first use)

        sess = np.arange(sessions) if isinstance(sessions, int | np.integer) else np.asarray(sessions, dtype=np.int64)
        shape = (sess.size, t.size)
        if self.keys.size == 0:
            return np.zeros(shape), np.zeros(shape)
        lev, val = np.empty(shape), np.empty(shape)
        interval_level(self.keys, self.session, self.onset, self.duration, self.value, float(self.span),
                       np.ascontiguousarray(sess, dtype=np.int64), np.ascontiguousarray(t, dtype=np.float64),
                       float(ramp), lev, val)
        return lev, val

    def add(self, session: int, onset: float, duration: float, value: float) -> bool:
        """Insert an interval unless it overlaps one of the same session; return whether it was added."""
        key = session * self.span + onset
        i = int(np.searchsorted(self.keys, key))
        if self._overlaps(session, onset, duration, i):
            return False
        # slices joined around the new row (np.insert's axis handling cost ~15 us a call: a synthetic fleet's
        # sleepers aroused by their first scene, at 500 beds, spent ~10 ms of one live tick in it)
        for name, v in (("session", session), ("onset", onset), ("duration", duration), ("value", value),
                        ("keys", key)):
            a = getattr(self, name)
            setattr(self, name, np.concatenate((a[:i], np.array([v], dtype=a.dtype), a[i:])))
        return True

    def _overlaps(self, session: int, onset: float, duration: float, i: int) -> bool:
        """Whether ``[onset, onset + duration)`` overlaps an interval of ``session``; ``i``: its key's insertion point.

        The intervals of a session do not overlap and are sorted: only the neighbours ``i - 1`` and ``i`` can.
        """
        for j in (i - 1, i):
            if (
                0 <= j < self.keys.size
                and self.session[j] == session
                and self.onset[j] < onset + duration
                and onset < self.onset[j] + self.duration[j]
            ):
                return True
        return False

    def add_many(
        self,
        session: npt.NDArray[np.int64],
        onset: npt.NDArray[np.float64],
        duration: npt.NDArray[np.float64],
        value: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.bool_]:
        """:meth:`add` of each row in turn, with one copy of the table: return which rows were added.

        A row that overlaps an interval of its session, in the table or added by an earlier row, is not added
        (the same table and answers as calling :meth:`add` row by row). Onsets and durations in s.
        """
        sess = np.asarray(session, dtype=np.int64)
        on = np.asarray(onset, dtype=np.float64)
        dur = np.asarray(duration, dtype=np.float64)
        val = np.asarray(value, dtype=np.float64)
        if sess.size == 0:
            return np.zeros(0, dtype=bool)
        key = sess * self.span + on
        i = np.searchsorted(self.keys, key)
        # the neighbours' overlap test of add(), for all rows at once
        hit = np.zeros(sess.size, dtype=bool)
        n = self.keys.size
        for j in (i - 1, i):
            ok = (j >= 0) & (j < n)
            jj = np.clip(j, 0, max(n - 1, 0))
            if n:
                hit |= (ok & (self.session[jj] == sess) & (self.onset[jj] < on + dur)
                        & (on < self.onset[jj] + self.duration[jj]))
        added = ~hit
        _, first, count = np.unique(sess, return_index=True, return_counts=True)
        for r in np.flatnonzero(count > 1).tolist():  # rows of one session: each against those added before it
            rows = np.flatnonzero(sess == sess[first[r]])
            kept: list[int] = []
            for k in rows.tolist():
                if added[k] and any(on[q] < on[k] + dur[k] and on[k] < on[q] + dur[q] for q in kept):
                    added[k] = False
                if added[k]:
                    kept.append(k)
        if added.any():
            order = np.flatnonzero(added)[np.argsort(key[added], kind="stable")]
            at = i[order]  # insertion points in the old table (ascending, as the keys are sorted)
            for name, v in (("session", sess), ("onset", on), ("duration", dur), ("value", val), ("keys", key)):
                a = getattr(self, name)
                setattr(self, name, np.insert(a, at, v[order].astype(a.dtype)))
        return added
