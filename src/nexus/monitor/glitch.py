"""Glitches raised by the runtime at the edge of a live session.

A :class:`Glitch` is one anomaly of one session, triaged into a category (technical, psyche,
system) with an alarm priority after IEC 60601-1-8. The runtime raises the *technical* and
*system* ones it sees while taking in data — bad samples, a wrong channel count or rate,
timestamps going backwards, a stream that vanishes and returns, a session falling behind — and
the store keeps them (table ``glitches``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: kind → (category, priority, short description) of the glitches the runtime raises.
GLITCH_KINDS: dict[str, tuple[str, str, str]] = {
    "bad_samples": ("technical", "low", "samples that are NaN or infinite"),
    "wrong_channels": ("technical", "high", "a chunk with the wrong number of channels"),
    "fs_mismatch": ("technical", "high", "a chunk at another sampling rate"),
    "clock_skew": ("technical", "medium", "timestamps going backwards"),
    "duplicate": ("technical", "low", "a chunk delivered twice"),
    "late": ("system", "low", "samples that arrived after their time was processed"),
    "dropout": ("technical", "high", "the stream stopped delivering"),
    "stream_returned": ("technical", "low", "the stream delivers again after a dropout"),
    "source_error": ("technical", "high", "the source failed"),
    "queue_backlog": ("system", "medium", "samples dropped because the session ran too far ahead or behind"),
    "controller_late": ("system", "medium", "the pipeline step ran late"),
}


@dataclass(frozen=True)
class Glitch:
    """One anomaly of one live session.

    Attributes
    ----------
    session : str
        Session id.
    onset_s : float
        Seconds since the session started.
    kind : str
        One of :data:`GLITCH_KINDS`.
    message : str
        What happened, for the technician.
    channel : str or None
        The channel concerned, when there is one.
    duration_s : float or None
        How long it lasted, in seconds, when known.
    """

    session: str
    onset_s: float
    kind: str
    message: str
    channel: str | None = None
    duration_s: float | None = None

    @property
    def category(self) -> str:
        """``technical``, ``psyche`` or ``system``."""
        return GLITCH_KINDS.get(self.kind, ("technical", "medium", ""))[0]

    @property
    def priority(self) -> str:
        """Alarm priority: ``high``, ``medium`` or ``low``."""
        return GLITCH_KINDS.get(self.kind, ("technical", "medium", ""))[1]

    def as_record(self) -> dict[str, Any]:
        """A journal record (``kind="glitch"``) of this glitch."""
        return {"session": self.session, "kind": "glitch", "onset": self.onset_s,
                "duration": self.duration_s or 0.0, "description": self.kind, "message": self.message,
                "channel": self.channel, "category": self.category, "priority": self.priority}
