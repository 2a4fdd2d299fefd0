"""The :class:`Sink` interface: where a session's sound goes (WAV file, live device, fake for tests).

Audio is float at :data:`AUDIO_FS` Hz, shape (frames,) for mono or (frames, channels), full scale ±1.0.
Every block passes through the sink's :class:`~nexus.sinks.limiter.Limiter` in :meth:`Sink.write`, which
subclasses must not override (they implement :meth:`Sink._emit`). A sink also honours a *lease*: once the
controller has renewed a lease, a block written after the lease expired is replaced by silence — the safe state
a sink falls back to when its controller stops (dead-man's switch). No call path bypasses the lease: a block
written without a time (``now=None``) is checked against the lease on the wall clock (the lease's length from
its renewal), and plays silence when the lease's length is not known.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import final

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.log import logger
from nexus.sinks.limiter import HARD_CEILING_DBFS, Limiter

AUDIO_FS = 48000
"""Output sampling rate of every sink, in Hz."""


class Sink(ABC):
    """An audio output for one session.

    Parameters
    ----------
    ceiling_dbfs : float
        Output ceiling in dBFS (the facility ceiling :data:`~nexus.sinks.limiter.HARD_CEILING_DBFS` applies on top).
    fs : int
        Sampling rate in Hz.
    channels : int
        1 (mono) or 2 (stereo).
    """

    def __init__(self, ceiling_dbfs: float = HARD_CEILING_DBFS, fs: int = AUDIO_FS, channels: int = 1) -> None:
        check_number("channels", channels, ge=1, le=2)
        self.fs = int(fs)
        self.channels = int(channels)
        self.limiter = Limiter(ceiling_dbfs, fs=self.fs)
        self.frames_written = 0
        self._lease_until: float | None = None
        self._lease_wall: float | None = None  # time.monotonic() at which the lease ends
        self._last_now: float | None = None
        self._closed = False

    @property
    def ceiling_dbfs(self) -> float:
        """Effective output ceiling in dBFS."""
        return self.limiter.ceiling_dbfs

    def renew_lease(self, until: float, now: float | None = None) -> None:
        """Allow sound until time ``until`` (seconds on the session clock); after it, the sink plays silence.

        ``now`` is the session-clock time of the renewal (default: the time of the last block
        written); it gives the lease a length on the wall clock too, for blocks written without a time.
        """
        self._lease_until = float(until)
        ref = self._last_now if now is None else float(now)
        self._lease_wall = None if ref is None else time.monotonic() + max(0.0, self._lease_until - ref)

    def lease_lapsed(self, now: float | None = None) -> bool:
        """True when a lease was renewed and has lapsed at ``now`` (session clock; None: the wall clock)."""
        if self._lease_until is None:
            return False
        if now is not None:
            return now >= self._lease_until
        return self._lease_wall is None or time.monotonic() >= self._lease_wall

    @final
    def write(self, block: npt.ArrayLike, now: float | None = None) -> None:
        """Limit and play one block.

        Parameters
        ----------
        block : array_like, shape (frames,) or (frames, channels)
            Audio, full scale ±1.0.
        now : float, optional
            Session-clock time of the block's first frame, in s; checked against the lease.
        """
        if self._closed:
            raise RuntimeError("write() on a closed sink")
        x = np.asarray(block, dtype=np.float64)
        if x.ndim == 1 and self.channels == 2:
            x = np.repeat(x[:, None], 2, axis=1)
        if self.lease_lapsed(now):
            logger.warning("Sink lease expired at %.3f s (now %s): playing silence.", self._lease_until,
                           "wall clock" if now is None else f"{now:.3f} s")
            x = np.zeros_like(x)
        if now is not None:
            self._last_now = float(now)
        y = self.limiter.process(x)
        self._emit(y)
        self.frames_written += int(y.shape[0])

    def silence(self, frames: int) -> None:
        """Play ``frames`` frames of silence (the safe state)."""
        shape = (frames,) if self.channels == 1 else (frames, self.channels)
        self._emit(np.zeros(shape, dtype=np.float32))
        self.frames_written += frames

    @abstractmethod
    def _emit(self, block: npt.NDArray[np.float32]) -> None:
        """Deliver an already limited block (subclasses)."""

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire the device or file (no-op by default)."""

    def close(self) -> None:
        """Release the device or file; safe to call twice."""
        self._closed = True

    def __enter__(self) -> Sink:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
