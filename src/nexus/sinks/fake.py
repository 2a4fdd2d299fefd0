"""A sink that records what it was given (after the limiter), for tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nexus.sinks.base import Sink


class FakeSink(Sink):
    """Keeps every limited block in memory; :attr:`audio` is their concatenation."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.blocks: list[npt.NDArray[np.float32]] = []

    def _emit(self, block: npt.NDArray[np.float32]) -> None:
        self.blocks.append(block.copy())

    @property
    def audio(self) -> npt.NDArray[np.float32]:
        """All audio played so far."""
        if not self.blocks:
            return np.zeros((0,) if self.channels == 1 else (0, self.channels), dtype=np.float32)
        return np.concatenate(self.blocks, axis=0)
