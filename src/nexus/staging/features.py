"""Per-epoch features of YASA's sleep-staging classifiers, vectorised.

The definitions follow YASA's ``SleepStaging.fit`` (Vallat & Walker 2021) so that YASA's
pre-trained LightGBM classifiers can be fed by this module instead of YASA itself: signals at
100 Hz, band-passed 0.4-30 Hz with MNE's default FIR design, cut into 30-s epochs, then per
channel and epoch

* ``std`` (ddof=1), ``iqr``, ``skew``, ``kurt`` (Fisher, biased moments), ``nzc`` (zero crossings),
  ``hmob`` / ``hcomp`` (Hjorth mobility and complexity);
* ``sdelta fdelta theta alpha sigma beta``: relative power (Welch, 5-s Hamming windows, median
  average, Simpson's rule) for EEG and EOG; ``dt ds db at`` power ratios for EEG;
* ``abspow``: absolute 0.4-30 Hz power (trapezoid rule), in µV²;
* ``perm`` (normalised order-3 permutation entropy), ``higuchi`` (Higuchi fractal dimension,
  kmax=10), ``petrosian`` (Petrosian fractal dimension).

Everything is computed over any leading axes (sessions, channels, epochs), without a per-epoch
Python loop, by :mod:`nexus.staging.window`: each epoch is reduced to block statistics and a
Welch median PSD in compiled passes, and the features are taken from them, as the live stager
does for its windows (one implementation of the features). They equal antropy's and scipy's
definitions up to rounding (tested). The implementation is this project's own.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError
from nexus.staging.window import BANDS, FS, KMAX

# numpy only at import time: scipy.signal / scipy.integrate would add about a second to a fresh
# process (the window, FIR design and Simpson rule below are the few lines they would provide)

FloatArray = npt.NDArray[np.float64]

EPOCH_SAMPLES: int = 3000
"""Samples per 30-s epoch at :data:`FS`."""

BROAD: tuple[float, float] = (0.4, 30.0)

_COMMON = ("std", "iqr", "skew", "kurt", "nzc", "hmob", "hcomp")
_TAIL = ("abspow", "perm", "higuchi", "petrosian")
_BAND_NAMES = tuple(b[2] for b in BANDS)
_RATIOS = ("dt", "ds", "db", "at")


def feature_names(kind: str) -> tuple[str, ...]:
    """Names of the raw per-epoch features of a channel kind (``"eeg"``, ``"eog"`` or ``"emg"``)."""
    if kind == "eeg":
        return _COMMON + _BAND_NAMES + _RATIOS + _TAIL
    if kind == "eog":
        return _COMMON + _BAND_NAMES + _TAIL
    return _COMMON + _TAIL


# --------------------------------------------------------------------------- signal preparation


def _odd_reflect_pad(x: FloatArray, left: int, right: int) -> FloatArray:
    """Pad the last axis by point reflection about the end samples (``2·x[0] − x[k]``)."""
    n = x.shape[-1]
    left, right = min(left, n - 1), min(right, n - 1)
    pads = [(0, 0)] * (x.ndim - 1) + [(left, right)]
    return np.pad(x, pads, mode="reflect", reflect_type="odd")


def resample_to_100(x: FloatArray, fs: float) -> FloatArray:
    """Resample signals to 100 Hz along the last axis, as MNE's ``Raw.resample(100)`` does.

    FFT resampling: odd-reflection padding up to a power of two, spectrum truncated (or
    zero-extended) with a boxcar window, padding removed.

    Parameters
    ----------
    x : ndarray, shape (..., n_samples)
        Signals in µV.
    fs : float
        Their sampling rate in Hz.

    Returns
    -------
    ndarray, shape (..., round(n_samples · 100 / fs))
    """
    x = np.asarray(x, dtype=np.float64)
    if fs == FS:
        return x
    n = x.shape[-1]
    ratio = FS / fs
    final_len = max(round(ratio * n), 1)
    min_add = min(n // 8, 100) * 2
    npad_total = 2 ** int(np.ceil(np.log2(n + min_add))) - n
    npad, extra = divmod(npad_total, 2)
    pads = (npad, npad + extra)
    orig_len = n + sum(pads)
    new_len = max(round(ratio * orig_len), 1)
    cut_left = round(ratio * pads[0])
    xp = _odd_reflect_pad(x, *pads)
    if xp.shape[-1] != orig_len:  # very short input: padding limited by its length
        orig_len = xp.shape[-1]
        new_len = max(round(ratio * orig_len), 1)
    spec = np.fft.rfft(xp, axis=-1)
    use_len = min(new_len, orig_len)
    if use_len % 2 == 0:
        nyq = use_len // 2
        spec[..., nyq] *= 2.0 if new_len < orig_len else 0.5
    spec *= new_len / orig_len
    y = np.fft.irfft(spec, new_len, axis=-1)
    return np.ascontiguousarray(y[..., cut_left : cut_left + final_len])


def _firwin_lowpass(n: int, cutoff: float, fs: float) -> FloatArray:
    """Linear-phase low-pass FIR: Hamming-windowed sinc, unit gain at DC (as ``scipy.signal.firwin``)."""
    m = np.arange(n) - (n - 1) / 2.0
    h = np.sinc(2.0 * cutoff / fs * m) * np.hamming(n)
    return h / h.sum()


def _fir_bandpass(fs: float = FS) -> FloatArray:
    """MNE's default zero-phase FIR band-pass 0.4-30 Hz (Hamming ``firwin`` design) at ``fs``.

    Transition bands are MNE's "auto" widths: 0.4 Hz below, 7.5 Hz above. The band-pass is
    a delta minus a 0.2-Hz low-pass plus (high-pass complement of) a 33.75-Hz low-pass, each
    as long as its own transition band needs.
    """
    l_freq, h_freq = BROAD
    l_trans = min(max(0.25 * l_freq, 2.0), l_freq)
    h_trans = min(max(0.25 * h_freq, 2.0), fs / 2.0 - h_freq)
    n = round(3.3 * fs / l_trans)
    n += 1 - n % 2
    h = -_firwin_lowpass(n, l_freq - l_trans / 2.0, fs)
    n_hi = round(3.3 / (h_trans / 2.0 / (fs / 2.0)))
    n_hi += 1 - n_hi % 2
    off = (n - n_hi) // 2
    h[off : n - off] += _firwin_lowpass(n_hi, h_freq + h_trans / 2.0, fs)
    return h


_FIR_CACHE: dict[float, FloatArray] = {}


def bandpass(x: FloatArray, fs: float = FS) -> FloatArray:
    """Zero-phase band-pass 0.4-30 Hz along the last axis (odd-reflection padded edges).

    Parameters
    ----------
    x : ndarray, shape (..., n_samples)
        Signals in µV at ``fs``; no NaN (fill gaps first).
    fs : float
        Sampling rate in Hz.

    Returns
    -------
    ndarray, same shape
    """
    h = _FIR_CACHE.get(fs)
    if h is None:
        h = _FIR_CACHE[fs] = _fir_bandpass(fs)
    n = x.shape[-1]
    pad = max(min(h.size, n) - 1, 0)
    xp = _odd_reflect_pad(np.asarray(x, dtype=np.float64), pad, pad)
    lp = min(pad, n - 1)
    from scipy import signal

    y = signal.oaconvolve(xp, h.reshape((1,) * (x.ndim - 1) + (-1,)), mode="same", axes=-1)
    return np.ascontiguousarray(y[..., lp : lp + n])


def resample_bandpass(x: FloatArray, fs: float) -> FloatArray:
    """Resample to 100 Hz and band-pass 0.4-30 Hz in one pass (what :func:`resample_to_100` then :func:`bandpass` do).

    The signal is cut into overlapping chunks (about 4 min, 10-s margins); each chunk's spectrum is
    truncated to 50 Hz and multiplied by the frequency response of the same zero-phase FIR, so
    the result equals the two-step computation away from the recording's first and last seconds
    (where the edge padding differs slightly), at a fraction of its cost and memory.

    The chunks' FFTs are single precision (``scipy.fft``; NumPy's float32 FFT is several times
    slower), 16 chunks at a time: half the time of double precision on an 8-h night. The result
    (float64) differs from the double-precision computation by a few millionths of the input's
    largest absolute value (2e-7 of the 8-h benchmark night's, whose hypnogram and probabilities
    are unchanged); the classifiers read the features as float32 anyway.

    Parameters
    ----------
    x : ndarray, shape (..., n_samples)
        Signals in µV (no NaN).
    fs : float
        Their sampling rate in Hz.

    Returns
    -------
    ndarray, shape (..., round(n_samples · 100 / fs))
    """
    from fractions import Fraction

    from scipy import fft as sfft  # already imported by scipy.integrate (the band weights)

    x = np.asarray(x, dtype=np.float64)
    ratio = Fraction(FS / fs).limit_denominator(1000)
    if abs(float(ratio) - FS / fs) > 1e-12 or x.shape[-1] < 4 * fs * 10:
        return bandpass(resample_to_100(x, fs))
    p, q = ratio.numerator, ratio.denominator  # q input samples ↔ p output samples
    n = x.shape[-1]
    final_len = max(round(n * p / q), 1)
    margin_in = q * int(np.ceil(10.0 * fs / q))
    l_in = q * 2 ** int(np.ceil(np.log2(max(65536 // q, 1))))
    while l_in <= 4 * margin_in:
        l_in *= 2
    core_in = l_in - 2 * margin_in
    l_out, margin_out, core_out = l_in * p // q, margin_in * p // q, core_in * p // q
    n_chunks = -(-n // core_in)
    lead = x.shape[:-1]
    flat = x.reshape(-1, n)
    gain = (_chunk_response(l_out) * (l_out / l_in)).astype(np.float32)
    n_bins = l_out // 2 + 1
    out = np.empty((flat.shape[0], n_chunks * core_out))
    padded = np.empty(n_chunks * core_in + 2 * margin_in, np.float32)
    refl = min(margin_in, n - 1)
    for r in range(flat.shape[0]):  # one row (channel) at a time: one padded copy in memory
        row = flat[r]
        padded[: margin_in - refl] = 0.0
        padded[margin_in - refl : margin_in] = 2 * row[:1] - row[refl:0:-1]
        padded[margin_in : margin_in + n] = row
        padded[margin_in + n : margin_in + n + refl] = 2 * row[-1:] - row[-2 : -refl - 2 : -1]
        padded[margin_in + n + refl :] = 0.0
        chunks = np.lib.stride_tricks.sliding_window_view(padded, l_in)[::core_in][:n_chunks]
        res = out[r].reshape(n_chunks, core_out)
        for a in range(0, n_chunks, _FFT_BATCH):
            spec = sfft.rfft(chunks[a : a + _FFT_BATCH], axis=-1)[:, :n_bins]
            spec *= gain
            y = sfft.irfft(spec, l_out, axis=-1)
            res[a : a + _FFT_BATCH] = y[:, margin_out : margin_out + core_out]
    return np.ascontiguousarray(out[:, :final_len].reshape(*lead, final_len))


_FFT_BATCH = 16
"""Chunks transformed together by :func:`resample_bandpass` (16 × 64 Ki samples: their spectra stay in cache)."""


_RESPONSE_CACHE: dict[int, FloatArray] = {}


def _chunk_response(l_out: int) -> FloatArray:
    """Zero-phase frequency response of the 0.4-30 Hz FIR at the rfft bins of an ``l_out``-sample chunk at 100 Hz."""
    r = _RESPONSE_CACHE.get(l_out)
    if r is None:
        h = _FIR_CACHE.get(FS)
        if h is None:
            h = _FIR_CACHE[FS] = _fir_bandpass(FS)
        half = h.size // 2
        circ = np.zeros(l_out)
        circ[: half + 1] = h[half:]
        circ[-half:] = h[:half]
        r = _RESPONSE_CACHE[l_out] = np.fft.rfft(circ).real
    return r


def epochs_of(x: FloatArray, epoch_samples: int = EPOCH_SAMPLES) -> FloatArray:
    """Cut the last axis into whole non-overlapping epochs: (..., n) → (..., n_epochs, epoch_samples)."""
    n_ep = x.shape[-1] // epoch_samples
    return x[..., : n_ep * epoch_samples].reshape(*x.shape[:-1], n_ep, epoch_samples)


# --------------------------------------------------------------------------- per-epoch features


def channel_features(epochs: FloatArray, kind: str) -> dict[str, FloatArray]:
    """Raw per-epoch features of one channel kind.

    Each epoch is reduced to block statistics and a Welch median PSD and its features are taken
    from them (:func:`nexus.staging.window.epoch_features`), the same implementation the live
    stager uses for its windows.

    Parameters
    ----------
    epochs : ndarray, shape (..., n_epochs, n_samples)
        Band-passed epochs in µV at 100 Hz (any leading axes, e.g. sessions).
    kind : {"eeg", "eog", "emg"}
        Channel kind: EEG gets band powers and ratios, EOG band powers, EMG neither.

    Returns
    -------
    dict of str → ndarray, shape (..., n_epochs)
        Keyed by the names of :func:`feature_names`. Flat epochs give NaN where a ratio is undefined.
    """
    from nexus.staging._kernels import WINDOW_FEATURES
    from nexus.staging.window import epoch_features

    x = np.asarray(epochs, dtype=np.float64)
    lead, n = x.shape[:-1], x.shape[-1]
    if n < 3 * KMAX:
        raise InvalidInputError(f"Epochs too short for the features: {n} samples, expected at least {3 * KMAX}.")
    feats, _ = epoch_features(np.ascontiguousarray(x.reshape(-1, n)))
    return {name: feats[:, WINDOW_FEATURES.index(name)].reshape(lead) for name in feature_names(kind)}


# --------------------------------------------------------------------------- smoothing and scaling


def _nan_weighted_filter(x: FloatArray, weights: FloatArray, origin_right: int) -> FloatArray:
    """Weighted moving mean along axis 0 that skips NaN (each output normalised by the weights present).

    ``weights`` cover ``[t - len + 1 + origin_right, t + origin_right]``: ``origin_right = 0`` is a
    trailing window, ``len // 2`` a centred one.
    """
    ok = np.isfinite(x)
    x0 = np.where(ok, x, 0.0)
    w = np.asarray(weights, dtype=np.float64)
    m = w.size
    n = x.shape[0]
    pad_l, pad_r = m - 1 - origin_right, origin_right
    xp = np.pad(x0, [(pad_l, pad_r)] + [(0, 0)] * (x.ndim - 1))
    okp = np.pad(ok.astype(np.float64), [(pad_l, pad_r)] + [(0, 0)] * (x.ndim - 1))
    num = np.zeros_like(x0)
    den = np.zeros_like(x0)
    for j in range(m):  # one vectorised pass per window tap (15 at most)
        num += w[j] * xp[j : j + n]
        den += w[j] * okp[j : j + n]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


TRIANG15: FloatArray = np.r_[np.arange(1, 9), np.arange(7, 0, -1)] / 8.0
"""YASA's 7.5-min centred triangular smoothing weights (15 epochs)."""


def centred_triangular_mean(x: FloatArray) -> FloatArray:
    """7.5-min centred triangular-weighted mean over epochs (axis 0), NaN skipped."""
    return _nan_weighted_filter(x, TRIANG15, origin_right=7)


def trailing_mean(x: FloatArray, n: int = 4) -> FloatArray:
    """Mean of the last ``n`` epochs (axis 0, current included), NaN skipped."""
    return _nan_weighted_filter(x, np.ones(n), origin_right=0)


def robust_scale(x: FloatArray) -> FloatArray:
    """Robust z-score along axis 0: (x − median) / (P95 − P5); a zero spread leaves the centred value.

    NaN values are skipped. Without any (a night with no artefact epoch), the three quantiles come
    from one partition per column (``np.percentile``, a fifth of the time of ``np.nanmedian`` and
    ``np.nanpercentile``; its median equals ``np.median``'s to the last bit or so).
    """
    if not np.isnan(x).any():
        lo, med, hi = np.percentile(x, [5.0, 50.0, 95.0], axis=0)
    else:
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
            med = np.nanmedian(x, axis=0)
            lo, hi = np.nanpercentile(x, [5.0, 95.0], axis=0)
    scale = hi - lo
    scale = np.where(np.isfinite(scale) & (scale >= 10 * np.finfo(np.float64).eps), scale, 1.0)
    return (x - med) / scale


def offline_feature_table(
    per_kind: Mapping[str, Mapping[str, FloatArray]],
    times_s: FloatArray,
    metadata: Mapping[str, float] | None = None,
) -> dict[str, npt.NDArray[np.float32]]:
    """Assemble YASA's full feature set for a whole night (centred and past smoothing, night-wide scaling).

    Parameters
    ----------
    per_kind : mapping kind → (mapping feature → ndarray (n_epochs,))
        Raw features from :func:`channel_features` for each channel kind present.
    times_s : ndarray, shape (n_epochs,)
        Start of each epoch, in seconds from the recording start.
    metadata : mapping, optional
        ``age`` (years) and ``male`` (0/1), when known.

    Returns
    -------
    dict of str → float32 ndarray (n_epochs,)
        ``<kind>_<feature>``, ``…_c7min_norm``, ``…_p2min_norm``, ``time_hour``, ``time_norm``
        (and ``age``, ``male``).
    """
    names = [f"{k}_{f}" for k, feats in per_kind.items() for f in feats]
    raw = np.stack([per_kind[k][f] for k, feats in per_kind.items() for f in feats], axis=1)
    c7 = robust_scale(centred_triangular_mean(raw))
    p2 = robust_scale(trailing_mean(raw, 4))
    out: dict[str, npt.NDArray[np.float32]] = {}
    for i, name in enumerate(names):
        out[name] = raw[:, i].astype(np.float32)
        out[f"{name}_c7min_norm"] = c7[:, i].astype(np.float32)
        out[f"{name}_p2min_norm"] = p2[:, i].astype(np.float32)
    t = np.asarray(times_s, dtype=np.float64)
    out["time_hour"] = (t / 3600.0).astype(np.float32)
    out["time_norm"] = (t / t[-1] if t.size and t[-1] > 0 else np.zeros_like(t)).astype(np.float32)
    for key, value in (metadata or {}).items():
        out[key] = np.full(t.size, int(value), dtype=np.float32)
    return out
