"""Edge checks of the live input: what a chunk or a stream does wrong before its samples reach a lane.

The supervisor calls these for every chunk a source delivers and for every lane after each tick;
they decide, the supervisor acts (counts, journal, lane). Nothing here raises on bad data: a bad
chunk is a verdict with a glitch kind and one line for the technician.

* :class:`ChunkGate` (one per session): channel count, sampling rate, duplicates (sequence numbers
  seen before), timestamps going backwards (the overlap is cut), and non-finite samples.
* :func:`dropout_changes` (one lane, vectorised): sessions whose stream vanished (no sample for
  ``limit`` samples) or came back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

SEEN_KEPT = 4096
"""Sequence numbers remembered per session for the duplicate check."""


@dataclass
class EdgeVerdict:
    """What :meth:`ChunkGate.check` found in one chunk.

    Attributes
    ----------
    data : ndarray or None
        The samples to use, shape (channels, samples), with any overlap cut; None when the chunk
        is refused as a whole.
    t0 : float
        Session time of ``data``'s first sample, in s.
    rejected : int
        Samples refused for a wrong layout or rate.
    duplicate : int
        Samples ignored as already delivered (a repeated chunk, or the overlap of a clock going back).
    in_order : bool
        Whether the chunk's sequence number is the highest so far.
    issues : list of (kind, onset_s, message)
        Glitches to raise, kinds from :data:`~nexus.monitor.glitch.GLITCH_KINDS`.
    """

    data: npt.NDArray[np.floating] | None
    t0: float
    rejected: int = 0
    duplicate: int = 0
    in_order: bool = True
    issues: list[tuple[str, float, str]] = field(default_factory=list)


class ChunkGate:
    """The edge checks of one session's chunks (layout, rate, duplicates, clock, bad samples).

    Parameters
    ----------
    n_channels : int
        Channels a chunk must have.
    fs : float
        Sampling rate a chunk must have, in Hz.
    """

    def __init__(self, n_channels: int, fs: float) -> None:
        self.n_channels, self.fs = int(n_channels), float(fs)
        self.last_seq = -1
        self.last_t1 = 0.0  # session time after the last in-order chunk, s
        self.seen: set[int] = set()
        self.seen_order: deque[int] = deque()

    def check(self, data: npt.ArrayLike, fs: float, seq: int, t0: float, *, started: bool) -> EdgeVerdict:
        """Judge one chunk (``data`` channels × samples at ``fs`` Hz, number ``seq``, first sample at ``t0`` s).

        ``started``: whether the session already placed samples (a clock going back needs a past).
        """
        x = np.asarray(data)
        t0 = float(t0)
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            n = x.shape[-1] if x.ndim else 0
            got = x.shape[0] if x.ndim else 0
            return EdgeVerdict(None, t0, rejected=n, issues=[(
                "wrong_channels", t0,
                f"Chunk {seq} has {got} channels, expected {self.n_channels}; it was rejected. Check the device "
                "montage.")])
        if abs(float(fs) - self.fs) > 1e-6 * self.fs:
            return EdgeVerdict(None, t0, rejected=x.shape[1], issues=[(
                "fs_mismatch", t0, f"Chunk {seq} is at {fs:g} Hz, expected {self.fs:g} Hz; it was rejected.")])
        seq = int(seq)
        if seq in self.seen:
            return EdgeVerdict(None, t0, duplicate=x.shape[1], issues=[(
                "duplicate", t0, f"Chunk {seq} was delivered again; the copy was ignored.")])
        self.seen.add(seq)
        self.seen_order.append(seq)
        if len(self.seen_order) > SEEN_KEPT:
            self.seen.discard(self.seen_order.popleft())
        in_order = seq > self.last_seq
        self.last_seq = max(self.last_seq, seq)
        out = EdgeVerdict(x, t0, in_order=in_order)
        # a chunk out of order (lower, unseen number) is late, not a clock going backwards
        if in_order and started and t0 < self.last_t1 - 0.5 / self.fs:
            cut = round((self.last_t1 - t0) * self.fs)
            out.issues.append(("clock_skew", t0, f"Timestamps went back by {self.last_t1 - t0:.3f} s; "
                               f"{min(cut, x.shape[1])} overlapping samples were dropped."))
            out.duplicate = min(cut, x.shape[1])
            if cut >= x.shape[1]:
                out.data = None
                return out
            out.data, out.t0 = x[:, cut:], t0 + cut / self.fs
        assert out.data is not None
        with np.errstate(over="ignore", invalid="ignore"):
            clean = bool(np.isfinite(np.sum(out.data)))
        if not clean:
            bad = int((~np.isfinite(out.data)).sum())
            out.issues.append(("bad_samples", out.t0,
                               f"{bad} NaN or infinite values; replaced by the last good value."))
        if in_order:
            self.last_t1 = out.t0 + out.data.shape[1] / self.fs
        return out


def dropout_changes(
    missing_run: npt.NDArray[np.integer],
    active: npt.NDArray[np.bool_],
    in_dropout: npt.NDArray[np.bool_],
    limit: int,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Slots of a lane whose stream vanished and slots whose stream came back.

    Parameters
    ----------
    missing_run : ndarray of int, shape (slots,)
        Consecutive missing samples now.
    active, in_dropout : ndarray of bool, shape (slots,)
        Slots carrying a session; slots already in a dropout.
    limit : int
        Missing samples in a row that make a dropout.

    Returns
    -------
    gone, back : ndarray of int
        Slots entering a dropout; slots leaving one (samples arrive again).
    """
    gone = np.flatnonzero((missing_run >= limit) & active & ~in_dropout)
    back = np.flatnonzero((missing_run == 0) & active & in_dropout)
    return gone, back
