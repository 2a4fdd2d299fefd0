"""The hard output limiter that every sink applies and no program can bypass.

Levels are in dBFS: 0 dBFS is the full scale of the output (sample value ±1.0). The ceiling of a limiter is
the lower of what its owner asks for and :data:`HARD_CEILING_DBFS`, the facility's absolute maximum; a
program cannot raise it, and the sink applies it to every block it is given (see :class:`~nexus.sinks.base.Sink`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number

HARD_CEILING_DBFS = -12.0
"""Absolute output ceiling in dBFS (peak). No sink ever emits a sample above it."""


def db_to_amp(db: float | npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Convert dBFS to a linear peak amplitude (0 dBFS → 1.0)."""
    return np.asarray(10.0 ** (np.asarray(db, dtype=float) / 20.0))


class Limiter:
    """A peak limiter with smooth gain changes between blocks and a final hard clip.

    Each block's gain is the largest that keeps its peak under the ceiling. A louder block gets its lower gain
    from its first sample (attack at once); after it, the gain recovers at ``release_db_per_s``, moving linearly
    across each block from the previous block's gain to the new one (no clicks while it recovers). A final clip
    guarantees that no sample exceeds the ceiling whatever the input (it only catches rounding). NaN and
    infinite samples are replaced by silence.

    Parameters
    ----------
    ceiling_dbfs : float
        Requested ceiling in dBFS; the effective ceiling is ``min(ceiling_dbfs, HARD_CEILING_DBFS)``.
    fs : float
        Sampling rate in Hz (for the release rate).
    release_db_per_s : float
        How fast the gain recovers after a loud block, in dB/s (> 0).
    """

    def __init__(self, ceiling_dbfs: float = HARD_CEILING_DBFS, fs: float = 48000.0,
                 release_db_per_s: float = 20.0) -> None:
        check_number("ceiling_dbfs", ceiling_dbfs, le=0, unit="dBFS")
        check_number("fs", fs, gt=0, unit="Hz")
        check_number("release_db_per_s", release_db_per_s, gt=0, unit="dB/s")
        self.ceiling_dbfs = float(min(ceiling_dbfs, HARD_CEILING_DBFS))
        self.ceiling = float(db_to_amp(self.ceiling_dbfs))
        self.fs = float(fs)
        self.release_db_per_s = float(release_db_per_s)
        self._gain = 1.0
        self.n_limited = 0
        """Number of input samples above the ceiling (each of them was reduced)."""

    def process(self, block: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Limit one block of shape (frames,) or (frames, channels); returns float32 of the same shape."""
        x = np.asarray(block, dtype=np.float64)
        x = np.where(np.isfinite(x), x, 0.0)
        if x.size == 0:
            return x.astype(np.float32)
        peak = float(np.max(np.abs(x)))
        target = min(1.0, self.ceiling / peak) if peak > 0 else 1.0
        frames = x.shape[0]
        if target < self._gain:
            new = target  # attack at once
        else:
            rise = 10.0 ** (self.release_db_per_s * frames / self.fs / 20.0)
            new = min(target, self._gain * rise)
        ramp = np.linspace(self._gain, new, frames, endpoint=True)
        ramp = np.minimum(ramp, target)  # never above what this block needs
        y = x * (ramp[:, None] if x.ndim == 2 else ramp)
        over = np.abs(y) > self.ceiling
        self.n_limited += int(np.count_nonzero(np.abs(x) > self.ceiling))
        if over.any():
            y = np.clip(y, -self.ceiling, self.ceiling)
        self._gain = new
        return y.astype(np.float32)
