"""A desk's database work on its own thread, so that the live loop's ticks do not wait for the database.

The order and consent desks (:mod:`nexus.facility.orders`, :mod:`nexus.facility.consent_desk`) read the
facility database while beds run. Done on the loop thread, after a lane step, each read is CPU time of a tick
(at 500 beds the consent read of every client took 4-7 ms once a second, the order poll about 1 ms a tick).
A :class:`DeskReader` runs the read on a daemon thread instead and keeps its latest result for the desk to
:meth:`take` on the loop thread, where the supervisor is changed (only there: the supervisor is not
thread-safe); writes the desk hands over (:meth:`submit`) run on the same thread, in order, before its next
read. A read that raises is kept as its result (the desk logs the outage as before); a write that raises is
retried before the next read.

``aligned=True`` reads only when :meth:`kick`-ed (the facility kicks at the end of each tick, so that the read
runs while the loop sleeps instead of taking the interpreter from a tick) and at least ``poll_s`` after the
last read, or after ``2 * poll_s`` without a kick; otherwise every ``poll_s`` of wall time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from nexus.core.log import logger


class DeskReader:
    """Runs ``read`` (and the desk's writes) on a daemon thread; the latest result waits in :meth:`take`.

    Parameters
    ----------
    name : str
        Thread name suffix (``nexus-<name>``).
    read : callable
        The desk's database read; its return value (or the exception it raised) is the result.
    poll_s : float
        Least wall-clock time between two reads, in s.
    aligned : bool
        Read only when kicked (see the module notes).
    on_write_error : callable, optional
        Called with the exception of a write that failed (it is retried before the next read).
    """

    def __init__(self, name: str, read: Callable[[], Any], poll_s: float, *, aligned: bool = False,
                 on_write_error: Callable[[BaseException], None] | None = None) -> None:
        self._read = read
        self.poll_s = float(poll_s)
        self.aligned = bool(aligned)
        self._on_write_error = on_write_error
        self._lock = threading.Lock()
        self._result: list[Any] = []  # at most one: the newest result not taken yet
        self._writes: deque[Callable[[], None]] = deque()
        self._write_lock = threading.Lock()  # one write at a time (the thread's, or a caller's run_writes)
        self._wake = threading.Event()
        self._kicked = False
        self._stop = threading.Event()
        self._next_read = 0.0
        self.reads = 0
        """Reads done so far."""
        self._thread = threading.Thread(target=self._run, name=f"nexus-{name}", daemon=True)

    def start(self) -> None:
        """Start the thread (the first read follows at once)."""
        self._thread.start()

    def kick(self) -> None:
        """Wake the thread: it runs the writes handed over and, when due, a read (cheap; any thread)."""
        self._kicked = True
        self._wake.set()

    def take(self) -> Any:
        """The newest read result not taken yet (the exception of a read that failed), or None."""
        if not self._result:  # the cheap path of almost every lane step
            return None
        with self._lock:
            return self._result.pop() if self._result else None

    def submit(self, write: Callable[[], None]) -> None:
        """Run ``write`` on the thread, after the writes handed over before it and before the next read."""
        self._writes.append(write)
        self._wake.set()

    def run_writes(self) -> None:
        """Run the writes handed over so far, now, on the calling thread (a write that fails stays queued)."""
        with self._write_lock:
            while self._writes:
                write = self._writes[0]
                try:
                    write()
                except Exception as exc:  # the database is down: retried before the next read
                    if self._on_write_error is not None:
                        self._on_write_error(exc)
                    return
                self._writes.popleft()

    def _due(self, now: float) -> bool:
        if now < self._next_read:
            return False
        if not self.aligned or self._kicked:
            return True
        return now >= self._next_read + self.poll_s  # no kick for a while: read all the same

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            self._wake.clear()
            self.run_writes()
            due = self._due(now)
            self._kicked = False  # a kick before the read is due is not kept for later
            if due:
                self._next_read = now + self.poll_s
                try:
                    got: Any = self._read()
                except Exception as exc:  # kept as the result: the desk logs it on the loop thread
                    got = exc
                self.reads += 1
                with self._lock:
                    self._result[:] = [got]
            wait = self._next_read - time.monotonic() + (self.poll_s if self.aligned else 0.0)
            if self._writes:  # writes that failed: retried after a poll interval
                wait = self.poll_s
            self._wake.wait(max(0.001, wait))

    def close(self) -> None:
        """Stop the thread; the writes still queued run now, on the calling thread."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                logger.warning("The %s thread did not stop within 10 s.", self._thread.name)
        self.run_writes()
