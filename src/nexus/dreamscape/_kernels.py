"""The compiled kernel of the CLAS gates' running state: the artefact hold and the envelope's running mean.

:meth:`nexus.dreamscape.controller.Controller._clas` holds clicks back for a while after the predicted
envelope exceeded the physiological maximum, and compares the envelope with its own running mean, which stands
still through an artefact and its hold. As NumPy passes over each live tick (beds × samples) this took a
cumulative maximum, several ``where``s, an ``lfilter`` and a power per sample for the mean's start-up
correction; here it is one loop per bed. ``tests/dreamscape/test_clas_kernels.py`` pins it to the NumPy
formulation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nexus.dsp._jit import kernel

FloatArray = npt.NDArray[np.float64]


@kernel
def envelope_tick(
    amp: FloatArray, max_amp: FloatArray, t0: float, fs: float, hold_s: float, hold_until: FloatArray,
    alpha: float, env_zi: FloatArray, env_n: FloatArray, settled: float, hold: FloatArray, env_mean: FloatArray,
) -> None:  # pragma: no cover - compiled
    """The hold and the envelope's running mean over a chunk of predicted envelope ``amp`` (rows, m), in µV.

    Sample ``i`` is taken at ``t0 + i / fs`` (s). An envelope above ``max_amp`` (rows,) holds clicks until
    ``hold_s`` after it; ``hold_until`` (rows,) carries the hold (s), updated in place. The running mean
    ``alpha * x + (1 - alpha) * previous`` (state ``env_zi``, rows) takes, while a sample is held, the mean
    before the chunk instead of the envelope; it is corrected for its start-up by ``1 - (1 - alpha) ** n`` (``env_n``
    samples so far, rows; exactly 1.0 from ``settled`` samples on); both are updated in place.

    Written (rows, m): ``hold``, the time until which each sample is held (s), and ``env_mean`` (µV).
    """
    rows, m = amp.shape
    keep = 1.0 - alpha
    for r in range(rows):
        h0 = hold_until[r]
        h = h0
        zi = env_zi[r]
        still = zi / keep  # the mean before the chunk: the input while held
        for i in range(m):
            if amp[r, i] > max_amp[r]:
                h = max(t0 + i / fs + hold_s, h0)
            hold[r, i] = h
            x = still if t0 + i / fs < h else amp[r, i]
            y = alpha * x + zi
            zi = keep * y
            n = env_n[r] + i + 1
            env_mean[r, i] = y / (1.0 - keep**n) if n < settled else y
        hold_until[r] = h
        env_zi[r] = zi
        env_n[r] += m
