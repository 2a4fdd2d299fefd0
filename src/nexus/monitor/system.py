"""System glitches of a live lane, from the loop's own measurements.

:class:`SystemWatch` is called by the supervisor after each lane step with what the loop measured:

``queue_backlog`` (system, medium)
    samples of a session were dropped because they came too far ahead of the lane's jitter buffer
    (the lane's ``dropped`` counter grew): the source runs ahead of the loop, or the loop behind it.
``late`` (system, low)
    samples arrived after their time was already processed (the ``late`` counter grew).
``controller_late`` (system, medium)
    a tick's results came out more than ``late_after_s`` after the tick was due (real clock only:
    in fast-forward there is no deadline to miss). It concerns every session of the lane.

Counters are read as arrays over the lane; Python work is done only for the slots that raise.
A counter that went down (the slot was reused by a new session) counts from 0 again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

LATE_AFTER_S = 0.25
"""A tick whose results come out later than this after it was due is ``controller_late`` (s)."""


@dataclass(frozen=True)
class SystemIssue:
    """One system glitch to raise for the session in ``slot`` (``kind``, one line, evidence)."""

    slot: int
    kind: str
    message: str
    evidence: dict[str, Any]


class SystemWatch:
    """System kinds of one lane (see the module docstring).

    Parameters
    ----------
    capacity : int
        Slots of the lane.
    fs : float
        Sampling rate of the lane, Hz (to state dropped samples in seconds).
    late_after_s : float
        Tick latency above which the lane's sessions get ``controller_late``, in s.
    """

    def __init__(self, capacity: int, fs: float, late_after_s: float = LATE_AFTER_S) -> None:
        self.fs = float(fs)
        self.late_after_s = float(late_after_s)
        self._seen = {k: np.zeros(int(capacity), dtype=np.int64) for k in ("dropped", "late")}

    def counters(self, counts: dict[str, npt.NDArray[np.int64]], active: npt.NDArray[np.bool_]) -> list[SystemIssue]:
        """``queue_backlog`` and ``late`` for the slots whose ``dropped`` or ``late`` counter grew."""
        out = []
        for key, kind in (("dropped", "queue_backlog"), ("late", "late")):
            now = counts[key]
            prev = self._seen[key]
            grew = np.where(now >= prev, now - prev, now)  # a reused slot starts from 0
            self._seen[key] = now.copy()
            for s in np.flatnonzero((grew > 0) & active):
                n = int(grew[s])
                if kind == "queue_backlog":
                    msg = (f"{n} samples ({n / self.fs:.2f} s) came too far ahead of the loop and were dropped; "
                           "the source runs ahead of the facility clock or the loop is behind.")
                else:
                    msg = f"{n} samples ({n / self.fs:.2f} s) arrived after their time was processed."
                out.append(SystemIssue(int(s), kind, msg, {"samples": n, "seconds": round(n / self.fs, 3),
                                                           "total_samples": int(now[s])}))
        return out

    def latency(self, latency_s: float, active: npt.NDArray[np.bool_]) -> list[SystemIssue]:
        """``controller_late`` for every active slot when a tick's results came out ``latency_s`` after it was due."""
        if not latency_s > self.late_after_s:
            return []
        ev = {"latency_s": round(float(latency_s), 3), "threshold_s": self.late_after_s}
        msg = (f"The loop's results came out {latency_s:.3f} s after the tick was due (limit "
               f"{self.late_after_s:g} s); closed-loop timing is not met.")
        return [SystemIssue(int(s), "controller_late", msg, dict(ev)) for s in np.flatnonzero(active)]
