"""Causal phase estimation of slow oscillations, for closed-loop auditory stimulation (CLAS).

Phase convention: the phase of the 0.5–2 Hz component of the EEG as the angle of its analytic signal, in
radians, so that **0 is the up-state (positive) peak**, ±π the down-state (negative) peak and -π/2 the rising
zero crossing. The offline reference (:func:`reference_phase`) uses a zero-phase band-pass and the Hilbert
transform; the causal estimator (:class:`CausalPhaseEstimator`, :func:`causal_phase_track`) only ever uses
samples up to the time it reports.

Method: a least-squares-designed causal predictor of the analytic signal (:func:`design_predictor`).

A plain Hilbert transform of the last samples is useless at the window's end, and a steep causal band-pass
distorts the phase of a broadband slow oscillation. The endpoint-corrected Hilbert transform (ecHT) solves this
with one causal complex filter; we go one step further and *learn* that complex FIR filter: its taps are chosen by
least squares so that, applied to the last second of EEG, it outputs the zero-phase reference analytic signal
``horizon_s`` seconds in the future. The modulus of the output is the predicted envelope (µV), its angle the
predicted phase; the forward prediction over the measured latency is built into the taps. The training signal is
a generic N3-like EEG generated from a fixed seed (never the data being estimated), so the design is
deterministic, cached, and does not look at the client's recording. In tests on the real YASA N3 sample this beat
causal band-pass + sine fit by a wide margin (SD ≈ 20° against ≈ 60–100°, see bench/clas.py).

:func:`target_crossings` finds the samples at which the predicted phase passes the target, so that a pulse
scheduled then reaches the ear at the target phase.

Calibration: a linear predictor designed on one kind of slow wave is biased on another (real slow waves are
asymmetric, trains irregular: in tests its pulses came ~7° early on synthetic nights and ~10–15° late on the real
YASA N3 sample). The estimator therefore learns each session's bias from its own pulses
(:meth:`CausalPhaseEstimator.note_pulses`): ``after_s`` seconds after a pulse, enough signal has come to measure
the zero-phase reference phase at the pulse (a band-pass + Hilbert over the ``before_s + after_s`` window around
it, within ~1.5° of the whole-record reference), and the session's phase output is shifted by a running
(exponential) mean of the errors. It only ever uses samples already fed, so it stays causal.

All functions are vectorised: the leading axis is the session.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.dsp import _biquad
from nexus.dsp._fir import predict_tick
from nexus.dsp.filters import MAX_SAMPLES, _zi_unit

Array = npt.NDArray[np.float64]

DIRECT_FIR_MAX = 256
"""Chunks of up to this many samples run the FIR as a direct sum (cheaper than FFTs of the history), longer ones
by FFT convolution."""

SO_BAND_HZ: tuple[float, float] = (0.5, 2.0)
"""The slow-oscillation band used by the reference and the estimator, in Hz."""


def _check_fs_band(fs: float, band: tuple[float, float]) -> None:
    check_number("fs", fs, ge=20, unit="Hz")
    lo, hi = band
    check_number("band low edge", lo, gt=0, unit="Hz")
    check_number("band high edge", hi, gt=lo, lt=fs / 2, unit="Hz")


def _as_2d(x: npt.ArrayLike, what: str = "data") -> tuple[Array, bool]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        return a[None, :], True
    if a.ndim != 2:
        raise InvalidInputError(f"Invalid '{what}': expected 1-D (samples) or 2-D (sessions, samples), got {a.ndim}-D.")
    return a, False


def reference_phase(x: npt.ArrayLike, fs: float, band: tuple[float, float] = SO_BAND_HZ, order: int = 2) -> Array:
    """Zero-phase offline reference phase: band-pass (forward-backward Butterworth) + Hilbert transform.

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_sessions, n_samples)
        EEG in µV.
    fs : float
        Sampling rate in Hz.
    band : (float, float)
        Pass band in Hz.
    order : int
        Butterworth order of each pass (the effective order is doubled by the forward-backward pass).

    Returns
    -------
    ndarray
        Phase in radians in (-π, π], same shape as ``x``; 0 at the up-state peak.
    """
    _check_fs_band(fs, band)
    a, squeeze = _as_2d(x)
    sos = _band_sos(order, float(band[0]), float(band[1]), float(fs))
    y = signal.sosfiltfilt(sos, a, axis=-1)
    ph = np.angle(signal.hilbert(y, axis=-1))
    return ph[0] if squeeze else ph


def _band_sos(order: int, lo_hz: float, hi_hz: float, fs: float) -> Array:
    """The Butterworth band-pass of the reference phase, designed once per setting.

    The live calibration asks for it at every tick with a pulse due: designing it anew cost more than filtering.
    """
    return _designed_band_sos(order, lo_hz, hi_hz, fs).copy()  # (scipy's sosfilt wants a writable array)


@functools.lru_cache(maxsize=32)
def _designed_band_sos(order: int, lo_hz: float, hi_hz: float, fs: float) -> Array:
    sos = signal.butter(order, (lo_hz, hi_hz), btype="bandpass", fs=fs, output="sos")
    sos.setflags(write=False)
    return sos


def reference_band(x: npt.ArrayLike, fs: float, band: tuple[float, float] = SO_BAND_HZ, order: int = 2) -> Array:
    """The zero-phase band-passed signal used by :func:`reference_phase`, in µV (same shape as ``x``)."""
    _check_fs_band(fs, band)
    a, squeeze = _as_2d(x)
    sos = _band_sos(order, float(band[0]), float(band[1]), float(fs))
    # scipy's default padding: 3 x the taps (less the sections' zero b2/a2 coefficients)
    padlen = 3 * (2 * sos.shape[0] + 1 - int(min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())))
    if padlen < a.shape[-1] <= MAX_SAMPLES:  # short rows (the calibration's pulse windows): the compiled pass
        rows = np.ascontiguousarray(a)
        y = np.empty_like(rows)
        _biquad.filtfilt(rows, sos, _zi_unit(sos), padlen, y)  # sosfiltfilt's arithmetic, bit for bit, ~10x faster
    else:
        y = signal.sosfiltfilt(sos, a, axis=-1)
    return y[0] if squeeze else y


@dataclass(frozen=True)
class PhaseTrack:
    """Causal phase estimates, one per input sample.

    Attributes
    ----------
    t : ndarray, shape (n_times,)
        Time of the last sample used, in seconds since the first sample fed.
    phase : ndarray, shape (n_sessions, n_times)
        Predicted phase at ``t + horizon_s``, in radians (0 = up-state peak, ±π = down-state).
    amp : ndarray, shape (n_sessions, n_times)
        Predicted envelope of the 0.5–2 Hz component at ``t + horizon_s``, in µV, corrected for the predictor's
        shrinkage (:func:`predictor_gain`), so that its scale does not depend on the horizon.
    horizon_s : float
        How far ahead the estimates look, in seconds.
    snr : ndarray, shape (n_sessions, n_times)
        ``amp`` relative to the amplitude of a sinusoid with the power of the whole (high-passed) signal over
        the last ~2 s: near 0.85 when a steady slow oscillation dominates the EEG, above 1 while it grows, lower
        when other activity does. A gate for reliable phase estimates.
    """

    t: Array
    phase: Array
    amp: Array
    horizon_s: float
    snr: Array
    ahead_idx: npt.NDArray[np.int64] | None = None
    ahead_phase: Array | None = None


class TickTrack(PhaseTrack):
    """The :class:`PhaseTrack` of a live tick: ``phase`` is the angle of the FIR's outputs, taken when first read.

    ``z_re``, ``z_im`` (n_sessions, n_times) are the real and imaginary outputs (the bias already turned in), so
    ``phase`` equals ``np.arctan2(z_im, z_re)`` element by element; a reader that needs the phase of a few samples
    only (the controller: the last one, and the samples before a click) takes those and skips the angle of the
    others (an arctan2 costs ~50 ns; 100 beds x 100 samples a one-second fast-forward step).
    """

    z_re: Array
    z_im: Array
    _phase: Array | None

    def __init__(self, t: Array, z_re: Array, z_im: Array, amp: Array, horizon_s: float, snr: Array,
                 ahead_idx: npt.NDArray[np.int64] | None = None, ahead_phase: Array | None = None) -> None:
        values = {"t": t, "z_re": z_re, "z_im": z_im, "_phase": None, "amp": amp, "horizon_s": horizon_s,
                  "snr": snr, "ahead_idx": ahead_idx, "ahead_phase": ahead_phase}
        for name, value in values.items():  # (frozen, as its base)
            object.__setattr__(self, name, value)

    @property
    def phase(self) -> Array:
        """Predicted phase at ``t + horizon_s``, in radians (see :class:`PhaseTrack`)."""
        phase = self._phase
        if phase is None:
            phase = np.arctan2(self.z_im, self.z_re)
            object.__setattr__(self, "_phase", phase)
        return phase


def _generic_n3(n: int, fs: float, seed: int) -> Array:
    """A generic N3-like EEG, in µV: brown (1/f²) background + a 0.5–1.7 Hz resonance + white noise."""
    rng = np.random.default_rng(seed)
    hp = signal.butter(1, 0.3, btype="highpass", fs=fs, output="sos")
    brown = signal.sosfilt(hp, np.cumsum(rng.standard_normal(n)) * (0.5 / np.sqrt(fs)))
    band = signal.butter(2, (0.5, 1.7), btype="bandpass", fs=fs, output="sos")
    so = signal.sosfilt(band, rng.standard_normal(n)) * 8.0
    return np.asarray(brown * 3.0 + so + 0.5 * rng.standard_normal(n), dtype=np.float64)


_PRE_HP_HZ = 0.2  # causal high-pass applied before the predictor, removes electrode drift
_POWER_TAU_S = 2.0  # time constant of the running signal power used by the SNR gate
_CAL_BEFORE_S = 6.0  # calibration: reference phase of a pulse from the EEG this long before it ...
_CAL_AFTER_S = 3.0  # ... and this long after it (error SD ~1.5° against the whole-record reference)
_CAL_GAIN = 0.05  # weight of each pulse's error in the session's running bias (~20 pulses to learn it)
_CAL_MAX_RAD = np.pi / 4  # the learned bias is kept within ±45°


@functools.lru_cache(maxsize=16)
def design_predictor(fs: float, horizon_s: float = 0.05, window_s: float = 1.0, train_s: float = 300.0,
                     seed: int = 7) -> npt.NDArray[np.complex128]:
    """Design a causal FIR filter that predicts the analytic 0.5–2 Hz signal ``horizon_s`` ahead.

    The taps are the least-squares solution that maps the last ``window_s`` seconds of (high-passed) EEG onto
    the zero-phase reference analytic signal (:func:`reference_band` + Hilbert) ``horizon_s`` seconds later, on a
    generic N3-like training signal (brown background with a slow-oscillation resonance; never on the data it
    will be used on). It plays the role of the endpoint-corrected Hilbert transform: one causal complex filter
    whose output's angle is the phase and whose modulus is the envelope, with the forward prediction built in.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    horizon_s : float
        Prediction horizon in seconds (the measured system latency), 0–0.25 s.
    window_s : float
        Filter length in seconds.
    train_s : float
        Length of the generic training signal in seconds.
    seed : int
        Seed of the training signal (the design is deterministic).

    Returns
    -------
    ndarray of complex, shape (round(window_s * fs),)
        FIR taps, oldest sample first (apply as ``window @ taps``).
    """
    _check_fs_band(fs, SO_BAND_HZ)
    check_number("horizon_s", horizon_s, ge=0, le=0.25, unit="s")
    check_number("window_s", window_s, ge=0.3, le=4, unit="s")
    n_taps = round(window_s * fs)
    d = round(horizon_s * fs)
    x = _generic_n3(int(train_s * fs), fs, seed)
    z = signal.hilbert(reference_band(x, fs))
    hp = signal.butter(1, _PRE_HP_HZ, btype="highpass", fs=fs, output="sos")
    feats = np.lib.stride_tricks.sliding_window_view(signal.sosfilt(hp, x), n_taps)
    target = z[n_taps - 1 + d :]
    feats = feats[: target.size]
    # skip the first seconds (filter start-up) and solve real and imaginary parts in one call
    skip = int(2 * fs)
    sol = _least_squares(feats[skip:], np.stack([target.real, target.imag], axis=1)[skip:])
    return np.asarray(sol[:, 0] + 1j * sol[:, 1])


def _least_squares(a: Array, b: Array) -> Array:
    """The least-squares solution of ``a @ x = b`` from the normal equations (``a`` has many more rows).

    Two matrix products and a small solve instead of an SVD of the tall matrix: ~30x faster at 256 Hz,
    with the same taps to ~1e-10 relative (the filter window is well conditioned).
    """
    ata = a.T @ a
    atb = a.T @ b
    sol, *_ = np.linalg.lstsq(ata, atb, rcond=None)
    return np.asarray(sol)


@functools.lru_cache(maxsize=16)
def design_predictors(fs: float, horizons_s: tuple[float, ...], window_s: float = 1.0, train_s: float = 300.0,
                      seed: int = 7) -> npt.NDArray[np.complex128]:
    """The predictors of :func:`design_predictor` for several horizons at once (one least-squares solve).

    Returns
    -------
    ndarray of complex, shape (round(window_s * fs), len(horizons_s))
        One column of FIR taps per horizon, oldest sample first (apply as ``window @ taps``).
    """
    _check_fs_band(fs, SO_BAND_HZ)
    for h in horizons_s:
        check_number("horizon_s", h, ge=0, le=0.25, unit="s")
    n_taps = round(window_s * fs)
    shifts = [round(h * fs) for h in horizons_s]
    x = _generic_n3(int(train_s * fs), fs, seed)
    z = signal.hilbert(reference_band(x, fs))
    hp = signal.butter(1, _PRE_HP_HZ, btype="highpass", fs=fs, output="sos")
    feats = np.lib.stride_tricks.sliding_window_view(signal.sosfilt(hp, x), n_taps)
    rows = z.size - n_taps + 1 - max(shifts)
    skip = int(2 * fs)
    targets = np.stack([z[n_taps - 1 + d : n_taps - 1 + d + rows] for d in shifts], axis=1)
    rhs = np.concatenate([targets.real, targets.imag], axis=1)[skip:]
    sol = _least_squares(feats[:rows][skip:], rhs)
    k = len(shifts)
    return np.asarray(sol[:, :k] + 1j * sol[:, k:])


@functools.lru_cache(maxsize=16)
def predictor_gain(fs: float, horizon_s: float = 0.05, window_s: float = 1.0) -> float:
    """How much the predictor of :func:`design_predictor` shrinks the envelope, on its training signal.

    The least-squares predictor pulls uncertain predictions towards zero, the more so the further it looks ahead
    (0.83 at 50 ms, 0.73 at 150 ms at 100 Hz). :class:`CausalPhaseEstimator` divides its envelope by this
    factor, so amplitude gates keep their meaning whatever the latency. Measured on a training signal of a
    different seed than the design's.
    """
    taps = design_predictor(fs, horizon_s, window_s)
    x = _generic_n3(int(300 * fs), fs, seed=99)
    target = np.abs(signal.hilbert(reference_band(x, fs)))
    hp = signal.butter(1, _PRE_HP_HZ, btype="highpass", fs=fs, output="sos")
    pred = np.abs(signal.lfilter(taps[::-1], [1.0], signal.sosfilt(hp, x).astype(np.complex128)))
    d, skip = round(horizon_s * fs), taps.size + int(2 * fs)
    return float(np.mean(pred[skip : pred.size - d]) / np.mean(target[skip + d :]))


def _hilbert_row(n: int, at: int) -> npt.NDArray[np.complex128]:
    """The weights that give sample ``at`` of ``scipy.signal.hilbert`` of ``n`` samples: ``x @ w``.

    ``hilbert`` multiplies the FFT by ``h`` (1, 2 over the positive frequencies, 0 over the negative ones), a
    circular convolution with ``g = ifft(h)``: output ``at`` is ``sum_k x[k] g[(at - k) mod n]``.
    """
    h = np.zeros(n)
    h[0] = 1.0
    if n % 2 == 0:
        h[n // 2] = 1.0
        h[1 : n // 2] = 2.0
    else:
        h[1 : (n + 1) // 2] = 2.0
    g = np.fft.ifft(h)
    return np.asarray(g[(at - np.arange(n)) % n])


class CausalPhaseEstimator:
    """Batched causal slow-oscillation phase predictor with carried state (feed it chunk after chunk).

    Parameters
    ----------
    n_sessions : int
        Number of sessions (rows of every chunk).
    fs : float
        Sampling rate in Hz (>= 20 Hz).
    horizon_s : float
        Predict the phase this many seconds ahead (the measured latency from sample to sound), in s.
    window_s : float
        Length of the causal filter in seconds.
    calibrate : bool
        Learn each session's phase bias from the pulses reported with :meth:`note_pulses` (see the module notes).

    Examples
    --------
    >>> est = CausalPhaseEstimator(2, fs=100.0, horizon_s=0.05)
    >>> est.update(np.zeros((2, 50))).phase.shape
    (2, 50)
    """

    def __init__(self, n_sessions: int, fs: float, horizon_s: float = 0.05, window_s: float = 1.0, *,
                 calibrate: bool = True, ahead_s: tuple[float, ...] | None = None,
                 decide_every: int | None = None) -> None:
        check_number("n_sessions", n_sessions, ge=1)
        self.fs = float(fs)
        self.horizon_s = float(horizon_s)
        self.n_sessions = int(n_sessions)
        taps = design_predictor(self.fs, self.horizon_s, float(window_s))
        self._b = taps[::-1].copy()  # lfilter order: newest sample first
        # predictions over several horizons at decision points (every ``decide_every`` samples)
        self.ahead_s = None if ahead_s is None else tuple(float(h) for h in ahead_s)
        self.decide_every = None if decide_every is None else int(decide_every)
        if (self.ahead_s is None) != (self.decide_every is None):
            raise InvalidInputError("Give both 'ahead_s' and 'decide_every', or neither.")
        self._ahead_taps = (None if self.ahead_s is None
                            else design_predictors(self.fs, self.ahead_s, float(window_s)))
        self._ahead_real = (None if self._ahead_taps is None
                            else np.ascontiguousarray(np.hstack([self._ahead_taps.real, self._ahead_taps.imag])))
        self._ahead_rows = None if self._ahead_real is None else np.ascontiguousarray(self._ahead_real.T)
        self._y_hist = np.zeros((int(n_sessions), self._b.size - 1))
        self._tap_spectra: dict[int, Array] = {}
        self._taps_re = np.ascontiguousarray(taps.real)  # oldest sample first, for the direct sum
        self._taps_im = np.ascontiguousarray(taps.imag)
        self._amp_scale = 1.0 / predictor_gain(self.fs, self.horizon_s, float(window_s))
        self._hp = signal.butter(1, _PRE_HP_HZ, btype="highpass", fs=self.fs, output="sos")
        self._hp_zi = np.zeros((self._hp.shape[0], self.n_sessions, 2))
        self._pow_a = 1.0 / (_POWER_TAU_S * self.fs)
        self._pow_zi = np.zeros((self.n_sessions, 1))
        self._pow_n = np.zeros(self.n_sessions)
        # from this many samples on, the power's start-up correction 1 - (1 - a)^n is exactly 1.0
        self._pow_settled = float(np.ceil(-60.0 * np.log(2.0) / np.log1p(-self._pow_a)))
        self._n_seen = 0
        # calibration: a ring buffer of the raw EEG, the pulses waiting for their reference, the learned bias
        self.calibrate = bool(calibrate)
        self._cal_before = round(_CAL_BEFORE_S * self.fs)
        self._cal_after = round(_CAL_AFTER_S * self.fs)
        self._hilbert_at_pulse = _hilbert_row(self._cal_before + self._cal_after + 1, self._cal_before)
        self._ring = np.zeros((self.n_sessions, self._cal_before + self._cal_after + round(4 * self.fs)))
        self._pend_s = np.zeros(0, dtype=np.int64)
        self._pend_i = np.zeros(0, dtype=np.int64)
        self._pend_target = np.zeros(0)
        self._bias = np.zeros(self.n_sessions)

    @property
    def n_seen(self) -> int:
        """Number of samples consumed per session."""
        return self._n_seen

    @property
    def warmup_s(self) -> float:
        """Seconds of signal needed before the estimates are valid (filter length)."""
        return self._b.size / self.fs

    @property
    def bias(self) -> Array:
        """The learned phase bias of each session, in radians (added to the phase it reports)."""
        return self._bias.copy()

    def reset(self, sessions: npt.ArrayLike) -> None:
        """Forget the history of the given session rows (after a glitch, or when a new recording starts)."""
        idx = np.asarray(sessions, dtype=int)
        self._hp_zi[:, idx, :] = 0.0
        self._y_hist[idx] = 0.0
        self._pow_zi[idx] = 0.0
        self._pow_n[idx] = 0.0
        self._ring[idx] = 0.0
        self._bias[idx] = 0.0
        keep = ~np.isin(self._pend_s, idx)
        self._pend_s, self._pend_i, self._pend_target = self._pend_s[keep], self._pend_i[keep], self._pend_target[keep]

    def note_pulses(self, sessions: npt.ArrayLike, at_s: npt.ArrayLike, target: npt.ArrayLike) -> None:
        """Report pulses aimed at ``target``, so that the session's bias is learned from where they landed.

        Parameters
        ----------
        sessions : array_like of int
            Session row of each pulse.
        at_s : array_like of float
            When each pulse reaches the ear, in seconds on this estimator's clock (samples fed / ``fs``).
        target : array_like of float
            The phase each pulse was aimed at, in radians.
        """
        if not self.calibrate:
            return
        s = np.asarray(sessions, dtype=np.int64).ravel()
        at = np.asarray(at_s, dtype=float).ravel()
        tg = np.broadcast_to(np.asarray(target, dtype=float), s.shape)
        ok = np.isfinite(at) & np.isfinite(tg)
        self._pend_s = np.concatenate([self._pend_s, s[ok]])
        self._pend_i = np.concatenate([self._pend_i, np.round(at[ok] * self.fs).astype(np.int64)])
        self._pend_target = np.concatenate([self._pend_target, tg[ok]])

    def _learn(self) -> None:
        """Measure the reference phase of the pulses whose ``after_s`` has come; update their sessions' bias."""
        if not self._pend_s.size:
            return
        size = self._ring.shape[1]
        due = self._pend_i + self._cal_after <= self._n_seen - 1
        if not due.any():
            return
        s, i, tg = self._pend_s[due], self._pend_i[due], self._pend_target[due]
        self._pend_s, self._pend_i, self._pend_target = (self._pend_s[~due], self._pend_i[~due],
                                                         self._pend_target[~due])
        first = i - self._cal_before
        ok = first >= max(self._n_seen - size, 0)  # the whole window is still in the buffer
        s, first, tg = s[ok], first[ok], tg[ok]
        if not s.size:
            return
        cols = (first[:, None] + np.arange(self._cal_before + self._cal_after + 1)[None, :]) % size
        win = self._ring[s[:, None], cols]
        # the reference phase (:func:`reference_phase`) at the pulse only: the band-passed window times the
        # Hilbert transform's circular kernel centred there (the one output sample of its two FFTs)
        band = reference_band(win, self.fs)
        w = self._hilbert_at_pulse  # (two real products: a real matrix times a complex vector is not BLAS's)
        ref = np.arctan2(band @ np.ascontiguousarray(w.imag), band @ np.ascontiguousarray(w.real))
        err = np.angle(np.exp(1j * (ref - tg)))  # > 0: the pulse came after the target
        for k, e in zip(s, err, strict=True):  # in time order, each pulse moves its session's bias a little
            self._bias[k] = float(np.clip(self._bias[k] + _CAL_GAIN * e, -_CAL_MAX_RAD, _CAL_MAX_RAD))

    def update(self, x: npt.ArrayLike, ahead_rows: npt.ArrayLike | None = None) -> PhaseTrack:
        """Consume a chunk and return the prediction made at each of its samples.

        Parameters
        ----------
        x : array_like, shape (n_sessions, n_samples)
            New EEG samples in µV, one row per session.
        ahead_rows : array_like of bool, shape (n_sessions,), optional
            The rows whose multi-horizon predictions (``ahead_phase``) are wanted (default: all). On live ticks
            the other rows' are not computed and read 0; every row's state and other outputs are the same.

        Returns
        -------
        PhaseTrack
            ``phase[:, i]`` is the phase expected at ``t[i] + horizon_s``; the first ``warmup_s`` seconds are
            not reliable (the filter is filling).
        """
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] != self.n_sessions:
            raise InvalidInputError(
                f"Invalid chunk for the phase estimator: expected shape ({self.n_sessions}, n_samples), "
                f"got {a.shape}."
            )
        if not np.all(np.isfinite(a)):
            raise InvalidInputError("Invalid chunk for the phase estimator: it contains NaN or infinite values.")
        m = a.shape[1]
        if m == 0:
            empty = np.zeros((self.n_sessions, 0))
            return PhaseTrack(t=np.zeros(0), phase=empty, amp=empty, horizon_s=self.horizon_s, snr=empty)
        if m <= DIRECT_FIR_MAX:  # a live tick: one compiled pass per row
            want = (np.ones(self.n_sessions, dtype=bool) if ahead_rows is None
                    else np.ascontiguousarray(np.broadcast_to(np.asarray(ahead_rows, dtype=bool), (self.n_sessions,))))
            return self._update_tick(np.ascontiguousarray(a), m, want)
        y, self._hp_zi[...] = signal.sosfilt(self._hp, a, axis=-1, zi=self._hp_zi)
        # the FIR over the last window of every sample: one FFT convolution of (history + chunk) for all rows
        # (scipy's lfilter runs an FIR row by row in Python); identical to filtering from a zero state
        full = np.concatenate([self._y_hist, y], axis=1)
        z = self._fir(full, m)
        ahead_idx, ahead_phase = self._ahead(full, m)
        if self._y_hist.shape[1]:
            self._y_hist = full[:, -self._y_hist.shape[1]:].copy()
        alpha = self._pow_a
        pw, self._pow_zi[...] = signal.lfilter([alpha], [1.0, -(1.0 - alpha)], y * y, axis=-1, zi=self._pow_zi)
        count = self._pow_n[:, None] + np.arange(1, m + 1)[None, :]
        pw = pw / (1.0 - (1.0 - alpha) ** count)  # exponential mean corrected for its start-up
        self._pow_n += m
        amp = np.abs(z) * self._amp_scale
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.where(pw > 0, amp / np.sqrt(2.0 * pw), 0.0)
        t = (self._n_seen + np.arange(m)) / self.fs
        self._remember(a, m)
        phase = np.angle(z)
        if self._bias.any():  # a late pulse means the estimate lags: report the phase that far ahead
            phase = np.angle(np.exp(1j * (phase + self._bias[:, None])))
        if ahead_phase is not None and self._bias.any():
            ahead_phase = np.angle(np.exp(1j * (ahead_phase + self._bias[:, None, None])))
        return PhaseTrack(t=t, phase=phase, amp=amp, horizon_s=self.horizon_s, snr=snr, ahead_idx=ahead_idx,
                          ahead_phase=ahead_phase)

    def _update_tick(self, a: Array, m: int, want: npt.NDArray[np.bool_]) -> PhaseTrack:
        """:meth:`update` on a short chunk (up to :data:`DIRECT_FIR_MAX` samples, finite, C order).

        The high-pass, the FIR as a direct sum over the taps, the power, envelope and SNR, and the predictions
        at the chunk's decision points, in one compiled pass per row (:func:`predict_tick`); the phases are the
        angles of its outputs. The predictions at the decision points are made for the rows ``want`` only.
        """
        n = self.n_sessions
        g0 = self._n_seen
        idx = self._decision_points(g0, m)
        t = (g0 + np.arange(m)) / self.fs
        self._remember(a, m)  # the phase bias to apply is learned first, from samples already fed
        full = np.empty((n, self._y_hist.shape[1] + m))
        z_re, z_im, amp, snr = (np.empty((n, m)) for _ in range(4))
        taps = self._ahead_rows if self._ahead_rows is not None else np.zeros((0, self._b.size))
        a_re, a_im = (np.empty((n, 0 if idx is None else idx.size, taps.shape[0] // 2)) for _ in range(2))
        predict_tick(a, self._hp, self._hp_zi, self._y_hist, full, self._taps_re, self._taps_im, self._amp_scale,
                     self._pow_a, self._pow_zi.reshape(-1), self._pow_n, self._pow_settled, self._bias,
                     np.zeros(0, dtype=np.int64) if idx is None else idx, taps, z_re, z_im, amp, snr, a_re, a_im,
                     want)
        ahead_phase = None
        if idx is not None:
            if want.all():
                ahead_phase = np.arctan2(a_im, a_re)
            else:  # the angles of the rows wanted (the others' are 0, as their outputs)
                ahead_phase = np.zeros(a_re.shape)
                ahead_phase[want] = np.arctan2(a_im[want], a_re[want])
        return TickTrack(t, z_re, z_im, amp, self.horizon_s, snr, ahead_idx=idx, ahead_phase=ahead_phase)

    def _remember(self, a: Array, m: int) -> None:
        """Keep the chunk's raw EEG for the calibration, count its samples, learn from pulses now due."""
        if self.calibrate:
            size = self._ring.shape[1]
            cols = (self._n_seen + np.arange(max(0, m - size), m)) % size
            self._ring[:, cols] = a[:, max(0, m - size):]
        self._n_seen += m
        if self.calibrate:
            self._learn()

    def _decision_points(self, g0: int, m: int) -> npt.NDArray[np.int64] | None:
        """The decision points (see :meth:`_ahead`) of a chunk starting at global sample ``g0``.

        None without ``ahead_s``.
        """
        if self._ahead_taps is None or self.decide_every is None:
            return None
        first = (-(g0 + 1)) % self.decide_every
        return np.arange(first, m, self.decide_every, dtype=np.int64)

    def _fir(self, full: Array, m: int) -> Array:
        """The complex FIR's output at the last ``m`` samples of ``full`` (history + chunk), by real FFTs.

        Long chunks only; live ticks take :meth:`_update_tick`.

        A circular convolution of length ``n >= full.shape[1]`` is exact on the samples whose whole window
        lies in ``full`` (the wrap-around only reaches the first ``taps - 1``); the taps' spectra are
        computed once per length.
        """
        from scipy import fft

        n_taps = self._b.size
        size = fft.next_fast_len(full.shape[1], real=True)
        spec = self._tap_spectra.get(size)
        if spec is None:
            spec = np.stack([fft.rfft(self._b.real, size), fft.rfft(self._b.imag, size)])
            self._tap_spectra[size] = spec
        xf = fft.rfft(full, size, axis=1)
        re = fft.irfft(xf * spec[0], size, axis=1)
        im = fft.irfft(xf * spec[1], size, axis=1)
        a = n_taps - 1
        return re[:, a : a + m] + 1j * im[:, a : a + m]

    def _ahead(self, full: Array, m: int) -> tuple[npt.NDArray[np.int64] | None, Array | None]:
        """Phases predicted at every horizon of ``ahead_s`` from each decision point of this chunk.

        A decision point is a sample whose global index ``g`` has ``(g + 1) % decide_every == 0`` (the
        last sample of each live tick); the predictions use the filter window ending there.
        """
        idx = self._decision_points(self._n_seen, m)  # (the chunk's first sample: the count is not yet advanced)
        if idx is None or self._ahead_taps is None:
            return None, None
        if not idx.size:
            return idx, np.zeros((self.n_sessions, 0, len(self.ahead_s or ())))
        n_taps, k = self._ahead_taps.shape
        assert self._ahead_real is not None
        win = np.lib.stride_tricks.sliding_window_view(full, n_taps, axis=1)[:, idx]  # (n, D, taps), a copy
        out = win.reshape(-1, n_taps) @ self._ahead_real  # one matrix product for every horizon, re and im
        z = (out[:, :k] + 1j * out[:, k:]).reshape(self.n_sessions, idx.size, k)
        return idx, np.angle(z)


def causal_phase_track(x: npt.ArrayLike, fs: float, *, horizon_s: float = 0.0, chunk_s: float = 60.0) -> PhaseTrack:
    """Run :class:`CausalPhaseEstimator` over whole recordings, chunk by chunk (only past samples are used).

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_sessions, n_samples)
        EEG in µV.
    fs : float
        Sampling rate in Hz.
    horizon_s : float
        Prediction horizon in seconds.
    chunk_s : float
        Chunk length in seconds (bounds memory; the result does not depend on it).

    Returns
    -------
    PhaseTrack
        Arrays of shape (n_sessions, n_samples) (one session for 1-D input).
    """
    a, _ = _as_2d(x)
    est = CausalPhaseEstimator(a.shape[0], fs, horizon_s=horizon_s)
    step = max(1, round(chunk_s * fs))
    parts = [est.update(a[:, i : i + step]) for i in range(0, a.shape[1], step)]
    return PhaseTrack(
        t=np.concatenate([p.t for p in parts]),
        phase=np.concatenate([p.phase for p in parts], axis=1),
        amp=np.concatenate([p.amp for p in parts], axis=1),
        horizon_s=horizon_s,
        snr=np.concatenate([p.snr for p in parts], axis=1),
    )


def wrap_phase(x: npt.ArrayLike) -> Array:
    """Angles wrapped into [-π, π] by subtracting whole turns, in radians.

    Those already within are returned unchanged; the same as ``angle(exp(1j * x))`` to the rounding level,
    without complex arrays.
    """
    a = np.asarray(x, dtype=float)
    return np.asarray(a - (2 * np.pi) * np.rint(a / (2 * np.pi)))


def target_crossings(prev_phase: npt.ArrayLike, phase: npt.ArrayLike, target: float
                     ) -> tuple[npt.NDArray[np.bool_], Array]:
    """Where a phase sequence passes forward through ``target`` between consecutive samples.

    Parameters
    ----------
    prev_phase : array_like, shape (..., n)
        Phase at the previous sample of each element of ``phase``, in radians.
    phase : array_like, shape (..., n)
        Phase in radians.
    target : float
        Target phase in radians.

    Returns
    -------
    crossed : ndarray of bool, shape (..., n)
        True where the target lies in (prev_phase, phase] going forward by less than π/2.
    frac : ndarray, shape (..., n)
        Fraction of the sample interval before ``phase``'s sample at which the target was reached
        (0 = at the sample, 1 = at the previous one), for sub-sample timing.
    """
    p0 = wrap_phase(np.asarray(prev_phase, dtype=float) - target)
    p1 = wrap_phase(np.asarray(phase, dtype=float) - target)
    step = p1 - p0
    crossed = (p0 < 0) & (p1 >= 0) & (step > 0) & (step < np.pi / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(crossed, p1 / np.where(step > 0, step, 1.0), 0.0)
    return crossed, np.clip(frac, 0.0, 1.0)


def circular_stats(angles: npt.ArrayLike, window: float = np.pi / 4) -> dict[str, float]:
    """Circular mean, circular SD and share within ±``window`` of zero, all angles in radians.

    Returns
    -------
    dict
        ``n``, ``mean_deg``, ``sd_deg`` (circular SD, sqrt(-2 ln R)), ``resultant`` (R), ``in_window``
        (share of angles with |angle| <= window).
    """
    a = np.asarray(angles, dtype=float).ravel()
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"n": 0, "mean_deg": float("nan"), "sd_deg": float("nan"), "resultant": float("nan"),
                "in_window": float("nan")}
    z = np.exp(1j * a).mean()
    r = float(np.abs(z))
    wrapped = np.angle(np.exp(1j * a))
    return {
        "n": int(a.size),
        "mean_deg": float(np.degrees(np.angle(z))),
        "sd_deg": float(np.degrees(np.sqrt(-2 * np.log(min(max(r, 1e-12), 1.0))))),  # R may round above 1
        "resultant": r,
        "in_window": float(np.mean(np.abs(wrapped) <= window + 1e-12)),
    }
