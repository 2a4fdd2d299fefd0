"""Glitches of a live session: the runtime's edge checks and the signal monitor's episodes.

A :class:`Glitch` is one anomaly of one session, triaged into a category (technical, psyche,
system) with an alarm priority after IEC 60601-1-8. The runtime raises the *technical* and
*system* ones it sees while taking in data — bad samples, a wrong channel count or rate,
timestamps going backwards, a stream that vanishes and returns, a session falling behind — and
the signal monitor (:class:`nexus.monitor.live.GlitchMonitor`) raises the ones it reads in the
signals (electrode off, flat line, pops, clipping, mains hum, dropped samples, clock jitter,
implausible amplitude, distress, arousal storms), each with its ``evidence``. The store keeps
them (table ``glitches``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: kind → (category, priority, short description) of the glitches the runtime raises.
GLITCH_KINDS: dict[str, tuple[str, str, str]] = {
    "bad_samples": ("technical", "low", "samples that are NaN or infinite"),
    "wrong_channels": ("technical", "high", "a chunk with the wrong number of channels"),
    "fs_mismatch": ("technical", "high", "a chunk at another sampling rate"),
    "clock_skew": ("technical", "medium", "timestamps going backwards"),
    "clock_jump": ("technical", "medium", "the device's clock jumped; its samples were re-anchored"),
    "duplicate": ("technical", "low", "a chunk delivered twice"),
    "late": ("system", "low", "samples that arrived after their time was processed"),
    "dropout": ("technical", "high", "the stream stopped delivering"),
    "stream_returned": ("technical", "low", "the stream delivers again after a dropout"),
    "source_error": ("technical", "high", "the source failed"),
    "queue_backlog": ("system", "medium", "samples dropped because the session ran too far ahead or behind"),
    "controller_late": ("system", "medium", "the pipeline step ran late"),
    "controller_error": ("system", "high", "a bed's dreamscape program failed; the bed is in the safe state"),
    "sink_error": ("system", "high", "a bed's sound output failed; the bed is in the safe state"),
    "lease_lapsed": ("system", "high", "a bed's controller stopped renewing its lease; the sink fell silent"),
    # read from the signals by the glitch monitor (nexus.monitor.live)
    "electrode_off": ("technical", "medium", "an electrode came off: flat near 0 µV, or drifting with mains hum"),
    "flat_line": ("technical", "medium", "the channel holds one value (stuck amplifier or held sample)"),
    "electrode_pop": ("technical", "low", "repeated sudden steps that decay (an electrode losing contact)"),
    "clipping": ("technical", "low", "the channel saturates at its rails"),
    "line_noise": ("technical", "low", "mains hum at 50 or 60 Hz"),
    "dropped_samples": ("technical", "medium", "samples lost: runs of exact zeros"),
    "clock_jitter": ("technical", "low", "samples repeated or skipped (the amplifier clock wanders)"),
    "implausible_amplitude": ("technical", "medium", "amplitudes no body makes (corrupt range or wrong units)"),
    "distress": ("psyche", "high", "distress or nightmare: a heart-rate surge with faster breathing in sleep"),
    "arousal_storm": ("psyche", "medium", "many arousals in a short time"),
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
        How long it lasted, in seconds, when known. The monitor raises an episode twice: when it
        opens (``duration_s`` None) and when it closes (same ``onset_s``, ``duration_s`` set).
    evidence : dict
        What the detector saw: channel values and the thresholds they crossed (JSON-able).
    """

    session: str
    onset_s: float
    kind: str
    message: str
    channel: str | None = None
    duration_s: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def category(self) -> str:
        """``technical``, ``psyche`` or ``system``."""
        return GLITCH_KINDS.get(self.kind, ("technical", "medium", ""))[0]

    @property
    def priority(self) -> str:
        """Alarm priority: ``high``, ``medium`` or ``low``."""
        return GLITCH_KINDS.get(self.kind, ("technical", "medium", ""))[1]

    def as_record(self) -> dict[str, Any]:
        """A journal record (``kind="glitch"``) of this glitch (``evidence`` only when there is some)."""
        rec = {
            "session": self.session,
            "kind": "glitch",
            "onset": self.onset_s,
            "duration": self.duration_s or 0.0,
            "description": self.kind,
            "message": self.message,
            "channel": self.channel,
            "category": self.category,
            "priority": self.priority,
        }
        if self.evidence:
            rec["evidence"] = dict(self.evidence)
        return rec


def one_per_episode(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Glitch records (:meth:`Glitch.as_record`) with an episode raised twice kept once.

    The monitor raises an episode when it opens and again, with its duration, when it closes (same
    session, kind, channel and onset): the closing record stands for both, at the place of the
    opening one. Records of different episodes are all kept, in their order.
    """
    out: list[dict[str, Any]] = []
    at: dict[tuple[Any, ...], int] = {}
    for r in records:
        key = (r["session"], r["description"], r.get("channel"), round(float(r["onset"]), 3))
        i = at.get(key)
        if i is None:
            at[key] = len(out)
            out.append(r)
        elif r.get("duration") or not out[i].get("duration"):
            out[i] = r
    return out
