"""The live stager's filter front-end: causal low-pass, resampling to 100 Hz, linear-phase high-pass.

Pushed samples (at any rate above 80 Hz) go through one compiled pass
(:func:`~nexus.staging._kernels.filter_chain`) into a buffer of filtered 100-Hz samples, one row
per (session, kind), from which the stager takes 5-s blocks (:meth:`FilterFrontEnd.next_block`)
together with the samples before them that the block statistics and the straddling Welch
segment need. The filters' state is carried from push to push; a reset session restarts its
filters in steady state at its next sample.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import signal

from nexus.dsp._biquad import WIDTH
from nexus.staging import _kernels as K
from nexus.staging import features as F
from nexus.staging.live._layout import _BLOCK, _HISTORY, FloatArray, _any

_LP_HZ = 34.0  # causal low-pass corner (Butterworth, order 8), in Hz
_MA_LEN = 183  # boxcar length of the high-pass (3 cascaded: -6 dB near 0.2 Hz like MNE's 0.4-Hz edge)
_HP_DELAY = 3 * (_MA_LEN - 1) // 2  # 273 samples = 2.73 s


class FilterFrontEnd:
    """Filtered 100-Hz samples of every (session, kind), block by block.

    Parameters
    ----------
    n_sessions : int
        Sessions (leading axis of the pushed blocks).
    fs : float
        Sampling rate of the pushed blocks, in Hz.
    kinds : tuple of str
        Channel kinds staged (``"eeg"``, ``"eog"``, ``"emg"``), in buffer-row order.
    rows : list of int
        Channel row of each kind in the pushed blocks.
    """

    def __init__(self, n_sessions: int, fs: float, kinds: tuple[str, ...], rows: list[int]) -> None:
        self.n_sessions = n_sessions
        self.fs = fs
        self.kinds = kinds
        self._rows = rows
        s, c = n_sessions, len(kinds)
        # causal low-pass at the input rate (anti-alias and 30-Hz edge in one), then interpolation to
        # 100 Hz, then a linear-phase high-pass (delay minus a triple moving average): linear phase
        # keeps wave shapes (skewness) as the offline zero-phase filter does, at a delay of _HP_DELAY
        self._resample = self.fs != F.FS
        self._lp = signal.butter(8, _LP_HZ, fs=self.fs, output="sos")
        self._lp_zi = np.zeros((s, c, self._lp.shape[0], 2))
        # high-pass tails in tiles of WIDTH rows, lanes last (rows = session · kinds + kind): the
        # filter chain reads and writes a tile's tails as contiguous memory
        n_tiles = -(-s * c // WIDTH)
        self._ma_tails = np.zeros((n_tiles, 3, _MA_LEN - 1, WIDTH))
        self._delay_tail = np.zeros((n_tiles, _HP_DELAY, WIDTH))
        self._fresh = np.ones(s, dtype=bool)  # sessions whose filters start at the next sample
        self._prev = np.zeros((s, c))  # last low-passed sample (for interpolation across blocks)
        self._phase = 0.0  # position of the next 100-Hz sample, in input samples from the block start
        self._chans = np.asarray(self._rows, dtype=np.int64)
        # filtered 100-Hz samples, one row per (session, kind): the block to process next starts at
        # column _y_pos, after _HISTORY columns of the samples before it (zeros at the start);
        # the filter chain writes its output straight in, and blocks are read from it as views
        self._y = np.zeros((s * c, _HISTORY + 4 * _BLOCK))
        self._y_nan = np.zeros((s, self._y.shape[1]), dtype=bool)  # missing samples, per session
        self._y_pos = self._y_len = _HISTORY

    @property
    def y(self) -> FloatArray:
        """The buffer of filtered samples, one row per (session, kind) (a view; valid until the next push)."""
        return self._y

    def next_block(self) -> tuple[int, npt.NDArray[np.bool_]] | None:
        """The next complete 5-s block: its first column in :attr:`y` and its missing samples (sessions, 500).

        None when less than a block is pending. The columns before it stay in the buffer until
        the next push.
        """
        if self._y_len - self._y_pos < _BLOCK:
            return None
        at = self._y_pos
        self._y_pos += _BLOCK
        return at, self._y_nan[:, at : at + _BLOCK]

    def push(self, x: npt.NDArray[np.floating]) -> None:
        """Filter new samples (sessions, channels, n > 0), float32 or float64, in µV, into the buffer."""
        if self._fresh.any():
            first = x[:, self._rows, 0]
            self._start_state(np.where(np.isfinite(first), first, 0.0), self._fresh)
        n = x.shape[-1]
        pos = self._positions(n)
        m = pos.size
        at = self._reserve(m)
        # no intermediate array: the filter chain writes into the sample buffer; missing samples
        # are filtered as 0, and their mask is built only when there are any
        if self._filter(x, pos, self._y[:, at : at + m]):
            nan_in = _any(~np.isfinite(x), 1)
            self._y_nan[:, at : at + m] = nan_in[:, np.clip(np.round(pos).astype(np.int64), 0, n - 1)]
        self._y_len += m

    def _positions(self, n: int) -> FloatArray:
        """Positions of the next 100-Hz samples among ``n`` new input samples (−1: the previous sample)."""
        if not self._resample:
            return np.arange(n, dtype=np.float64)
        step = self.fs / F.FS
        pos: FloatArray = np.arange(int(np.floor((n - 1 - self._phase) / step)) + 1, dtype=np.float64)
        pos = self._phase + step * pos
        pos = pos[pos <= n - 1]
        self._phase = float(pos[-1] + step - n) if pos.size else self._phase - n
        return pos

    def _reserve(self, m: int) -> int:
        """Make room for ``m`` more samples in the buffer; return the column they start at."""
        cap = self._y.shape[1]
        if self._y_len + m > cap:  # drop the samples no block needs any more
            keep = self._y_pos - _HISTORY
            self._y[:, : self._y_len - keep] = self._y[:, keep : self._y_len]
            self._y_nan[:, : self._y_len - keep] = self._y_nan[:, keep : self._y_len]
            self._y_nan[:, self._y_len - keep :] = False
            self._y_pos -= keep
            self._y_len -= keep
        if self._y_len + m > cap:  # a long push: grow
            grow = self._y_len + m + 2 * _BLOCK - cap
            self._y = np.concatenate([self._y, np.zeros((self._y.shape[0], grow))], axis=1)
            self._y_nan = np.concatenate([self._y_nan, np.zeros((self._y_nan.shape[0], grow), dtype=bool)], axis=1)
        return self._y_len

    def _filter(self, x: npt.NDArray[np.floating], pos: FloatArray, out: FloatArray) -> int:
        """Low-pass, resample and high-pass the new samples ``x`` into ``out``; return how many were missing.

        ``pos`` are the positions of the 100-Hz output samples among the input samples (see
        :meth:`_positions`); the filter state is carried in place (:func:`~nexus.staging._kernels.filter_chain`).
        """
        n = x.shape[-1]
        s, c = self.n_sessions, len(self.kinds)
        i0 = np.floor(pos).astype(np.int64)
        return int(
            K.filter_chain(
                x,
                self._chans,
                self._lp,
                self._lp_zi.reshape(s * c, -1, 2),
                self._prev.reshape(-1),
                i0,
                pos - i0,
                np.minimum(i0 + 1, n - 1),
                self._delay_tail,
                self._ma_tails,
                out,
            )
        )

    def _start_state(self, first: FloatArray, rows: npt.NDArray[np.bool_]) -> None:
        """Start the filters of new sessions in steady state for their first sample (no start-up transient)."""
        f = first[rows]
        self._prev[rows] = f
        self._lp_zi[rows] = signal.sosfilt_zi(self._lp)[None, None, :, :] * f[:, :, None, None]
        c = len(self.kinds)
        r = (np.flatnonzero(rows)[:, None] * c + np.arange(c)).ravel()  # their rows
        self._ma_tails[r // WIDTH, :, :, r % WIDTH] = f.reshape(-1)[:, None, None]
        self._delay_tail[r // WIDTH, :, r % WIDTH] = f.reshape(-1)[:, None]
        self._fresh[rows] = False

    def reset(self, idx: npt.NDArray[np.intp]) -> None:
        """Restart the filters of the sessions ``idx`` at their next sample; their pending samples are missing."""
        self._fresh[idx] = True
        c = len(self.kinds)
        self._y[(idx[:, None] * c + np.arange(c)).ravel()] = 0.0
        self._y_nan[idx, self._y_pos : self._y_len] = True
