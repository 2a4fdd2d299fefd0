"""IIR filters for whole recordings: a few long rows, several filters in one pass, no copies.

:func:`scipy.signal.sosfiltfilt` on a night copies it about six times (odd extension, a copy
inside each :func:`~scipy.signal.sosfilt`, the reversals and the final slice) around two
recursions; the compiled kernels of :mod:`nexus.dsp._biquad` filter many short rows side by side
and waste their width on one long row. Here each *lane* (an input row through one filter) is run
sample after sample with all its sections, as scipy does, with the lanes side by side in the same
loop so that their independent recursions overlap in the CPU (e.g. the broadband and sigma
filters of one EEG, or the two EOG channels). The forward pass writes the output and the backward
pass overwrites it in place (only the paddings have their own small buffers): a night's scratch is
its output alone. Same operations in the same order as scipy (no fast-math): the results are
bit-identical to :func:`scipy.signal.sosfiltfilt` (odd padding) and :func:`scipy.signal.sosfilt`
from a zero state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError
from nexus.dsp._jit import kernel
from nexus.dsp.filters import MAX_SAMPLES, MIN_ROWS, _zi_unit, zero_phase

FloatArray = npt.NDArray[np.float64]

__all__ = ["causal_long", "causal_stretches", "zero_phase_any", "zero_phase_long"]


@kernel
def _filtfilt_lanes(x, row_of, sos, zi_unit, padlen, out):
    """Forward-backward filter of ``x[row_of[t]]`` by ``sos[t]`` into ``out[t]``, for every lane ``t``.

    ``x`` (rows, n) float64, ``row_of`` (lanes,) int, ``sos`` (lanes, sections, 6), ``zi_unit``
    (lanes, sections, 2) = ``sosfilt_zi`` of each lane's filter, ``padlen < n``; ``out`` (lanes, n).
    Equal to ``scipy.signal.sosfiltfilt(sos[t], x[row_of[t]], padtype="odd", padlen=padlen)``.
    The forward pass is written into ``out`` (only the two paddings have their own small buffers)
    and the backward pass overwrites it in place: no night-long scratch besides the output.
    """
    lanes = row_of.size
    nsec = sos.shape[1]
    n = x.shape[1]
    ne = n + 2 * padlen
    head = np.empty((padlen, lanes))  # odd extension at both ends, then their forward pass
    tail = np.empty((padlen, lanes))
    z0 = np.empty((nsec, lanes))
    z1 = np.empty((nsec, lanes))
    for t in range(lanes):
        r = row_of[t]
        first, last = x[r, 0], x[r, n - 1]
        for k in range(padlen):
            head[k, t] = 2.0 * first - x[r, padlen - k]
            tail[k, t] = 2.0 * last - x[r, n - 2 - k]
        v0 = head[0, t] if padlen > 0 else first
        for s in range(nsec):
            z0[s, t] = zi_unit[t, s, 0] * v0
            z1[s, t] = zi_unit[t, s, 1] * v0
    for j in range(ne):  # forward: the lanes of one sample side by side, their recursions overlap
        for t in range(lanes):
            if j < padlen:
                v = head[j, t]
            elif j < padlen + n:
                v = x[row_of[t], j - padlen]
            else:
                v = tail[j - padlen - n, t]
            for s in range(nsec):  # scipy's recursion (transposed direct form II), same order
                y = sos[t, s, 0] * v + z0[s, t]
                z0[s, t] = sos[t, s, 1] * v - sos[t, s, 4] * y + z1[s, t]
                z1[s, t] = sos[t, s, 2] * v - sos[t, s, 5] * y
                v = y
            if j < padlen:
                head[j, t] = v
            elif j < padlen + n:
                out[t, j - padlen] = v
            else:
                tail[j - padlen - n, t] = v
    for t in range(lanes):
        v0 = tail[padlen - 1, t] if padlen > 0 else out[t, n - 1]
        for s in range(nsec):
            z0[s, t] = zi_unit[t, s, 0] * v0
            z1[s, t] = zi_unit[t, s, 1] * v0
    for j in range(ne - 1, padlen - 1, -1):  # the backward pass over the left padding is never used
        for t in range(lanes):
            v = tail[j - padlen - n, t] if j >= padlen + n else out[t, j - padlen]
            for s in range(nsec):
                y = sos[t, s, 0] * v + z0[s, t]
                z0[s, t] = sos[t, s, 1] * v - sos[t, s, 4] * y + z1[s, t]
                z1[s, t] = sos[t, s, 2] * v - sos[t, s, 5] * y
                v = y
            if j < padlen + n:
                out[t, j - padlen] = v


@kernel
def _sosfilt_lanes(x, row_of, sos, z0_in, z1_in, out):
    """Causal filter of ``x[row_of[t]]`` by ``sos[t]`` into ``out[t]``, for every lane, from and into the state.

    Shapes as in :func:`_filtfilt_lanes`; ``z0_in``, ``z1_in`` (sections, lanes) hold the state,
    updated in place (zeros: ``scipy.signal.sosfilt(sos[t], x[row_of[t]])``; a stretch continues
    the previous one).
    """
    lanes = row_of.size
    nsec = sos.shape[1]
    n = x.shape[1]
    z0 = z0_in.copy()  # private copies: the compiler keeps them apart from the rows it reads and writes
    z1 = z1_in.copy()
    for j in range(n):
        for t in range(lanes):
            v = x[row_of[t], j]
            for s in range(nsec):
                y = sos[t, s, 0] * v + z0[s, t]
                z0[s, t] = sos[t, s, 1] * v - sos[t, s, 4] * y + z1[s, t]
                z1[s, t] = sos[t, s, 2] * v - sos[t, s, 5] * y
                v = y
            out[t, j] = v
    z0_in[:] = z0
    z1_in[:] = z1


def _lanes(x: npt.ArrayLike, filters: Sequence[FloatArray]) -> tuple[FloatArray, FloatArray, npt.NDArray[np.intp]]:
    """Rows (rows, n), stacked sections (lanes, sections, 6) and the input row of every lane."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        raise InvalidInputError("Invalid signal: expected samples along the last axis, got a scalar.")
    sos = [np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in filters]
    if len({s.shape for s in sos}) != 1 or sos[0].ndim != 2 or sos[0].shape[1] != 6:
        raise InvalidInputError(
            f"Invalid filters: expected second-order sections of one shape (n, 6), got {[s.shape for s in sos]}."
        )
    rows = np.ascontiguousarray(a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1]))  # also for 0 samples
    n_rows = rows.shape[0]
    stacked = np.ascontiguousarray(np.repeat(np.stack(sos), n_rows, axis=0))  # lane = filter-major
    row_of = np.tile(np.arange(n_rows), len(sos))
    return rows, stacked, row_of


def _split(out: FloatArray, shape: tuple[int, ...], k: int) -> list[FloatArray]:
    return [o.reshape(shape) for o in np.split(out, k)]


def zero_phase_long(x: npt.ArrayLike, *filters: FloatArray) -> list[FloatArray]:
    """Forward-backward filter ``x`` along its last axis with each filter: one array per filter.

    Parameters
    ----------
    x : array, shape (..., n_samples)
        Signal (any units; the outputs have the same units).
    *filters : ndarray, shape (n_sections, 6)
        Second-order sections, all with the same number of sections.

    Returns
    -------
    list of ndarray
        Bit-identical to :func:`nexus.dsp.filters.zero_phase` (``sosfiltfilt``, odd padding of
        ``3 (2 n_sections + 1)`` samples, fewer for short signals) for each filter.
    """
    rows, sos, row_of = _lanes(x, filters)
    shape = np.shape(x)
    n = rows.shape[1]
    if n == 0:
        return [np.zeros(shape) for _ in filters]
    padlen = min(3 * (2 * sos.shape[1] + 1), n - 1)
    # one sosfilt_zi per filter (cached by its sections), repeated over its lanes: not one per lane
    n_rows = rows.shape[0]
    zi = np.ascontiguousarray(np.repeat(
        np.stack([_zi_unit(sos[k * n_rows]) for k in range(len(filters))]), n_rows, axis=0
    )) if n_rows else np.zeros((0, sos.shape[1], 2))
    out = np.empty((row_of.size, n))
    _filtfilt_lanes(rows, row_of, sos, zi, padlen, out)
    return _split(out, shape, len(filters))


def causal_long(x: npt.ArrayLike, *filters: FloatArray) -> list[FloatArray]:
    """Causal filter of ``x`` along its last axis from a zero state with each filter: one array per filter.

    Bit-identical to ``scipy.signal.sosfilt(sos, x)`` and to a zero-state
    :class:`~nexus.dsp.filters.StatefulFilter` fed the whole signal. Units are those of ``x``.
    """
    rows, sos, row_of = _lanes(x, filters)
    out = np.empty((row_of.size, rows.shape[1]))
    z = np.zeros((2, sos.shape[1], row_of.size))
    _sosfilt_lanes(rows, row_of, sos, z[0], z[1], out)
    return _split(out, np.shape(x), len(filters))


def causal_stretches(x: npt.ArrayLike, *filters: FloatArray, stretch: int,
                     stop: int | None = None) -> Iterator[tuple[int, list[FloatArray]]]:
    """:func:`causal_long` of ``x[..., :stop]``, ``stretch`` samples at a time: ``(start, outputs)`` per stretch.

    The filters' state runs on from one stretch to the next, so the pieces are bit-identical to
    the whole night's outputs, without night-long arrays (the caller reduces each stretch).
    """
    rows, sos, row_of = _lanes(x, filters)
    n = rows.shape[1] if stop is None else min(stop, rows.shape[1])
    lead = np.shape(x)[:-1]
    z = np.zeros((2, sos.shape[1], row_of.size))
    for a in range(0, n, max(1, stretch)):
        b = min(a + max(1, stretch), n)
        out = np.empty((row_of.size, b - a))
        _sosfilt_lanes(np.ascontiguousarray(rows[:, a:b]), row_of, sos, z[0], z[1], out)
        yield a, _split(out, (*lead, b - a), len(filters))


def zero_phase_any(x: npt.ArrayLike, *filters: FloatArray) -> list[FloatArray]:
    """:func:`~nexus.dsp.filters.zero_phase` of ``x`` with each filter, by the faster kernel for its shape.

    Many short rows (live windows) go to the tiled kernels of :func:`~nexus.dsp.filters.zero_phase`,
    a few long rows (whole nights) to :func:`zero_phase_long`, which runs the filters together
    when they have the same number of sections. Bit-identical either way.
    """
    a = np.asarray(x, dtype=np.float64)  # pragma: no mutate (both routes convert to float64 alike)
    if a.ndim == 0:
        raise InvalidInputError("Invalid signal: expected samples along the last axis, got a scalar.")
    n = a.shape[-1]
    if n < 2 or (a.size // n >= MIN_ROWS and n <= MAX_SAMPLES):
        return [zero_phase(a, s) for s in filters]
    if len({np.shape(s) for s in filters}) == 1:
        return zero_phase_long(a, *filters)
    return [zero_phase_long(a, s)[0] for s in filters]
