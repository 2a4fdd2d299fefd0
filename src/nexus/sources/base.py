"""The :class:`Source` interface: everything that delivers live signals to a session.

Implementations: the synthetic sleeper, EDF replay, LSL inlets, BrainFlow boards. A source is
*pulled*: :meth:`Source.read` returns, without blocking, the samples that have become available
by the clock's current time and were not returned before (``None`` when there are none).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from nexus.core.types import Chunk


class Source(ABC):
    """A live signal source for one session.

    Attributes
    ----------
    session : str
        The session this source feeds.
    channels : tuple of str
        Channel names, in row order of every :class:`~nexus.core.types.Chunk` it returns.
    fs : float
        Sampling rate in Hz.
    """

    session: str
    channels: tuple[str, ...]
    fs: float

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire the device or file (no-op by default)."""

    @abstractmethod
    def read(self) -> Chunk | None:
        """Return the samples that became available since the last call, or ``None``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device or file (no-op by default); safe to call twice."""

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
