"""The dead-man's switch that does not depend on the loop: a watchdog thread over the sink banks.

The facility loop renews every running bed's lease at each step
(:meth:`nexus.sinks.bedside.SinkBank.renew`), on the loop's own clock. When the loop stops — a hang,
a crash in a step, a fast-forward that stalls — nothing in the loop can notice, so the
:class:`Watchdog` looks from outside, on the wall clock: it watches each bank's renewal counters
and puts every bed whose lease has not been renewed for ``lease_s`` wall seconds in the safe state
(:meth:`~nexus.sinks.bedside.BedSink.go_safe`: silence, nothing scheduled), and marks it lapsed so
the bank refuses its commands until the loop renews it again (then the bed follows its program
again; the lapse is logged and counted in :attr:`Watchdog.silenced`).

:meth:`Watchdog.check` does one pass (tests drive it with a fake wall clock); :meth:`start` runs it
on a daemon thread every ``period_s``. :data:`LEASE_S` is the facility's lease: short enough that every
bed is silent within 2 s of the loop's last step, with room for the check period and the silencing itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nexus.core.checks import check_number
from nexus.core.log import logger

LEASE_S = 1.5
"""Wall-clock lease of the facility's watchdog, in s (silent within 2 s of the loop's last step)."""


@dataclass
class _Watched:
    bank: Any
    seen: np.ndarray  # renewal counters at the last change
    since: np.ndarray  # wall time of the last change, per slot


class Watchdog:
    """Silences every bed whose lease has not been renewed for ``lease_s`` seconds of wall time.

    Parameters
    ----------
    lease_s : float
        Wall-clock seconds without a renewal after which a bed is put in the safe state.
    period_s : float
        Time between two checks of the watchdog thread, in s.
    clock : callable, optional
        Wall clock in seconds (default :func:`time.monotonic`).
    hang_s : float
        How long the watchdog waits for one sink to go silent before it moves on to the next, in s.
    """

    def __init__(self, lease_s: float = 2.0, *, period_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, hang_s: float = 0.2) -> None:
        self.hang_s = check_number("hang_s", hang_s, gt=0, unit="s")
        self.lease_s = check_number("lease_s", lease_s, gt=0, unit="s")
        self.period_s = check_number("period_s", period_s, gt=0, unit="s")
        self.clock = clock
        self._watched: list[_Watched] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.silenced: list[tuple[float, int, int]] = []
        """(wall time, bank number, slot) of every bed the watchdog silenced."""

    def watch(self, bank: Any) -> None:
        """Watch a :class:`~nexus.sinks.bedside.SinkBank` (every slot counts as renewed now)."""
        now = self.clock()
        with self._lock:
            if any(w.bank is bank for w in self._watched):
                return
            self._watched.append(_Watched(bank, bank.renewals.copy(), np.full(bank.capacity, now)))

    def watch_supervisor(self, supervisor: Any) -> int:
        """Watch the sink bank of every lane of a supervisor; return how many banks are watched."""
        for lane in supervisor.lanes:
            bank = getattr(lane.analyzer("dreamscape"), "bank", None)
            if bank is not None:
                self.watch(bank)
        return len(self._watched)

    def check(self) -> int:
        """One pass: silence the beds whose lease lapsed on the wall clock; return how many were silenced now."""
        now = self.clock()
        n = 0
        with self._lock:
            watched = list(self._watched)
        for k, w in enumerate(watched):
            bank = w.bank
            renewed = bank.renewals != w.seen
            if renewed.any():
                w.seen[renewed] = bank.renewals[renewed]
                w.since[renewed] = now
            stale = [s for s in np.flatnonzero((now - w.since >= self.lease_s) & ~bank.lapsed).tolist()
                     if bank.sinks[s] is not None]
            bank.lapsed[stale] = True  # the bank refuses their commands until the loop renews the leases
            self._silence([(s, bank.sinks[s]) for s in stale])
            for s in stale:
                self.silenced.append((now, k, s))
                n += 1
            if stale:
                logger.error("Watchdog: %d bed(s) of bank %d (slots %s) not renewed for %.1f s: the loop has "
                             "stopped; safe state.", len(stale), k, ", ".join(map(str, stale[:10]))
                             + (" …" if len(stale) > 10 else ""), now - float(w.since[stale].max()))
        return n

    def _silence(self, beds: list[tuple[int, Any]]) -> None:
        """Silence ``beds`` on a helper thread; a sink that hangs there is left behind after ``hang_s``.

        One helper goes down the list; when it makes no progress for ``hang_s``, a new helper starts
        after the sink it is stuck on, so one hanging sink cannot keep the others playing.
        """
        start = 0
        while start < len(beds):
            at = [start]

            def work(first: int, at: list[int] = at) -> None:
                for i in range(first, len(beds)):
                    at[0] = i
                    beds[i][1].go_safe(float("nan"))
                at[0] = len(beds)

            t = threading.Thread(target=work, args=(start,), name="nexus-watchdog-silence", daemon=True)
            t.start()
            seen = -1
            while True:
                t.join(timeout=self.hang_s)
                if not t.is_alive():
                    return
                if at[0] == seen:
                    logger.error("Watchdog: the sink of slot %d hangs while going silent; the other beds go on.",
                                 beds[at[0]][0])
                    start = at[0] + 1
                    break
                seen = at[0]

    def start(self) -> Watchdog:
        """Run :meth:`check` every ``period_s`` on a daemon thread (independent of the loop)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="nexus-watchdog", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.check()
            except Exception as exc:  # the watchdog must outlive any one bad sink or bank
                logger.error("Watchdog check failed: %s", exc)

    def stop(self) -> None:
        """Stop the thread (the beds are left as they are)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
