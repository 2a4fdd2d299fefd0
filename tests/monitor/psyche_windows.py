"""Window features for the psyche detectors' tests: what :meth:`PsycheState.window` reads of a block."""

from __future__ import annotations

import numpy as np

from nexus.monitor.features import WindowFeatures


def window_features(x: np.ndarray, t0: float, rows: np.ndarray | None = None, fs: float = 100.0) -> WindowFeatures:
    """The features of one window ``x`` (rows, channels, samples at ``fs`` Hz) beginning at ``t0`` s.

    ``rows`` are the lane slots of ``x``'s rows (default ``0..r-1``). Only what the psyche detectors read is
    computed (mean, SD, extremes, first differences); the rest is zeros.
    """
    r, c, n = x.shape
    z = np.zeros((r, c))
    return WindowFeatures(
        rows=np.arange(r) if rows is None else rows, t0=np.full(r, t0), t1=np.full(r, t0 + n / fs),
        n=np.full(r, float(n)), mean=x.mean(axis=-1), std=x.std(axis=-1), mn=x.min(axis=-1), mx=x.max(axis=-1),
        at_mn=z, at_mx=z, zero_frac=z, nonfinite=z, maxdiff=np.abs(np.diff(x, axis=-1)).max(axis=-1),
        meandiff=np.abs(np.diff(x, axis=-1)).mean(axis=-1), hum=np.zeros((r, c, 0)), hum_side=np.zeros((r, c, 0)),
        jitter=np.zeros(r), line_hz=np.zeros(0),
    )


def lone_ecg_values(ecg, fs: float, key: str) -> list[float]:
    """``key`` of :meth:`PsycheState.window`'s output for each 1-s window of a lone ECG channel (µV); ``"hr_short"``:
    the ramp rule's short-window heart rate (bpm)."""
    from nexus.monitor.psyche import PsycheParams, PsycheState

    st = PsycheState(1, fs, 0, -1, -1, np.zeros(0, dtype=np.int64), PsycheParams())
    rows, w, out = np.zeros(1, dtype=np.int64), round(fs), []
    for k in range(ecg.size // w):
        x = ecg[None, None, k * w:(k + 1) * w]
        st.add_block(x, rows)
        v = st.window(window_features(x, float(k), fs=fs))
        out.append(float(v[key][0]) if key != "hr_short" else float(v["surge_short"][0] + v["hr_base"][0]))
    return out
