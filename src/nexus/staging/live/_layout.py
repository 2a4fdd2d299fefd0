"""Sizes shared by the parts of the live stager: 5-s blocks, Welch segments and bins, at 100 Hz."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nexus.staging.window import KMAX, N_BINS, SEG, STEP

FloatArray = npt.NDArray[np.float64]

BLOCK_S: float = 5.0
"""Re-estimation period and block length, in seconds of data."""
_BLOCK = 500  # samples per block at 100 Hz
_BLOCKS_PER_EPOCH = 6
_SEG = SEG  # Welch segment (5 s at 100 Hz)
_STEP = STEP  # Welch step (2.5 s)
_N_SEG = 11  # segments per 30-s epoch
_N_BINS = N_BINS  # PSD bins 0..30 Hz at 0.2 Hz
_KMAX = KMAX
_HISTORY = _SEG - _STEP  # filtered samples kept before the next block (the straddling segment's first half)


def _any(a: npt.NDArray[np.bool_], axis: int) -> npt.NDArray[np.bool_]:
    return np.asarray(a.any(axis=axis), dtype=bool)
