"""The :class:`Sink` interface: where a session's sound goes (WAV file, live device, fake for tests).

Audio is float at :data:`AUDIO_FS` Hz, shape (frames,) for mono or (frames, channels), full scale ±1.0.
Every block passes through the sink's :class:`~nexus.sinks.limiter.Limiter` in :meth:`Sink.write`, which
subclasses must not override (they implement :meth:`Sink._emit`). A sink also honours a *lease*: once the
controller has renewed a lease, a block written after the lease expired is replaced by silence — the safe state
a sink falls back to when its controller stops (dead-man's switch).
"""

from __future__ import annotations

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
        self._closed = False

    @property
    def ceiling_dbfs(self) -> float:
        """Effective output ceiling in dBFS."""
        return self.limiter.ceiling_dbfs

    def renew_lease(self, until: float) -> None:
        """Allow sound until time ``until`` (seconds on the session clock); after it, the sink plays silence."""
        self._lease_until = float(until)

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
        if self._lease_until is not None and now is not None and now >= self._lease_until:
            logger.warning("Sink lease expired at %.3f s (now %.3f s): playing silence.", self._lease_until, now)
            x = np.zeros_like(x)
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
