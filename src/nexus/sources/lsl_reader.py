"""The thread that owns an open LSL inlet: every blocking liblsl call of a live source runs there.

liblsl's calls can block in C for a long time, or for ever, on a stream that died or is being
recovered (a pull or time correction waiting on the inlet's own threads, the inlet's destructor
joining them). A thread blocked in C holds off Python's signal handlers when it is the main one:
Ctrl-C and SIGTERM would not be handled. So the facility's loop never calls liblsl: each inlet
has an :class:`InletReader` that pulls from it (``pull_chunk`` with a timeout, waking as soon as
samples arrive), measures its clock offset every few seconds, and finally closes and destroys it,
all in its own daemon thread. The loop takes what the reader queued (:meth:`InletReader.take`).

Closing is a request (:meth:`InletReader.stop`), never a wait: the reader ends within ``wait_s``
when liblsl answers. :func:`wait_readers` bounds the wait for all of them at the end of a run
(readers still held in liblsl then are left behind, said in one line); what they had pulled was
queued, and is recorded.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.log import logger

#: readers whose thread has not ended yet (see :func:`wait_readers`)
_LIVE: weakref.WeakSet[InletReader] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


class InletReader:
    """Pulls an inlet in a daemon thread and queues what arrives, with its arrival time.

    Parameters
    ----------
    inlet : pylsl.StreamInlet
        An opened inlet; the reader owns it from now on (closes and destroys it in its thread).
    name : str
        For the thread's name and log lines.
    max_samples : int
        Most samples per pull (at most 16384; a longer backlog comes in several pulls).
    wait_s : float
        Longest a pull waits for the first sample, in s (also how soon a stop is seen).
    pace_s : float
        Pause after a pull that returned samples, in s: samples are batched at most this late,
        so that a streaming inlet wakes its thread ~1/pace_s times a second, not once per push
        (300 threads waking per push took the loop's thread's turns at the interpreter lock).
    offset_every_s : float
        Clock offset (:meth:`pylsl.StreamInlet.time_correction`) measured this often, in s.
    offset_at : float
        Host LSL time of the last offset measured by the opener, in s (the next one is due
        ``offset_every_s`` after it).

    Notes
    -----
    Queued items, in arrival order: ``("data", block, stamps, host)`` (block: channels x samples
    float64 in the stream's units; stamps: the sender's LSL times, s; host: this host's LSL time
    when the pull returned, s), ``("offset", host, offset_s)`` and ``("error", exception)`` (a pull
    that failed: a stream without a source id is lost for good when its outlet dies).
    """

    def __init__(self, inlet: Any, name: str, *, max_samples: int = 65536, wait_s: float = 0.2,
                 pace_s: float = 0.15, offset_every_s: float = 5.0, offset_at: float = -np.inf) -> None:
        self._inlet = inlet
        self.name = name
        self.max_samples = int(max_samples)
        self.wait_s = float(wait_s)
        self.pace_s = float(pace_s)
        self.offset_every_s = float(offset_every_s)
        self._offset_at = float(offset_at)
        self._items: deque[tuple[Any, ...]] = deque()
        self._stop = threading.Event()
        self.done = threading.Event()
        """Set when the thread has ended (its inlet closed and destroyed)."""
        self.pulls = 0
        self._thread = threading.Thread(target=self._run, name=f"nexus-lsl-{name}"[:40], daemon=True)
        with _LIVE_LOCK:
            _LIVE.add(self)
        self._thread.start()

    def take(self) -> list[tuple[Any, ...]]:
        """Everything queued since the last call, oldest first (never blocks)."""
        out = []
        items = self._items
        while items:
            out.append(items.popleft())
        return out

    def stop(self) -> None:
        """Ask the thread to end (it closes the inlet); returns at once."""
        self._stop.set()

    def _run(self) -> None:
        import pylsl

        inlet = self._inlet
        self._inlet = None  # the thread's reference is the last one: the inlet is destroyed here
        offset_at = self._offset_at
        failed = False
        n_max = min(self.max_samples, 16384)
        dtype = getattr(inlet, "np_dtype", None)  # numeric streams: pulled into one buffer, reused
        buf = None if dtype is None else np.empty(n_max * int(inlet.channel_count), dtype=dtype)
        try:
            while not self._stop.is_set():
                host = pylsl.local_clock()
                if host - offset_at >= self.offset_every_s:
                    offset_at = host
                    try:
                        self._items.append(("offset", host, float(inlet.time_correction(timeout=1.0))))
                    except Exception as exc:  # the sender may be gone for a moment; the last offset holds
                        logger.debug("LSL time correction failed for %s: %s", self.name, exc)
                try:  # what is there already, in one call; when nothing is, wait for the first sample
                    data, stamps = inlet.pull_chunk(timeout=0.0, max_samples=n_max, dest_obj=buf, as_numpy=True)
                    if stamps is None or len(stamps) == 0:
                        data, stamps = inlet.pull_chunk(timeout=self.wait_s, max_samples=n_max, dest_obj=buf,
                                                        min_samples=1, as_numpy=True)
                except Exception as exc:
                    if not failed:  # said once; the loop decides what a lost stream means
                        self._items.append(("error", exc))
                        failed = True
                    self._stop.wait(1.0)
                    continue
                failed = False
                self.pulls += 1
                if stamps is None or len(stamps) == 0:
                    continue
                arrived = pylsl.local_clock()
                block: npt.NDArray[np.float64] = np.asarray(data, dtype=np.float64).T.copy()
                self._items.append(("data", block, np.asarray(stamps, dtype=np.float64), arrived))
                if self.pace_s:
                    time.sleep(self.pace_s)  # cheaper than an event's wait; a stop is seen right after
        except Exception as exc:  # never silent: the loop sees the error like a failed pull
            self._items.append(("error", exc))
        finally:
            try:
                inlet.close_stream()
            except Exception as exc:
                logger.debug("Closing the LSL inlet of %s: %s", self.name, exc)
            del inlet  # destroyed here (liblsl joins the inlet's threads), never on the loop's thread
            self.done.set()
            with _LIVE_LOCK:
                _LIVE.discard(self)


def wait_readers(timeout: float) -> int:
    """Wait up to ``timeout`` s in all for every reader asked to stop; returns how many are still held.

    A reader still in a liblsl call then is left to end by itself (a daemon thread); the samples it
    had pulled were queued and taken by its source's flush, so nothing received is lost. One line says so.
    """
    end = time.monotonic() + timeout
    with _LIVE_LOCK:
        readers = [r for r in _LIVE if r._stop.is_set()]
    for r in readers:
        r.done.wait(max(0.0, end - time.monotonic()))
    held = [r.name for r in readers if not r.done.is_set()]
    if held:
        logger.warning("%d LSL inlet(s) did not close within %g s (held in liblsl: %s); left to close in the "
                       "background. Everything they delivered was recorded.", len(held), timeout,
                       ", ".join(held[:5]) + (" …" if len(held) > 5 else ""))
    return len(held)


__all__ = ["InletReader", "wait_readers"]
