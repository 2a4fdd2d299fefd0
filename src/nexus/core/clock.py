"""One clock abstraction, so the same code runs a night in real time or in fast-forward.

Sources, the supervisor and the watchdog ask a :class:`Clock` for the time; tests drive a
:class:`ManualClock` and never call ``sleep()``.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Something that tells the time in seconds since an arbitrary start."""

    def now(self) -> float:
        """Seconds since the clock's start (monotonic)."""
        ...

    def sleep_until(self, t: float) -> None:
        """Wait until :meth:`now` ≥ ``t`` (returns at once on a fast-forward clock)."""
        ...


class RealClock:
    """Wall-clock time from :func:`time.monotonic`, starting at 0 when created."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Seconds since this clock was created."""
        return time.monotonic() - self._t0

    def sleep_until(self, t: float) -> None:
        """Sleep until ``t`` seconds since creation."""
        delay = t - self.now()
        if delay > 0:
            time.sleep(delay)


class ManualClock:
    """A clock that only moves when told to: fast-forward simulation and tests."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)

    def now(self) -> float:
        """The current simulated time, in seconds."""
        return self._t

    def advance(self, dt: float) -> float:
        """Move the clock forward by ``dt`` seconds (≥ 0) and return the new time."""
        if dt < 0:
            raise ValueError(f"Invalid value for 'dt': expected >= 0 s, got {dt:g} s.")
        self._t += dt
        return self._t

    def sleep_until(self, t: float) -> None:
        """Jump to ``t`` if it is in the future."""
        self._t = max(self._t, float(t))


class ScaledClock:
    """Wall-clock time running ``speed`` times faster (demonstrations: a night in minutes), starting at 0.

    ``speed=1`` is a :class:`RealClock`. :meth:`wall_delay` says how long, in real seconds, until
    the clock reads ``t`` (a loop that must stay interruptible waits on an event for that long).
    """

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"Invalid value for 'speed': expected > 0, got {speed:g}.")
        self.speed = float(speed)
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Clock seconds since creation (real seconds × speed)."""
        return (time.monotonic() - self._t0) * self.speed

    def wall_delay(self, t: float) -> float:
        """Real seconds until :meth:`now` reaches ``t`` (0 when it has)."""
        return max(0.0, (t - self.now()) / self.speed)

    def sleep_until(self, t: float) -> None:
        """Sleep until the clock reads ``t``."""
        delay = self.wall_delay(t)
        if delay > 0:
            time.sleep(delay)
