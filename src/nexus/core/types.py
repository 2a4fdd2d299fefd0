"""Small value types that flow between layers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class Chunk:
    """A block of samples from one session's source.

    Attributes
    ----------
    session : str
        Session identifier.
    t0 : float
        Time of the first sample, in seconds since the session started.
    fs : float
        Sampling rate, in Hz.
    data : ndarray, shape (n_channels, n_samples)
        Signals in µV (accelerometer in milli-g, respiration in arbitrary units).
    channels : tuple of str
        Channel names, one per row of ``data``.
    seq : int
        Sequence number of the chunk within its session (detects gaps and duplicates).
    """

    session: str
    t0: float
    fs: float
    data: npt.NDArray[np.float64]
    channels: tuple[str, ...] = field(default=())
    seq: int = 0

    def __post_init__(self) -> None:
        check_number("fs", self.fs, gt=0, unit="Hz")
        if self.data.ndim != 2:
            raise InvalidInputError(
                f"Invalid chunk data for session '{self.session}': expected 2-D (channels, samples), "
                f"got {self.data.ndim}-D."
            )
        if self.channels and len(self.channels) != self.data.shape[0]:
            raise InvalidInputError(
                f"Invalid chunk for session '{self.session}': {len(self.channels)} channel names "
                f"for {self.data.shape[0]} data rows."
            )

    @property
    def n_samples(self) -> int:
        """Number of samples per channel."""
        return int(self.data.shape[1])

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.n_samples / self.fs

    @property
    def t1(self) -> float:
        """Time just after the last sample, in seconds."""
        return self.t0 + self.duration
