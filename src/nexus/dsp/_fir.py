"""The compiled kernel of the CLAS phase predictor's complex FIR, for short live chunks.

The predictor (:class:`nexus.dsp.phase.CausalPhaseEstimator`) applies one complex FIR of a second of
taps to every sample of every bed. For a live tick (tens of samples per row) a direct sum over the
taps is several times cheaper than the FFT convolution, which pays for the whole history at every
tick; the estimator picks one or the other by the chunk's length. Both give the same values to the
rounding level (``tests/dsp/test_dsp_phase.py``: chunks of any length against the whole record).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nexus.dsp._jit import kernel


@kernel(fastmath={"reassoc", "contract", "nsz"})
def fir_tail(full: npt.NDArray[np.float64], taps_re: npt.NDArray[np.float64], taps_im: npt.NDArray[np.float64],
             out_re: npt.NDArray[np.float64], out_im: npt.NDArray[np.float64]) -> None:  # pragma: no cover - compiled
    """Complex FIR outputs at the last ``m`` samples of each row of ``full`` (history + chunk).

    ``full`` has shape (rows, taps - 1 + m); ``taps_re``/``taps_im`` are the taps oldest sample first
    (output ``i`` is ``full[r, i : i + taps] @ taps``); ``out_re``/``out_im`` have shape (rows, m) and
    are written in place.
    """
    rows = full.shape[0]
    n_taps = taps_re.shape[0]
    m = out_re.shape[1]
    for r in range(rows):
        for i in range(m):
            sr = 0.0
            si = 0.0
            for k in range(n_taps):
                v = full[r, i + k]
                sr += v * taps_re[k]
                si += v * taps_im[k]
            out_re[r, i] = sr
            out_im[r, i] = si
