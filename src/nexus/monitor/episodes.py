"""Episodes from per-window verdicts: open after ``k_on`` bad windows in a row, close after ``k_off`` good ones.

One :class:`Hysteresis` holds the state of one kind for every session and column (channel, or one
column for a session-wide kind) of a lane, in arrays; an update touches only the rows (sessions)
whose window just closed.
"""

from __future__ import annotations

import numpy as np

from nexus.monitor._kernels import hysteresis_update
from nexus.monitor.features import BoolArray, FloatArray, IntArray


class Hysteresis:
    """Open/close state of one glitch kind over a (sessions, columns) grid.

    Parameters
    ----------
    capacity, columns : int
        Grid shape.
    k_on : int
        Bad windows in a row that open an episode; its onset is the start of the first of them.
    k_off : int
        Good windows in a row that close it; it ends where the first of them starts.
    """

    def __init__(self, capacity: int, columns: int, k_on: int, k_off: int) -> None:
        shape = (capacity, columns)
        self.k_on, self.k_off = int(k_on), int(k_off)
        self.open = np.zeros(shape, dtype=bool)
        self.run_bad = np.zeros(shape, dtype=np.int64)
        self.run_good = np.zeros(shape, dtype=np.int64)
        self.bad_t0 = np.zeros(shape)
        self.good_t0 = np.zeros(shape)
        self.onset = np.zeros(shape)

    def reset(self, slots: IntArray) -> None:
        """Forget the state of ``slots``."""
        for a in (self.open, self.run_bad, self.run_good, self.bad_t0, self.good_t0, self.onset):
            a[slots] = 0

    def update(
        self, rows: IntArray, bad: BoolArray, t0: FloatArray, onset_hint: FloatArray | None = None
    ) -> tuple[BoolArray, BoolArray, FloatArray, FloatArray]:
        """Take one window's verdicts.

        Parameters
        ----------
        rows : ndarray of int
            Sessions whose window closed.
        bad : ndarray of bool, shape (rows, columns)
            Verdicts.
        t0 : ndarray of float, shape (rows,)
            Window start, session time in s.
        onset_hint : ndarray of float, shape (rows, columns), optional
            An earlier onset where the evidence began before the window (e.g. the first of two pops).

        Returns
        -------
        opened, closed : ndarray of bool, shape (rows, columns)
        onset : ndarray of float, shape (rows, columns)
            Onset of the open (or just closed) episodes.
        end : ndarray of float, shape (rows, columns)
            End of the just closed episodes.
        """
        idx = np.asarray(rows, dtype=np.int64)
        verdict = np.ascontiguousarray(bad, dtype=bool).reshape(idx.size, self.open.shape[1])
        hint = (np.full(verdict.shape, np.inf) if onset_hint is None
                else np.ascontiguousarray(np.broadcast_to(onset_hint, verdict.shape), dtype=np.float64))
        opened, closed = np.empty(verdict.shape, dtype=bool), np.empty(verdict.shape, dtype=bool)
        onset, end = np.empty(verdict.shape), np.empty(verdict.shape)
        hysteresis_update(idx, verdict, np.ascontiguousarray(t0, dtype=np.float64), hint, self.k_on, self.k_off,
                          self.open, self.run_bad, self.run_good, self.bad_t0, self.good_t0, self.onset,
                          opened, closed, onset, end)
        return opened, closed, onset, end
