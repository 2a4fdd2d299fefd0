"""The compiled kernel of the CLAS phase predictor on short live chunks: one pass per bed.

The predictor (:class:`nexus.dsp.phase.CausalPhaseEstimator`) high-passes the EEG, applies one complex
FIR of a second of taps to every sample of every bed, and derives the envelope, the SNR gate's running
power and the phase. For a live tick (tens of samples per row) a direct sum over the taps is several
times cheaper than the FFT convolution, which pays for the whole history at every tick, and one loop
per row replaces a dozen NumPy passes (high-pass, concatenation, FIR, power filter with its start-up
correction, modulus, angle, bias wrap) and the multi-horizon predictions at the tick's decision point.
The estimator takes this kernel for chunks of up to :data:`~nexus.dsp.phase.DIRECT_FIR_MAX` samples and
its NumPy/FFT path for longer ones; both give the same values to the rounding level
(``tests/dsp/test_dsp_phase_kernel.py`` pins the kernel to the NumPy formulation).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from nexus.dsp._jit import kernel

FloatArray = npt.NDArray[np.float64]


@kernel(fastmath={"reassoc", "contract", "nsz"})
def predict_tick(
    a: FloatArray, sos: FloatArray, hp_zi: FloatArray, hist: FloatArray, full: FloatArray,
    taps_re: FloatArray, taps_im: FloatArray, amp_scale: float, pow_a: float, pow_zi: FloatArray,
    pow_n: FloatArray, pow_settled: float, bias: FloatArray, ahead_idx: npt.NDArray[np.int64],
    ahead_taps: FloatArray, z_re: FloatArray, z_im: FloatArray, amp: FloatArray, snr: FloatArray,
    ahead_re: FloatArray, ahead_im: FloatArray, ahead_rows: npt.NDArray[np.bool_],
) -> None:  # pragma: no cover - compiled
    """The estimator's update on a chunk ``a`` (rows, m) of finite EEG (µV), state carried in place.

    ``sos`` (sections, 6): the high-pass (direct form II transposed, as ``scipy.signal.sosfilt``) with its
    state ``hp_zi`` (sections, rows, 2). ``hist`` (rows, taps - 1): the last high-passed samples, updated;
    ``full`` (rows, taps - 1 + m): scratch, left holding history + chunk. ``taps_re``/``taps_im``: the
    complex FIR, oldest sample first. The running power ``pow_a * y² + (1 - pow_a) * previous`` has state
    ``pow_zi`` (rows,) and sample count ``pow_n`` (rows,), corrected for its start-up (``1 - (1 - pow_a) ** n``,
    exactly 1.0 from ``pow_settled`` samples on). ``bias`` (rows,): the phase added to each row's predictions
    (rad), by turning its analytic signal. ``ahead_idx`` (D,): chunk samples at which the predictions
    of every horizon are made with ``ahead_taps`` (2K, taps: the real parts of the K horizons' taps,
    then their imaginary parts, oldest sample first), for the rows where ``ahead_rows`` (rows,) is set (0 elsewhere:
    the sums over the taps at every decision point and horizon cost as much as the FIR itself).

    Written: ``z_re``/``z_im``, the predicted analytic signal turned by the bias (its angle is the phase: the
    caller takes it with NumPy's vectorised ``arctan2``), ``amp`` (µV, ``|z|`` divided by the predictor's
    shrinkage through ``amp_scale``) and ``snr`` (rows, m); ``ahead_re``/``ahead_im`` (rows, D, K).
    """
    rows, m = a.shape
    n_sec = sos.shape[0]
    h = hist.shape[1]
    n_taps = taps_re.shape[0]
    k_h = ahead_taps.shape[0] // 2
    keep = 1.0 - pow_a
    for r in range(rows):
        f = full[r]
        for i in range(h):
            f[i] = hist[r, i]
        for i in range(m):  # the high-pass, section by section
            v = a[r, i]
            for s in range(n_sec):
                y = sos[s, 0] * v + hp_zi[s, r, 0]
                hp_zi[s, r, 0] = sos[s, 1] * v - sos[s, 4] * y + hp_zi[s, r, 1]
                hp_zi[s, r, 1] = sos[s, 2] * v - sos[s, 5] * y
                v = y
            f[h + i] = v
        zi = pow_zi[r]
        # the direct sums over the taps, four outputs at a time (eight independent sums per pass over the
        # taps, which the compiler vectorises: the sums may be reordered)
        i = 0
        while i + 4 <= m:
            r0 = r1 = r2 = r3 = 0.0
            i0 = i1 = i2 = i3 = 0.0
            for k in range(n_taps):
                tr = taps_re[k]
                ti = taps_im[k]
                v0 = f[i + k]
                v1 = f[i + 1 + k]
                v2 = f[i + 2 + k]
                v3 = f[i + 3 + k]
                r0 += v0 * tr
                r1 += v1 * tr
                r2 += v2 * tr
                r3 += v3 * tr
                i0 += v0 * ti
                i1 += v1 * ti
                i2 += v2 * ti
                i3 += v3 * ti
            z_re[r, i], z_re[r, i + 1], z_re[r, i + 2], z_re[r, i + 3] = r0, r1, r2, r3
            z_im[r, i], z_im[r, i + 1], z_im[r, i + 2], z_im[r, i + 3] = i0, i1, i2, i3
            i += 4
        while i < m:
            r0 = i0 = 0.0
            for k in range(n_taps):
                r0 += f[i + k] * taps_re[k]
                i0 += f[i + k] * taps_im[k]
            z_re[r, i], z_im[r, i] = r0, i0
            i += 1
        cb, sb = math.cos(bias[r]), math.sin(bias[r])
        zi = pow_zi[r]
        for i in range(m):
            re = z_re[r, i]
            im = z_im[r, i]
            y = f[h + i]
            pw = pow_a * (y * y) + zi
            zi = keep * pw
            n_pw = pow_n[r] + i + 1
            if n_pw < pow_settled:
                pw = pw / (1.0 - keep**n_pw)
            am = math.sqrt(re * re + im * im) * amp_scale
            amp[r, i] = am
            snr[r, i] = am / math.sqrt(2.0 * pw) if pw > 0 else 0.0
            if bias[r] != 0.0:
                z_re[r, i] = re * cb - im * sb
                z_im[r, i] = re * sb + im * cb
        pow_zi[r] = zi
        pow_n[r] += m
        for d in range(ahead_idx.shape[0]):  # every horizon from the decision point's window, four at a time
            if not ahead_rows[r]:
                for j in range(k_h):
                    ahead_re[r, d, j] = 0.0
                    ahead_im[r, d, j] = 0.0
                continue
            start = ahead_idx[d]
            for j in range(0, k_h, 4):
                jj = (j, min(j + 1, k_h - 1), min(j + 2, k_h - 1), min(j + 3, k_h - 1))  # (the last repeated)
                r0 = r1 = r2 = r3 = i0 = i1 = i2 = i3 = 0.0
                for k in range(n_taps):
                    v = f[start + k]
                    r0 += v * ahead_taps[jj[0], k]
                    r1 += v * ahead_taps[jj[1], k]
                    r2 += v * ahead_taps[jj[2], k]
                    r3 += v * ahead_taps[jj[3], k]
                    i0 += v * ahead_taps[k_h + jj[0], k]
                    i1 += v * ahead_taps[k_h + jj[1], k]
                    i2 += v * ahead_taps[k_h + jj[2], k]
                    i3 += v * ahead_taps[k_h + jj[3], k]
                for q, re, im in ((0, r0, i0), (1, r1, i1), (2, r2, i2), (3, r3, i3)):
                    ahead_re[r, d, jj[q]] = re * cb - im * sb
                    ahead_im[r, d, jj[q]] = re * sb + im * cb
        for i in range(h):
            hist[r, i] = f[m + i]
