"""Clean shutdown: SIGTERM and SIGINT end a facility run properly; workers never outlive their parent.

:func:`stop_on_signals` turns SIGTERM and SIGINT into :class:`FacilityStopped` (a
:class:`KeyboardInterrupt`, so that no ``except Exception`` in a step can swallow it) in the main
thread; the run's cleanup then silences every bed, closes the sessions, flushes the journals and
writes each session's end state before the process exits. A second signal during that cleanup is
logged and ignored, so the cleanup finishes. :func:`parent_watch` gives a worker process a check
that stops it as soon as its parent is gone (killed with ``kill -9``), so it is never orphaned.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from nexus.core.log import logger


class FacilityStopped(KeyboardInterrupt):
    """The facility was told to stop (a signal, or its parent process died); ``reason`` says which."""

    def __init__(self, reason: str, signum: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number (143 for SIGTERM, 130 for SIGINT), 1 otherwise."""
        return 128 + self.signum if self.signum else 1


@contextmanager
def stop_on_signals(signums: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """Raise :class:`FacilityStopped` in the main thread on the first of ``signums``; ignore repeats.

    Outside the main thread (where Python cannot install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if fired:
            logger.warning("%s again while stopping: the clean shutdown goes on.", name)
            return
        fired.append(signum)
        logger.warning("%s: stopping the facility; every session is ended properly.", name)
        raise FacilityStopped(f"facility stopped by {name}", signum)

    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def die_with_parent(parent_pid: int, signum: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux; elsewhere a no-op).

    Call it after :func:`stop_on_signals` is in place; raises :class:`FacilityStopped` at once if the
    parent is already gone. :func:`parent_watch` covers the systems without it.
    """
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signum))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError) as exc:  # pragma: no cover - an unusual libc
            logger.warning("Cannot ask to die with the parent process (%s); watching it instead.", exc)
    if os.getppid() != parent_pid:
        raise FacilityStopped(f"the parent process {parent_pid} died")


def parent_watch(parent_pid: int) -> Callable[[], None]:
    """A check to call often in a worker: raises :class:`FacilityStopped` once ``parent_pid`` is not its parent."""

    def check() -> None:
        if os.getppid() != parent_pid:
            raise FacilityStopped(f"the parent process {parent_pid} died")

    return check
