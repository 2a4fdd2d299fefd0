"""Does a hypnogram cover its recording? The check of the commands that take both.

A hypnogram and a recording of the same night end within one epoch of each other. One that runs
on past the recording's end is usable (its extra epochs are ignored) but often belongs to another
night or to the whole night of an excerpt: the commands say so in one warning line. One that
ends early leaves part of the recording unstaged: the commands refuse it, naming the fix.
"""

from __future__ import annotations

from pathlib import Path

from nexus.core.errors import InvalidInputError
from nexus.formats.hypnogram import Hypnogram

__all__ = ["check_coverage", "span"]


def span(seconds: float) -> str:
    """A duration for people: ``"7 h 58 min"``, ``"12 min"``, ``"40 s"``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    m = round(seconds / 60)
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def check_coverage(h: Hypnogram, duration_s: float, hypnogram: str | Path, recording: str | Path) -> str | None:
    """Compare the hypnogram ``h`` (read from ``hypnogram``) with ``recording``, ``duration_s`` seconds long.

    Returns
    -------
    str or None
        A warning when the hypnogram runs more than one epoch past the end of the recording
        (its extra epochs are ignored), else None.

    Raises
    ------
    InvalidInputError
        The hypnogram ends more than one epoch before the recording does.
    """
    diff = h.duration - duration_s
    hyp = f"The hypnogram '{Path(hypnogram).name}' ({len(h)} epochs, {span(h.duration)})"
    rec = f"the recording '{Path(recording).name}' ({span(duration_s)})"
    if diff > h.epoch_s:
        n = int(diff // h.epoch_s)  # pragma: no mutate (diff > 0 here: int() of / and // agree)
        extra = "its last epoch has no signal and is" if n == 1 else f"its last {n} epochs have no signal and are"
        return f"{hyp} is longer than {rec}: {extra} ignored. Check that both belong to the same night."
    if -diff > h.epoch_s:
        raise InvalidInputError(
            f"{hyp} is shorter than {rec}: the last {span(-diff)} are not staged. Give the hypnogram of the "
            "whole recording, or cut the recording to the hypnogram."
        )
    return None
