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
on a daemon thread every ``period_s``.
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
            for s in stale:
                self._go_safe(bank.sinks[s], s)
                self.silenced.append((now, k, s))
                n += 1
            if stale:
                logger.error("Watchdog: %d bed(s) of bank %d (slots %s) not renewed for %.1f s: the loop has "
                             "stopped; safe state.", len(stale), k, ", ".join(map(str, stale[:10]))
                             + (" …" if len(stale) > 10 else ""), now - float(w.since[stale].max()))
        return n

    def _go_safe(self, sink: Any, slot: int) -> None:
        # on a helper thread, so that a sink that hangs cannot keep the others from going silent
        t = threading.Thread(target=sink.go_safe, args=(float("nan"),), name=f"nexus-safe-{slot}", daemon=True)
        t.start()
        t.join(timeout=self.hang_s)
        if t.is_alive():
            logger.error("Watchdog: the sink of slot %d hangs while going silent; the other beds go on.", slot)

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
