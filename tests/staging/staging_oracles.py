"""Reference (array) forms of the staging kernels: the oracles the compiled kernels are tested against.

They are the straightforward numpy/scipy definitions that :mod:`nexus.staging._kernels`,
:mod:`nexus.staging._select` and the tree walk of :mod:`nexus.staging.model` compute in fused
compiled passes; the tests compare the two. :class:`ReferenceLiveStager` is the live stager with
every kernel replaced by its array form.
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft
from scipy import signal

from nexus.dsp._biquad import WIDTH
from nexus.staging import features as F
from nexus.staging._kernels import WINDOW_FEATURES
from nexus.staging.live import LiveStager
from nexus.staging.live._layout import _BLOCK, _KMAX, _N_BINS, _N_SEG, _SEG, _any
from nexus.staging.live.blocks import BlockStatistics
from nexus.staging.live.frontend import _HP_DELAY, _MA_LEN, FilterFrontEnd
from nexus.staging.live.stager import _Shard
from nexus.staging.window import N_STATS as _N_STATS
from nexus.staging.window import S_HIG as _S_HIG
from nexus.staging.window import S_NAN as _S_NAN
from nexus.staging.window import S_NZC as _S_NZC
from nexus.staging.window import S_NZCD as _S_NZCD
from nexus.staging.window import S_PERM as _S_PERM
from nexus.staging.window import S_Q as _S_Q
from nexus.staging.window import band_weights as _band_weights
from nexus.staging.window import hamming as _hamming
from nexus.staging.window import median_bias as _median_bias

FloatArray = npt.NDArray[np.float64]
_HK = np.arange(1, _KMAX + 1, dtype=np.float64)  # Higuchi lags


# --------------------------------------------------------------------------- offline epoch features
def _count_sign_changes(x: FloatArray) -> FloatArray:
    s = np.signbit(x)
    return np.count_nonzero(s[..., 1:] != s[..., :-1], axis=-1).astype(np.float64)


def _perm_entropy3(x: FloatArray) -> FloatArray:
    """Normalised order-3, delay-1 permutation entropy (bits / log2(6)), along the last axis."""
    a, b, c = x[..., :-2], x[..., 1:-1], x[..., 2:]
    code = (a <= b).astype(np.int8) * 4 + (a <= c).astype(np.int8) * 2 + (b <= c).astype(np.int8)
    n = code.shape[-1]
    counts = np.stack([np.count_nonzero(code == k, axis=-1) for k in range(8)], axis=-1) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(counts > 0, counts * np.log2(np.where(counts > 0, counts, 1.0)), 0.0).sum(axis=-1)
    return np.clip(h / np.log2(6.0), 0.0, 1.0)


def _higuchi(x: FloatArray, kmax: int = 10) -> FloatArray:
    """Higuchi fractal dimension along the last axis (slope of log L(k) against log 1/k).

    For each k, the curve lengths of the k offsets are averaged with weights 1/n_max(m), which
    is one matrix-vector product over all epochs.
    """
    n = x.shape[-1]
    log_inv_k = np.log(1.0 / np.arange(1, kmax + 1))
    log_l = np.empty((*x.shape[:-1], kmax))
    for k in range(1, kmax + 1):  # kmax iterations, each vectorised over all epochs
        d = np.abs(x[..., k:] - x[..., :-k])
        n_max = np.floor((n - np.arange(k) - 1) / k)  # pairs per offset m
        weights = (1.0 / n_max)[np.arange(n - k) % k]  # pair i belongs to offset i mod k
        mean_l = (d @ weights) * ((n - 1) / (k * k * k))
        with np.errstate(divide="ignore"):
            log_l[..., k - 1] = np.where(mean_l > 0, np.log(np.where(mean_l > 0, mean_l, 1.0)), -np.inf)
    # least-squares slope, with the same tiny regulariser in the denominator as antropy
    sx, sx2 = log_inv_k.sum(), (log_inv_k**2).sum()
    with np.errstate(invalid="ignore"):  # a flat epoch: −inf · 0 → NaN, as in the compiled kernel
        sy = log_l.sum(axis=-1)
        sxy = (log_l * log_inv_k).sum(axis=-1)
        return (kmax * sxy - sx * sy) / (kmax * sx2 - sx**2 + 1e-9)


def time_features(x: FloatArray) -> dict[str, FloatArray]:
    """Time-domain features of rows ``(n_rows, n_samples)`` (the names in ``_TIME_NAMES``)."""
    n = x.shape[-1]
    feat: dict[str, FloatArray] = {}
    mean = x.mean(axis=-1, keepdims=True)
    dev = x - mean
    dev2 = dev * dev
    m2 = dev2.mean(axis=-1)
    feat["std"] = np.sqrt(m2 * n / (n - 1))
    # quartiles with numpy's linear interpolation, from one partition
    lo25, lo75 = (n - 1) * 0.25, (n - 1) * 0.75
    i25, i75 = int(lo25), int(lo75)
    part = np.partition(x, [i25, i25 + 1, i75, i75 + 1], axis=-1)
    q25 = part[..., i25] + (lo25 - i25) * (part[..., i25 + 1] - part[..., i25])
    q75 = part[..., i75] + (lo75 - i75) * (part[..., i75 + 1] - part[..., i75])
    feat["iqr"] = q75 - q25
    with np.errstate(invalid="ignore", divide="ignore"):
        feat["skew"] = (dev2 * dev).mean(axis=-1) / m2**1.5
        feat["kurt"] = (dev2 * dev2).mean(axis=-1) / m2**2 - 3.0
    feat["nzc"] = _count_sign_changes(x)
    dx = np.diff(x, axis=-1)
    ddx = np.diff(dx, axis=-1)
    v_dx, v_ddx = dx.var(axis=-1), ddx.var(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mob = np.sqrt(v_dx / m2)
        feat["hmob"] = mob
        feat["hcomp"] = np.sqrt(v_ddx / v_dx) / mob
    feat["perm"] = _perm_entropy3(x)
    feat["higuchi"] = _higuchi(x, _KMAX)
    nzc_d = _count_sign_changes(dx)
    feat["petrosian"] = np.log10(n) / (np.log10(n) + np.log10(n / (n + 0.4 * nzc_d)))
    return feat


def spectral_features(x: FloatArray, fs: float = F.FS) -> dict[str, FloatArray]:
    """Band powers, ratios and absolute power of rows ``(n_rows, n_samples)``, as YASA computes them.

    scipy's Welch PSD (5-s Hamming segments, 50 % overlap, median average), relative band powers
    by Simpson's rule over the bins in each band (edges included) of the 0.4-30 Hz total, absolute
    power by the trapezoid rule.
    """
    from scipy.integrate import simpson

    freqs, psd = signal.welch(x, fs, window="hamming", nperseg=int(5 * fs), average="median", axis=-1)
    res = freqs[1] - freqs[0]
    keep = (freqs >= F.BROAD[0]) & (freqs <= F.BROAD[1])
    f_in, p_in = freqs[keep], psd[..., keep]
    feat: dict[str, FloatArray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        total = simpson(p_in, dx=res, axis=-1)
        for lo, hi, name in F.BANDS:
            band = (f_in >= lo) & (f_in <= hi)
            feat[name] = simpson(p_in[..., band], dx=res, axis=-1) / total
        delta = feat["sdelta"] + feat["fdelta"]
        feat["dt"] = delta / feat["theta"]
        feat["ds"] = delta / feat["sigma"]
        feat["db"] = delta / feat["beta"]
        feat["at"] = feat["alpha"] / feat["theta"]
    feat["abspow"] = np.trapezoid(p_in, dx=res, axis=-1)
    return feat


def channel_features(epochs: FloatArray, kind: str, fs: float = F.FS) -> dict[str, FloatArray]:
    """:func:`nexus.staging.features.channel_features` from array operations only.

    Time-domain features by :func:`time_features`, spectral ones by :func:`spectral_features`
    (scipy's Welch and Simpson rule, YASA's definitions).
    """
    x = np.asarray(epochs, dtype=np.float64)
    lead, n = x.shape[:-1], x.shape[-1]
    rows = x.reshape(-1, n)
    out = time_features(rows)
    out.update(spectral_features(rows, fs))
    return {name: out[name].reshape(lead) for name in F.feature_names(kind)}


def tree_scores_proba(model, x):
    """Stage probabilities of a :class:`~nexus.staging.model.TreeModel`: a plain vectorised walk, level by level."""
    x32 = np.asarray(x, dtype=np.float32)
    xx = np.where(np.isnan(x32), np.float32(0.0), x32).astype(np.float64)
    n_rows, n_feat = xx.shape
    n_trees, n_inner = model.feature.shape
    tree_base = (np.arange(n_trees, dtype=np.int64) * n_inner)[None, :]
    leaf_base = (np.arange(n_trees, dtype=np.int64) * (n_inner + 1) - n_inner)[None, :]
    feat_flat, thr_flat, leaf_flat = model.feature.ravel(), model.threshold.ravel(), model.leaf.ravel()
    flat_x = xx.ravel()
    row_base = (np.arange(n_rows, dtype=np.int64) * n_feat)[:, None]
    node = np.zeros((n_rows, n_trees), dtype=np.int64)
    for _ in range(model.depth):
        g = tree_base + node
        right = flat_x.take(row_base + feat_flat.take(g)) > thr_flat.take(g)
        node = 2 * node + 1 + right
    leaves = leaf_flat.take(node + leaf_base)
    scores = np.zeros((n_rows, 5))
    for t in range(n_trees):  # the leaves added tree after tree, as a plain walk does
        scores[:, model.class_of_tree[t]] += leaves[:, t]
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- live stager
def _rows_of(tiles: FloatArray, rows: int) -> FloatArray:
    """Row-major copy (rows, n) of state kept in tiles (n_tiles, n, WIDTH)."""
    return np.ascontiguousarray(np.swapaxes(tiles, 1, 2).reshape(-1, tiles.shape[1])[:rows])


def _set_rows(tiles: FloatArray, values: FloatArray) -> None:
    """Write row-major ``values`` (rows, n) into state kept in tiles (n_tiles, n, WIDTH)."""
    flat = np.zeros((tiles.shape[0] * WIDTH, tiles.shape[1]))
    flat[: values.shape[0]] = values
    tiles[...] = np.swapaxes(flat.reshape(tiles.shape[0], WIDTH, -1), 1, 2)


def model_inputs(
    raw: FloatArray,
    bad: npt.NDArray[np.bool_],
    hist_sums: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    center: FloatArray,
    spread: FloatArray,
    times: FloatArray,
    cols: npt.NDArray[np.int64],
) -> tuple[FloatArray, npt.NDArray[np.float32]]:
    """Smoothed features (s, 2, f) and the model's input (s, len(cols)) float32, NaN as 0.

    The trailing half of YASA's triangular window and the 2-min past mean skip NaN (artefact or
    unseen epochs); the completed epochs' sums (``hist_sums``) are shared by all updates of an
    epoch. The smoothed features are scaled by the running robust scaling; the model's columns
    are taken from [raw, c7 norms, p2 norms, time_hour, time_norm]. The numpy version of
    :func:`~nexus.staging._kernels.model_input_kernel`.
    """
    ok = np.isfinite(raw) & ~bad[:, None]
    x0 = np.where(ok, raw, 0.0)
    c7_num, c7_den, p2_num, p2_den = hist_sums
    with np.errstate(invalid="ignore", divide="ignore"):
        c7 = (c7_num + x0) / (c7_den + ok)
        p2 = (p2_num + x0) / (p2_den + ok)
    smooth = np.stack([c7, p2], axis=1)  # (s, 2, f)
    with np.errstate(invalid="ignore"):
        norm = (smooth - np.where(np.isnan(center), smooth, center)) / spread
    s = raw.shape[0]
    table = np.concatenate([raw, norm.reshape(s, -1), np.broadcast_to(times, (s, 2))], axis=1)
    with np.errstate(over="ignore"):
        x = table[:, cols].astype(np.float32)
    return smooth, np.where(np.isnan(x), np.float32(0.0), x)


def window_features(self: BlockStatistics, ints: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """:func:`~nexus.staging._kernels.window_features_kernel` with array operations: (s, c, 21), NaN flags."""
    st = self._stats  # (s, c, 6, n_stats); NaN for blocks not seen yet
    have = np.isfinite(st[..., 0])
    tot = np.where(have[..., None], st, 0.0).sum(axis=2)
    n = have.sum(axis=2) * float(_BLOCK)  # (s, c)
    bad = (tot[..., _S_NAN] > 0).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = tot[..., 0] / n
        e2, e3, e4 = tot[..., 1] / n, tot[..., 2] / n, tot[..., 3] / n
        m2 = e2 - mean**2
        m3 = e3 - 3 * mean * e2 + 2 * mean**3
        m4 = e4 - 4 * mean * e3 + 6 * mean**2 * e2 - 3 * mean**4
        m2 = np.maximum(m2, 0.0)
        feats: dict[str, FloatArray] = {}
        feats["std"] = np.sqrt(m2 * n / (n - 1))
        q = np.where(have[..., None], st[..., _S_Q], 0.0).sum(axis=2) / have.sum(axis=2)[..., None]
        feats["iqr"] = q[..., 1] - q[..., 0]
        feats["skew"] = m3 / m2**1.5
        feats["kurt"] = m4 / m2**2 - 3.0
        feats["nzc"] = tot[..., _S_NZC] * (n - 1) / n
        var_dx = tot[..., 5] / n - (tot[..., 4] / n) ** 2
        var_ddx = tot[..., 7] / n - (tot[..., 6] / n) ** 2
        mob = np.sqrt(var_dx / m2)
        feats["hmob"] = mob
        feats["hcomp"] = np.sqrt(var_ddx / var_dx) / mob
        total = ints[..., 0]
        for i, (_lo, _hi, name) in enumerate(F.BANDS):
            feats[name] = ints[..., 1 + i] / total
        delta = feats["sdelta"] + feats["fdelta"]
        feats["dt"] = delta / feats["theta"]
        feats["ds"] = delta / feats["sigma"]
        feats["db"] = delta / feats["beta"]
        feats["at"] = feats["alpha"] / feats["theta"]
        feats["abspow"] = ints[..., -1]
        counts = tot[..., _S_PERM]
        pp = counts / counts.sum(axis=-1, keepdims=True)
        h = -np.where(pp > 0, pp * np.log2(np.where(pp > 0, pp, 1.0)), 0.0).sum(axis=-1)
        feats["perm"] = np.clip(h / np.log2(6.0), 0.0, 1.0)
        # Higuchi: L(k) = mean over the k offsets m of S_km (N−1) / (k · n_pairs) / k, with
        # n_pairs ≈ N / k for every offset, i.e. (Σ_m S_km) (N−1) / (k · n_pairs) / k²
        n_pairs = np.maximum(n[..., None] / _HK, 1.0)
        mean_l = tot[..., _S_HIG] * ((n[..., None] - 1) / (_HK * n_pairs)) / (_HK * _HK)
        logl = np.log(np.where(mean_l > 0, mean_l, np.nan))
        lx = np.log(1.0 / np.arange(1, _KMAX + 1))
        feats["higuchi"] = (_KMAX * (logl * lx).sum(-1) - lx.sum() * logl.sum(-1)) / (
            _KMAX * (lx**2).sum() - lx.sum() ** 2 + 1e-9
        )
        nn = np.where(n > 0, n, np.nan)
        feats["petrosian"] = np.log10(nn) / (np.log10(nn) + np.log10(nn / (nn + 0.4 * tot[..., _S_NZCD])))
    return np.stack([feats[name] for name in WINDOW_FEATURES], axis=-1), bad


def band_integrals(self: BlockStatistics) -> FloatArray:
    """Band integrals (s, c, 8) of a stager's PSD ring: numpy median and Simpson/trapezoid weights."""
    s, c = self._psd.shape[:2]
    n_seg = min(self._n_seg, _N_SEG)
    if n_seg < _N_SEG:
        med = np.median(self._psd[:, :, :n_seg], axis=2).reshape(s * c, _N_BINS)
    else:
        med = np.partition(self._psd, _N_SEG // 2, axis=2)[:, :, _N_SEG // 2].reshape(s * c, _N_BINS)
    out = np.einsum("rb,ib->ri", med[:, 2:].astype(np.float64), _band_weights()) / _median_bias(n_seg)
    return out.reshape(s, c, -1)


class ReferenceFrontEnd(FilterFrontEnd):
    """The filter front-end with scipy's low-pass and a cumulative-sum high-pass instead of the filter-chain kernel."""

    def _filter(self, x, pos, out):
        """Low-pass (scipy), interpolation and high-pass (cumulative sums) of the new samples into ``out``."""
        missing = ~np.isfinite(x)
        n_missing = int(missing.sum())
        x = np.where(missing, 0.0, x)
        out[...] = self._filter_numpy(x[:, self._rows].astype(np.float64), pos).reshape(out.shape)
        return n_missing

    def _filter_numpy(self, x: FloatArray, pos: FloatArray) -> FloatArray:
        """The filter chain of :func:`~nexus.staging._kernels.filter_chain` with scipy and numpy."""
        y, zf = signal.sosfilt(self._lp, x, axis=-1, zi=np.moveaxis(self._lp_zi, 2, 0))
        self._lp_zi = np.ascontiguousarray(np.moveaxis(zf, 0, 2))
        n = y.shape[-1]
        if self._resample:
            ext = np.concatenate([self._prev[:, :, None], y], axis=-1)  # index 0 = previous sample
            i0 = np.floor(pos).astype(np.int64)
            frac = pos - i0
            y_rs = ext[:, :, i0 + 1] * (1.0 - frac) + ext[:, :, np.minimum(i0 + 2, n)] * frac
        else:
            y_rs = y
        self._prev = y[:, :, -1].copy()
        if y_rs.shape[-1] == 0:
            return y_rs
        return self._highpass(y_rs)

    def _highpass(self, y: FloatArray) -> FloatArray:
        """Linear-phase high-pass: ``y[n − D]`` minus a triple moving average of ``y``, carried across blocks."""
        n = y.shape[-1]
        s, c = y.shape[:2]
        delayed = np.concatenate([_rows_of(self._delay_tail, s * c).reshape(s, c, -1), y], axis=-1)
        _set_rows(self._delay_tail, delayed[..., -_HP_DELAY:].reshape(s * c, -1))
        z = y
        for i in range(3):
            zz = np.concatenate([_rows_of(self._ma_tails[:, i], s * c).reshape(s, c, -1), z], axis=-1)
            _set_rows(self._ma_tails[:, i], zz[..., -(_MA_LEN - 1) :].reshape(s * c, -1))
            cs = np.cumsum(zz, axis=-1)
            cs = np.concatenate([np.zeros((*cs.shape[:-1], 1)), cs], axis=-1)
            z = (cs[..., _MA_LEN:] - cs[..., :-_MA_LEN]) / _MA_LEN
        return delayed[..., :n] - z


class ReferenceBlocks(BlockStatistics):
    """The block statistics, spectra and window features from array operations instead of the kernels."""

    def _block_stats_and_psd(self, y, at, nan, starts):
        self._y = y
        rows = self._y.shape[0]
        if self._seg.shape[0] != rows:
            self._seg = np.empty((rows, 2, _SEG), dtype=np.float32)
        out = self._block_stats(at, nan, starts)
        self._segment_psd(len(starts))
        return out

    def _block_stats(self, at: int, nan: npt.NDArray[np.bool_], starts: Sequence[int]) -> FloatArray:
        """Sufficient statistics of the 5-s block at column ``at`` (with the 10 samples before it for continuity).

        The windowed Welch segments at ``starts`` are written to ``self._seg`` on the way.
        """
        s, c, n = self.n_sessions, len(self.kinds), _BLOCK
        nan_any = _any(nan, -1)[:, None]
        self._windowed_segments(starts)
        xt = self._y[:, at - _KMAX : at + n].reshape(s, c, n + _KMAX)
        blk = xt[..., _KMAX:]
        out = np.empty((s, c, _N_STATS))
        x2 = blk * blk
        out[..., 0] = blk.sum(-1)
        out[..., 1] = x2.sum(-1)
        out[..., 2] = (x2 * blk).sum(-1)
        out[..., 3] = (x2 * x2).sum(-1)
        dx = np.diff(xt[..., -(n + 2) :], axis=-1)  # n + 1 differences
        ddx = np.diff(dx, axis=-1)  # n
        dxb = dx[..., 1:]
        out[..., 4] = dxb.sum(-1)
        out[..., 5] = (dxb * dxb).sum(-1)
        out[..., 6] = ddx.sum(-1)
        out[..., 7] = (ddx * ddx).sum(-1)
        sb = np.signbit(xt[..., -(n + 1) :])
        out[..., _S_NZC] = np.count_nonzero(sb[..., 1:] != sb[..., :-1], axis=-1)
        sd = np.signbit(dx)
        out[..., _S_NZCD] = np.count_nonzero(sd[..., 1:] != sd[..., :-1], axis=-1)
        a, b, cc = xt[..., -(n + 2) : -2], xt[..., -(n + 1) : -1], xt[..., -n:]
        code = (a <= b).astype(np.int8) * 4 + (a <= cc).astype(np.int8) * 2 + (b <= cc).astype(np.int8)
        for k in range(8):
            out[..., _S_PERM.start + k] = np.count_nonzero(code == k, axis=-1)
        part = np.partition(blk, [124, 125, 374, 375], axis=-1)  # quartiles at 124.75 and 374.25
        out[..., _S_Q.start] = part[..., 124] + 0.75 * (part[..., 125] - part[..., 124])
        out[..., _S_Q.start + 1] = part[..., 374] + 0.25 * (part[..., 375] - part[..., 374])
        # Higuchi: Σ|x[i] − x[i−k]| for i in the block
        for k in range(1, _KMAX + 1):
            out[..., _S_HIG.start + k - 1] = np.abs(blk - xt[..., _KMAX - k : _KMAX - k + n]).sum(-1)
        out[..., _S_NAN] = nan_any
        return out

    def _windowed_segments(self, starts):
        """Mean-removed, Hamming-windowed 5-s segments at ``starts`` into ``self._seg`` (float32)."""
        w = _hamming()
        seg = self._seg[:, : len(starts)]
        for g, a in enumerate(starts):
            v = self._y[:, a : a + _SEG]
            seg[:, g] = (v - v.mean(axis=-1, keepdims=True)) * w

    def _segment_psd(self, n_seg):
        """One-sided Welch-style PSD of the first ``n_seg`` windowed segments, bins 0..30 Hz, into the PSD ring."""
        w = _hamming()
        s, c = self.n_sessions, len(self.kinds)
        scale = np.float32(2.0 / (F.FS * (w * w).sum()))
        slots = (self._n_seg + np.arange(n_seg)) % _N_SEG
        spec = sp_fft.rfft(self._seg[:, :n_seg], axis=-1)
        p = np.square(spec.real[..., :_N_BINS])
        p += np.square(spec.imag[..., :_N_BINS])
        p *= scale
        p[..., 0] /= 2.0
        for g, slot in enumerate(slots):
            self._psd[:, :, slot] = p[:, g].reshape(s, c, _N_BINS)
        self._n_seg += n_seg

    def _features_of_window(self, ints):
        return window_features(self, ints)

    def _band_integrals(self):
        return band_integrals(self)


class ReferenceShard(_Shard):
    """A shard of :class:`~nexus.staging.live.LiveStager` with every compiled kernel replaced by its array form."""

    frontend_class = ReferenceFrontEnd
    blocks_class = ReferenceBlocks

    def _model_input(self, raw, bad, times):
        center, spread = self.scaling.scaling()
        return model_inputs(raw, bad, self.scaling.hist_sums, center, spread, times, self._model_cols)


class ReferenceLiveStager(LiveStager):
    """:class:`~nexus.staging.live.LiveStager` whose shards use the array forms of the kernels."""

    shard_class = ReferenceShard
