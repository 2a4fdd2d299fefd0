"""IIR filter design and filters with carried state, batched over leading axes.

All filters are second-order sections (SOS, numerically safer than transfer functions).
:class:`StatefulFilter` filters a stream block by block along the last axis; any leading
axes (sessions, channels) are filtered together in one vectorised call, and filtering a
stream in chunks gives the same output as filtering it whole.

Examples
--------
>>> import numpy as np
>>> sos = bandpass_sos(0.3, 35.0, fs=256.0)
>>> f = StatefulFilter(sos, leading_shape=(4, 2))        # 4 sessions × 2 channels
>>> y = f.step(np.zeros((4, 2, 25)))                      # one 100 ms block at 256 Hz
>>> y.shape
(4, 2, 25)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import signal

from nexus.core.checks import check_number, check_option
from nexus.core.errors import InvalidInputError
from nexus.dsp import _biquad

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "StatefulFilter",
    "bandpass_sos",
    "highpass_sos",
    "lowpass_sos",
    "notch_sos",
    "zero_phase",
]


def _frozen(sos: npt.ArrayLike) -> FloatArray:
    return np.array(sos, dtype=np.float64)


@lru_cache(maxsize=256)
def _butter(order: int, cut: tuple[float, ...], btype: str, fs: float) -> tuple[tuple[float, ...], ...]:
    # the live engine asks for the same designs every tick: cache them (as tuples, immutable)
    sos = signal.butter(order, list(cut) if len(cut) > 1 else cut[0], btype=btype, fs=fs, output="sos")
    return tuple(tuple(float(v) for v in row) for row in sos)


def _check_fs_band(fs: float, *freqs: float) -> float:
    fs = check_number("fs", fs, gt=0, unit="Hz")
    nyq = fs / 2.0
    for f in freqs:
        check_number("cut-off frequency", f, gt=0, unit="Hz")
        if f >= nyq:
            raise InvalidInputError(
                f"Invalid value for 'cut-off frequency': expected < {nyq:g} Hz (half of fs = {fs:g} Hz), "
                f"got {f:g} Hz. Lower the cut-off or raise the sampling rate."
            )
    return fs


def bandpass_sos(low: float, high: float, fs: float, order: int = 4) -> FloatArray:
    """Design a Butterworth band-pass filter.

    Parameters
    ----------
    low, high : float
        Pass-band edges (-3 dB), in Hz; ``0 < low < high < fs / 2``.
    fs : float
        Sampling rate, in Hz.
    order : int
        Order of each of the low- and high-pass halves (the band-pass has ``2 * order`` poles).

    Returns
    -------
    ndarray, shape (n_sections, 6)
        Second-order sections for :func:`scipy.signal.sosfilt`.
    """
    fs = _check_fs_band(fs, low, high)
    if not low < high:
        raise InvalidInputError(f"Invalid band: expected low < high, got {low:g}-{high:g} Hz. Swap the edges.")
    return _frozen(_butter(int(order), (float(low), float(high)), "bandpass", fs))


def highpass_sos(cutoff: float, fs: float, order: int = 2) -> FloatArray:
    """Design a Butterworth high-pass filter (cut-off in Hz, fs in Hz); returns SOS."""
    fs = _check_fs_band(fs, cutoff)
    return _frozen(_butter(int(order), (float(cutoff),), "highpass", fs))


def lowpass_sos(cutoff: float, fs: float, order: int = 4) -> FloatArray:
    """Design a Butterworth low-pass filter (cut-off in Hz, fs in Hz); returns SOS."""
    fs = _check_fs_band(fs, cutoff)
    return _frozen(_butter(int(order), (float(cutoff),), "lowpass", fs))


def notch_sos(line: float, fs: float, quality: float = 30.0, harmonics: int = 1) -> FloatArray:
    """Design a notch filter at the mains frequency (and optionally its harmonics).

    Parameters
    ----------
    line : float
        Mains frequency, in Hz (50 in Europe, 60 in the Americas).
    fs : float
        Sampling rate, in Hz.
    quality : float
        Quality factor Q: the -3 dB width of each notch is ``line / Q`` Hz.
    harmonics : int
        Number of notches: ``line, 2·line, …``; harmonics at or above ``fs / 2`` are skipped.

    Returns
    -------
    ndarray, shape (n_sections, 6)
        Second-order sections.
    """
    fs = _check_fs_band(fs, line)
    check_number("quality", quality, gt=0)
    sections = []
    for k in range(1, max(1, int(harmonics)) + 1):
        f0 = k * line
        if f0 >= fs / 2:
            break
        b, a = signal.iirnotch(f0, quality, fs=fs)
        sections.append(signal.tf2sos(b, a))
    return _frozen(np.vstack(sections))


def zero_phase(x: npt.ArrayLike, sos: FloatArray, axis: int = -1) -> FloatArray:
    """Filter forwards and backwards (no phase shift) along ``axis``; for offline use.

    Short inputs are padded as much as possible instead of failing.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[axis]
    padlen = min(3 * (2 * len(sos) + 1), max(n - 1, 0))
    if not (x.ndim and axis in (-1, x.ndim - 1) and _tiled(x.size // max(n, 1), n)):
        return np.asarray(signal.sosfiltfilt(sos, x, axis=axis, padlen=padlen))
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    rows = np.ascontiguousarray(x.reshape(-1, n))
    out = np.empty_like(rows)
    _biquad.filtfilt(rows, sos, _zi_unit(sos), padlen, out)  # same arithmetic as sosfiltfilt, rows side by side
    return out.reshape(x.shape)


def _tiled(rows: int, n: int) -> bool:
    """Whether the compiled kernels pay off: many short rows (live blocks and windows), not a few long ones."""
    return rows >= MIN_ROWS and 2 <= n <= MAX_SAMPLES


#: the compiled kernels filter rows side by side: below this many rows, or for rows longer than
#: MAX_SAMPLES (whole recordings, where a tile would be large), scipy is used
MIN_ROWS = 8
MAX_SAMPLES = 1 << 16


def _zi_unit(sos: FloatArray) -> FloatArray:
    key = sos.tobytes()
    zi = _ZI_CACHE.get(key)
    if zi is None:
        zi = _ZI_CACHE[key] = np.ascontiguousarray(signal.sosfilt_zi(sos))
    return zi


_ZI_CACHE: dict[bytes, FloatArray] = {}


class StatefulFilter:
    """A causal IIR filter that carries its state from block to block.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
        Second-order sections (see :func:`bandpass_sos` and friends).
    leading_shape : tuple of int
        Shape of the axes before the sample axis, e.g. ``(n_sessions, n_channels)``.
    init : {"zeros", "step"}
        Initial state: ``"zeros"`` (signal assumed zero before the stream) or ``"step"``
        (steady state for the first sample held constant before the stream, which avoids the
        start-up transient of a DC offset).

    Notes
    -----
    The state has shape ``(n_sections, *leading_shape, 2)``. Sessions can be reset one by one
    (:meth:`reset`) when a session starts or its stream returns after a gap.
    """

    def __init__(
        self,
        sos: npt.ArrayLike,
        leading_shape: tuple[int, ...] = (),
        init: Literal["zeros", "step"] = "zeros",
    ) -> None:
        self.sos = np.atleast_2d(np.asarray(sos, dtype=np.float64))
        if self.sos.ndim != 2 or self.sos.shape[1] != 6:
            raise InvalidInputError(
                f"Invalid filter: expected second-order sections of shape (n, 6), got {self.sos.shape}."
            )
        self.init = check_option("filter init", init, ("zeros", "step"))
        self.leading_shape = tuple(int(n) for n in leading_shape)
        self._zi_unit = signal.sosfilt_zi(self.sos)  # (n_sections, 2), state for a unit step
        self.zi = np.zeros((self.sos.shape[0], *self.leading_shape, 2))
        self._fresh = np.ones(self.leading_shape, dtype=bool)
        self._any_fresh = True  # whether some row of _fresh is set (no pass over it at every step)
        self._rows = int(np.prod(self.leading_shape, dtype=np.int64))

    def reset(self, index: npt.ArrayLike | None = None) -> None:
        """Forget the state of some sessions (all when ``index`` is None); they restart like new.

        ``index`` selects along the first leading axis (integer indices or a boolean mask).
        """
        if index is None:
            self.zi[...] = 0.0
            self._fresh[...] = True
            self._any_fresh = True
        else:
            idx = np.asarray(index)
            idx = idx if idx.dtype == bool else idx.astype(np.intp)
            self.zi[:, idx] = 0.0
            self._fresh[idx] = True
            self._any_fresh = True

    def step(self, block: npt.ArrayLike, out: FloatArray | None = None) -> FloatArray:
        """Filter one block and carry the state on.

        Parameters
        ----------
        block : ndarray, shape (*leading_shape, n_samples)
            New samples (any units; the output has the same units).
        out : ndarray, optional
            Where to write the filtered samples: a float64 array of the block's shape, with any
            strides (e.g. rows of a larger array). It may be ``block`` itself, to filter in
            place; no intermediate copy is made then.

        Returns
        -------
        ndarray, same shape as ``block``
            Filtered samples (``out`` when given).
        """
        x = np.asarray(block, dtype=np.float64)
        if x.shape[:-1] != self.leading_shape:
            raise InvalidInputError(
                f"Invalid block shape {x.shape}: expected (*{self.leading_shape}, n_samples). "
                "Give one row per session/channel the filter was made for."
            )
        if out is not None and (out.shape != x.shape or out.dtype != np.float64):
            raise InvalidInputError(f"Invalid 'out': expected float64 of shape {x.shape}, got {out.dtype} {out.shape}.")
        if x.shape[-1] == 0:
            return x.copy() if out is None else out
        if self._any_fresh:
            if self.init == "step" and self._fresh.any():
                first = x[..., 0]
                start = self._zi_unit.reshape((self._zi_unit.shape[0],) + (1,) * len(self.leading_shape) + (2,))
                start = start * first[None, ..., None]
                self.zi = np.where(self._fresh[None, ..., None], start, self.zi)
            self._fresh[...] = False
            self._any_fresh = False
        rows = self._rows
        if not _tiled(rows, x.shape[-1]):  # a few long rows: scipy's one-row loop is as fast
            y, self.zi = signal.sosfilt(self.sos, x, axis=-1, zi=self.zi)
            if out is None:
                return np.asarray(y)
            out[...] = y
            return out
        if out is None:
            y = np.array(x, dtype=np.float64, order="C", copy=True)
        else:
            y = out
            if not (y is x or (y.ctypes.data == x.ctypes.data and y.strides == x.strides)):
                np.copyto(y, x)
        self.zi = np.ascontiguousarray(self.zi)
        n = x.shape[-1]
        flat = _rows_view(y, rows, n)
        if flat is not None:
            _biquad.sosfilt(flat, self.sos, self.zi.reshape(self.sos.shape[0], rows, 2))  # in place, state carried
        else:  # rows that cannot be flattened without a copy: one call per inner index, in place
            for idx in np.ndindex(*self.leading_shape[1:]):
                _biquad.sosfilt(y[(slice(None), *idx)], self.sos, self.zi[(slice(None), slice(None), *idx)])
        return y


def _rows_view(y: FloatArray, rows: int, n: int) -> FloatArray | None:
    """``y`` as a (rows, n) view of the same memory, or None when its strides do not allow one."""
    if y.ndim == 2:
        return y
    try:
        return np.reshape(y, (rows, n), copy=False)  # raises instead of copying
    except ValueError:
        return None
