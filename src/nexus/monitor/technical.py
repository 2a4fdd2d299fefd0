"""Technical detectors: which channels of which sessions look faulty in one window.

Each detector turns :class:`~nexus.monitor.features.WindowFeatures` into a boolean "bad" mask of
shape (rows, channels) — or (rows,) for the session-wide kinds — and the evidence of one cell.
The masks are exclusive per channel, in :data:`CHANNEL_KINDS` order: a channel that is lost
(zeros) is not also flat, an electrode that is off is not also reported for its mains hum, pops or
rails, and a signal no body makes (``implausible_amplitude``) is not also an electrode off: a corrupt
physical range scales the signal's faint mains hum with it (×1000: 1 µV of hum reads 1000 µV), and in
windows where that hum crossed ``off_hum_uv`` the channel was called off for a second or two in the
middle of the implausible stretch (bench seeds 19005 and 19010: two false electrode_off episodes).
Episodes (onset, duration) are made from the masks by :class:`~nexus.monitor.episodes.Hysteresis`.

Rules (amplitudes in µV, one window = 1 s by default)

``bad_samples``
    non-finite samples (NaN, ±inf) in the window.
``dropped_samples``
    session-wide: more than half of the monitored channels (EEG, EOG, EMG, ECG) read exact zeros in at
    least half the window, or all of them are flat together; per channel: exact zeros in at least
    half the window while the others are fine.
``flat_line``
    standard deviation below ``flat_std_uv`` with the channel held at one value away from 0
    (|mean| ≥ ``held_uv``, peak-to-peak below ``held_ptp_uv``): a stuck amplifier or a held sample.
``electrode_off``
    flat near 0 µV (standard deviation below ``flat_std_uv``), or mains hum of ``off_hum_uv`` or
    more, or hum of ``line_hum_uv`` or more with the channel drifting by ``off_drift_uv`` or more
    (a high-impedance input picks up both).
``implausible_amplitude``
    a sample beyond ``implausible_uv`` (ECG: ``implausible_ecg_uv``), or a standard deviation
    above ``implausible_std_uv``: no body makes it (a corrupt physical range, mV read as µV).
``clipping``
    at least ``clip_samples`` samples sitting exactly on the window's maximum (or minimum) when that
    value is the one they sat on last time (the same rail again: a peak of a quantised signal
    never repeats to the last bit), or ``clip_alone`` samples on one rail (EEG, EOG, EMG); an
    episode needs such a window within ``clip_pair_s`` of an earlier one with ``clip_samples`` on
    an extreme (the monitor pairs them: the first sight of the rail counts), or both rails of a
    symmetric range (max = −min) with ``clip_samples`` each in one window, or ``clip_plateau``
    samples on one extreme of ``clip_rail_uv`` or more in one window, the channel moving on in the
    next (a rail touched once: a quantised signal peaking there would not sit on one value so long;
    a channel going flat at that value would stay there); the windows next to a
    channel going flat, lost or off do not count (a held value is a plateau). A window held at
    the very value the channel has been clipping on, while its clipping episode is open, is
    clipping (a saturated amplifier), not a flat line; an episode is back-dated to an earlier
    sighting of the rail only when that sighting is within ``clip_pair_s``.
``electrode_pop``
    a first difference of ``pop_step_uv`` or more that is ``pop_ratio`` times the window's mean
    absolute difference (a step, not a wave); a second one within ``pop_pair_s`` makes it an
    episode (single steps happen in clean sleep: movements, sweat).
``line_noise``
    the 50 or 60 Hz DFT bin amplitude at ``line_hum_uv`` or more and ``line_ratio`` times the bins
    3 Hz either side (a line, not ECG harmonics or EMG); only where the rate is above 2.2 × the
    mains frequency. The hum in the electrode-off rule is measured the same way.
``clock_jitter``
    session-wide: ``jitter_min`` or more samples per window repeat, on every EEG/EOG/EMG/ECG
    channel at once, a sample from 2-6 samples earlier (needs at least 3 such channels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nexus.monitor.features import BoolArray, FloatArray, WindowFeatures

CHANNEL_KINDS: tuple[str, ...] = (
    "bad_samples",
    "dropped_samples",
    "flat_line",
    "implausible_amplitude",
    "electrode_off",
    "clipping",
    "electrode_pop",
    "line_noise",
)
"""Per-channel kinds, highest precedence first."""

SESSION_KINDS: tuple[str, ...] = ("dropped_samples", "clock_jitter")
"""Session-wide technical kinds (channel ``None``)."""


@dataclass(frozen=True)
class TechnicalParams:
    """Thresholds of the technical detectors (µV unless named otherwise); see the module docstring."""

    flat_std_uv: float = 0.2
    held_uv: float = 1.0
    held_ptp_uv: float = 0.05
    off_hum_uv: float = 60.0
    off_drift_uv: float = 100.0
    line_hum_uv: float = 8.0
    line_ratio: float = 4.0
    implausible_uv: float = 3000.0
    implausible_ecg_uv: float = 20000.0
    implausible_std_uv: float = 1000.0
    clip_samples: int = 3
    clip_alone: int = 24
    clip_pair_s: float = 4.0
    clip_plateau: int = 8
    clip_rail_uv: float = 75.0
    pop_step_uv: float = 150.0
    pop_ratio: float = 12.0
    pop_pair_s: float = 20.0
    jitter_min: int = 3
    zero_share: float = 0.5


def classify(
    f: WindowFeatures,
    exg: BoolArray,
    ecg: BoolArray,
    p: TechnicalParams,
    rails: tuple[FloatArray, FloatArray] | None = None,
) -> tuple[dict[str, BoolArray], dict[str, BoolArray]]:
    """Bad masks of one window.

    Parameters
    ----------
    f : WindowFeatures
        The window of some sessions.
    exg, ecg : ndarray of bool, shape (channels,)
        Which channels are EEG/EOG/EMG and which are ECG (the others get ``bad_samples`` only).
    p : TechnicalParams
        Thresholds.
    rails : (ndarray, ndarray) of shape (rows, channels), optional
        The last maximum and minimum (µV) on which ``clip_samples`` samples sat, per channel
        (NaN where none yet): a rail seen again is saturation.

    Returns
    -------
    per_channel : dict kind → ndarray of bool (rows, channels)
        Exclusive: at most one kind per cell.
    per_session : dict kind → ndarray of bool (rows,)
    """
    mon = exg | ecg
    R, C = f.mean.shape
    bad_samples = f.nonfinite > 0
    zeros = (f.zero_frac >= p.zero_share) & mon
    flat = (f.std < p.flat_std_uv) & mon
    n_mon = max(int(mon.sum()), 1)
    # lost samples read exact zeros live; from a file they read the constant that digital 0 maps to
    all_flat = (flat | ~mon).all(axis=1) & (n_mon >= 2)
    sess_dropped = (zeros.sum(axis=1) > 0.5 * n_mon) | all_flat
    ptp = f.mx - f.mn
    held = flat & (np.abs(f.mean) >= p.held_uv) & (ptp <= p.held_ptp_uv)
    if f.hum.shape[-1]:
        # a line stands out of its neighbours; ECG harmonics and EMG bursts are broad
        lined = np.where(f.hum >= p.line_ratio * f.hum_side, f.hum, 0.0)
        hum = lined.max(axis=-1)
    else:
        hum = np.zeros((R, C))
    off = (
        mon
        & ~zeros
        & ~held
        & (flat | (hum >= p.off_hum_uv) | ((hum >= p.line_hum_uv) & (np.abs(f.mean) >= p.off_drift_uv)))
    )
    big = np.maximum(np.abs(f.mx), np.abs(f.mn))
    implausible = (exg & ((big > p.implausible_uv) | (f.std > p.implausible_std_uv))) | (
        ecg & (big > p.implausible_ecg_uv)
    )
    k = p.clip_samples
    on_hi = exg & (f.at_mx >= k) & (ptp > 0)
    on_lo = exg & (f.at_mn >= k) & (ptp > 0)
    hi, lo = rails if rails is not None else (np.full((R, C), np.nan), np.full((R, C), np.nan))
    clip = (
        (on_hi & (f.mx == hi))
        | (on_lo & (f.mn == lo))
        | (exg & ((f.at_mx >= p.clip_alone) | (f.at_mn >= p.clip_alone)))
    )
    pop = exg & (f.maxdiff >= p.pop_step_uv) & (f.maxdiff >= p.pop_ratio * np.maximum(f.meandiff, 1e-9))
    line = mon & (hum >= p.line_hum_uv)
    masks = {
        "bad_samples": bad_samples,
        "dropped_samples": zeros & ~sess_dropped[:, None],
        "flat_line": held,
        "electrode_off": off,
        "implausible_amplitude": implausible,
        "clipping": clip,
        "electrode_pop": pop,
        "line_noise": line,
    }
    taken = np.zeros((R, C), dtype=bool)
    taken |= sess_dropped[:, None] & mon  # a lost session's channels report nothing else
    for kind in CHANNEL_KINDS:
        m = masks[kind] & ~taken
        masks[kind] = m
        taken |= m
    jitter = (f.jitter >= p.jitter_min) & ~sess_dropped
    return masks, {"dropped_samples": sess_dropped, "clock_jitter": jitter}


def evidence(kind: str, f: WindowFeatures, r: int, c: int | None, p: TechnicalParams) -> dict[str, Any]:
    """What detector ``kind`` saw in row ``r`` (and channel ``c``) of window ``f``, with its thresholds."""

    def v(a: FloatArray) -> float:
        return round(float(a[r, c] if c is not None else a[r]), 4)

    if c is None:
        if kind == "clock_jitter":
            return {
                "repeated_samples": v(f.jitter),
                "threshold": p.jitter_min,
                "window_s": round(float(f.t1[r] - f.t0[r]), 3),
            }
        return {
            "channels_zero": int((f.zero_frac[r] >= p.zero_share).sum()),
            "zero_share_min": round(float(f.zero_frac[r].min()), 3),
            "std_max_uv": round(float(f.std[r].max()), 4),
            "threshold_share": p.zero_share,
        }
    hum = f.hum[r, c] if f.hum.shape[-1] else np.zeros(0)
    base: dict[str, Any] = {"std_uv": v(f.std), "mean_uv": v(f.mean)}
    if kind == "bad_samples":
        return {"nonfinite_samples": int(f.nonfinite[r, c]), "of_samples": int(f.n[r])}
    if kind == "dropped_samples":
        return {"zero_share": v(f.zero_frac), "threshold": p.zero_share}
    if kind == "flat_line":
        return base | {
            "ptp_uv": round(float(f.mx[r, c] - f.mn[r, c]), 6),
            "threshold_std_uv": p.flat_std_uv,
            "threshold_held_uv": p.held_uv,
        }
    if kind == "electrode_off":
        return base | {
            "hum_uv": round(float(hum.max()), 3) if hum.size else 0.0,
            "threshold_std_uv": p.flat_std_uv,
            "threshold_hum_uv": p.off_hum_uv,
            "threshold_drift_uv": p.off_drift_uv,
        }
    if kind == "implausible_amplitude":
        return base | {
            "max_abs_uv": round(float(max(abs(f.mx[r, c]), abs(f.mn[r, c]))), 1),
            "threshold_uv": p.implausible_uv,
            "threshold_std_uv": p.implausible_std_uv,
        }
    if kind == "clipping":
        return {
            "max_uv": v(f.mx),
            "min_uv": v(f.mn),
            "samples_at_max": int(f.at_mx[r, c]),
            "samples_at_min": int(f.at_mn[r, c]),
            "threshold_samples": p.clip_samples,
        }
    if kind == "electrode_pop":
        return {
            "step_uv": round(float(f.maxdiff[r, c]), 1),
            "mean_step_uv": round(float(f.meandiff[r, c]), 2),
            "threshold_uv": p.pop_step_uv,
            "threshold_ratio": p.pop_ratio,
        }
    if kind == "line_noise":
        j = int(np.argmax(hum)) if hum.size else 0
        hz = float(f.line_hz[j]) if hum.size else 0.0
        side = float(f.hum_side[r, c, j]) if hum.size else 0.0
        return base | {
            "hum_uv": round(float(hum.max()), 3) if hum.size else 0.0,
            "line_hz": hz,
            "side_bins_uv": round(side, 3),
            "threshold_uv": p.line_hum_uv,
            "threshold_ratio": p.line_ratio,
        }
    return base
