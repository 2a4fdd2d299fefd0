"""Reference (NumPy) forms of the synthetic fleet's compiled look-ups: the oracles they are tested against.

:func:`nexus.sources.synthetic._render.interval_level` and :func:`~nexus.sources.synthetic._render.stage_weights`
fuse these chains of whole-array passes into one compiled pass with the same arithmetic; the tests compare the two.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nexus.core.stages import EPOCH_S
from nexus.sources.synthetic.intervals import IntervalTable

_EYE = np.eye(5)


def interval_level(
    table: IntervalTable, t: npt.NDArray[np.float64], sess: npt.NDArray[np.int64], ramp: float = 1.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``IntervalTable.level`` as whole-array NumPy passes (a table of at least one interval)."""
    q = sess[:, None] * table.span + t[None, :]
    i = np.searchsorted(table.keys, q, side="right") - 1
    ok = i >= 0
    i = np.maximum(i, 0)
    dt = t[None, :] - table.onset[i]
    inside = ok & (table.session[i] == sess[:, None]) & (dt >= 0) & (dt < table.duration[i])
    lev = np.clip(np.minimum(dt, table.duration[i] - dt) / ramp, 0.0, 1.0) * inside
    return lev, table.value[i] * inside


def stage_weights(
    stages: npt.NDArray[np.int64], t: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``SyntheticFleet._weights`` as whole-array NumPy passes: stage mixture (S, T, 5), arousal level ``b``."""
    n_epochs = stages.shape[1]
    p = t / EPOCH_S - 0.5
    fl = np.floor(p)
    i0 = np.minimum(np.maximum(fl, 0), n_epochs - 1).astype(np.int64)
    i1 = np.minimum(np.maximum(fl + 1, 0), n_epochs - 1).astype(np.int64)
    a = np.clip((p - fl - 0.5) / 0.5 + 0.5, 0.0, 1.0)[None, :, None]
    w = _EYE[stages[:, i0]] * (1.0 - a) + _EYE[stages[:, i1]] * a
    return w * (1.0 - 0.85 * b[..., None]) + 0.85 * b[..., None] * _EYE[0]
