"""Compile (or load) every numba kernel of the live loop once, before the first tick.

A numba kernel is compiled on its first call for each new combination of argument types (dtype,
number of dimensions, memory layout: C-contiguous, Fortran-contiguous or strided). A compile takes
from a fraction of a second to seconds and holds the interpreter lock, so one that happens inside a
live tick stalls every bed of the facility; loading a compiled kernel from numba's disk cache takes
milliseconds, but also only on first use. :func:`warm_up` is the one place where this is done: it
runs each computation of the live loop (the clean filter, the live stager with its model, the event
detectors) on a few seconds of noise, with blocks shaped and laid out as the loop shapes them, so
that every kernel is compiled or loaded for every signature it will see. Nothing it builds is kept.

``tests/facility/test_warmup.py`` checks, in a process with an empty numba cache, that after
:func:`warm_up` the live computations compile nothing new; a kernel or layout missing here fails it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.core.log import logger

FloatArray = npt.NDArray[np.float64]

WARM_ROWS: int = 16
"""Sessions of the throwaway lane. Array types depend on the layout, not on the size, once there are
two or more rows; 16 rows also take the row-tiled filter kernels (≥ 8 rows), as a full lane does."""
WARM_S: float = 36.0
"""Seconds of noise: more than one 30-s epoch, so the stager closes one and uses its 11-segment median."""
PIECE_S: float = 5.0
"""Seconds per step (the stager re-estimates every 5 s; each detector evaluates at least once)."""


@dataclass
class _Lane:
    """The throwaway lane the warm-up steps read: blocks as the live loop stacks them."""

    fs: float
    rows: int
    n_channels: int
    block: FloatArray  # (rows, n_channels, samples) float64, C order, as the lane's stacked block
    ephys: tuple[int, ...] = ()  # the rows the clean filter takes (EEG, EOG, EMG, ECG), from the channel names

    def pieces(self, x: FloatArray | None = None) -> list[FloatArray]:
        """``x`` (default: the block) in consecutive pieces of :data:`PIECE_S` seconds (views)."""
        x = self.block if x is None else x
        n = max(1, round(PIECE_S * self.fs))
        return [x[..., a : a + n] for a in range(0, x.shape[-1], n)]


def _clean_filter(lane: _Lane) -> None:
    """The DC high-pass and mains notch, in place on channel rows of the block, state carried."""
    from nexus.dsp.filters import StatefulFilter, highpass_sos, notch_sos

    sos = [highpass_sos(0.3, lane.fs, order=1)]
    if 0.45 * lane.fs > 50.0:
        sos.append(notch_sos(50.0, lane.fs))
    sections = np.vstack(sos)
    c = lane.n_channels
    # the rows a lane filters are a slice of its channels (in place: all of them, one, or a run of
    # them, three memory layouts) or scattered rows (filtered as a copy)
    sels = {(0, c), (0, 1), (0, min(2, c))}
    e = lane.ephys
    if e and e == tuple(range(e[0], e[-1] + 1)):  # the lane's own rows (its row count picks the kernel)
        sels.add((e[0], e[-1] + 1))
    for sel in sorted(sels):
        rows = lane.block[:, sel[0] : sel[1]]
        flt = StatefulFilter(sections, rows.shape[:2], init="step")
        # live ticks (a few samples) and fast-forward steps (a second): the filter picks its kernel by length
        for piece in (lane.block[..., :3], lane.block[..., 3:7], lane.block[..., 7 : 7 + round(lane.fs)]):
            view = piece[:, sel[0] : sel[1]]
            flt.step(view, out=view)
    scattered = [0, c - 1] if c > 1 else [0]
    flt = StatefulFilter(sections, (lane.rows, len(scattered)), init="step")
    flt.step(lane.block[..., :3][:, scattered])


def _live_stager(lane: _Lane) -> None:
    """The live stager (filter chain, block statistics, spectra, median, features, model input, tree walk)."""
    from nexus.staging.live import LiveStager

    x = np.take(lane.block, [0, 0, 0], axis=1)  # the stager's rows, copied as the loop does
    with LiveStager(lane.rows, lane.fs, ("eeg", "eog", "emg"), workers=1) as stager:
        for k, piece in enumerate(lane.pieces(x)):
            stager.push(np.ascontiguousarray(piece) if k % 2 else piece)  # whole blocks and strided pieces of one
            stager.update()


def _masks(lane: _Lane) -> list[npt.NDArray[np.bool_]]:
    """Stage masks a sleep-gated detector sees: every bed in its stages, and a single bed.

    A gated detector evaluates only the beds whose window is in its stages; a few rows take
    other filter kernels than many (:func:`nexus.dsp.longrow.zero_phase_any`), so both are warmed.
    """
    one = np.zeros(lane.rows, dtype=bool)
    one[0] = True
    return [np.ones(lane.rows, dtype=bool), one]


def _row(lane: _Lane, piece: FloatArray) -> FloatArray:
    return piece[:, 0]  # one channel of the block: a strided view when the lane has several


def _slow_waves(lane: _Lane) -> None:
    from nexus.events.slow_waves import SlowWaveStream

    for mask in _masks(lane):
        stream = SlowWaveStream(lane.rows, lane.fs)
        for piece in lane.pieces():
            stream.step(_row(lane, piece), mask)


def _spindles(lane: _Lane) -> None:
    from nexus.events.spindles import SpindleStream

    for mask in _masks(lane):
        stream = SpindleStream(lane.rows, lane.fs)
        for piece in lane.pieces():
            stream.step(_row(lane, piece), mask)


def _rems(lane: _Lane) -> None:
    from nexus.events.rems import REMStream

    # eye movements: LOC and ROC in opposition, ~150 µV at 1 Hz, so that candidate peaks are tested
    t = np.arange(lane.block.shape[-1]) / lane.fs
    eyes = np.repeat(np.stack([150.0 * np.sin(2 * np.pi * t), -150.0 * np.sin(2 * np.pi * t)])[None], lane.rows, 0)
    eyes += lane.block[:, :1]  # and some noise
    for mask in _masks(lane):
        stream = REMStream(lane.rows, lane.fs)
        for piece in lane.pieces(eyes):
            stream.step(np.ascontiguousarray(piece), mask)  # (the stream copies the rows into its window)


def _heart(lane: _Lane) -> None:
    from nexus.events.heart import HeartRateStream

    for mask in _masks(lane):
        stream = HeartRateStream(lane.rows, lane.fs)
        for piece in lane.pieces():
            stream.step(_row(lane, piece), mask)


def _movement(lane: _Lane) -> None:
    from nexus.events.movement import MovementStream

    stream = MovementStream(lane.rows, lane.fs)
    for piece in lane.pieces():
        stream.step(piece[:, [0, 0, 0]])


def _arousals(lane: _Lane) -> None:
    from nexus.events.arousals import ArousalStream

    stream = ArousalStream(lane.rows, lane.fs)
    stages = np.full(lane.rows, 2, dtype=np.int64)
    for k, piece in enumerate(lane.pieces()):
        stream.step(_row(lane, piece), stages, _row(lane, piece) if k % 2 else None)  # with and without EMG


def _monitor(lane: _Lane, channels: Sequence[str]) -> None:
    """The glitch monitor's window sums (every slot, and a gathered subset of slots)."""
    from nexus.monitor.live import GlitchMonitor

    mon = GlitchMonitor(lane.rows, channels, lane.fs)
    t = 0.0
    for k, piece in enumerate(lane.pieces()[:3]):
        t += piece.shape[-1] / lane.fs
        active = np.ones(lane.rows, dtype=bool)
        active[0] = k != 1  # one step with a bed out: its block is a gather of the others
        mon.step(piece, active, t)


def _clas(lane: _Lane) -> None:
    """The CLAS phase predictor and the dreamscape controller's CLAS gates.

    The predictor on live ticks (its compiled pass) and on long chunks (by FFT); the controller on live ticks
    (predictions ahead at decision points, the envelope's hold and running mean).
    """
    from nexus.dreamscape.controller import Controller
    from nexus.dreamscape.presets import default_clas_program
    from nexus.dsp.phase import CausalPhaseEstimator, reference_band

    est = CausalPhaseEstimator(lane.rows, lane.fs, horizon_s=0.1)
    x = _row(lane, lane.block)
    for a, b in ((0, 25), (25, 25 + round(PIECE_S * lane.fs))):
        est.update(x[:, a:b])
    # the calibration's reference band of the pulse windows (9 s), learned once clicks land
    reference_band(x[:2, : round(9.0 * lane.fs) + 1], lane.fs)
    ctrl = Controller([default_clas_program()] * lane.rows, lane.fs, latency_s=0.05, tick_s=0.1)
    n3 = np.tile(np.eye(5)[3], (lane.rows, 1))
    tick = max(1, round(0.1 * lane.fs))
    for k in range(2):
        ctrl.step((k + 1) * tick / lane.fs, eeg=x[:, k * tick : (k + 1) * tick], probs=n3)


def _synthetic(lane: _Lane, channels: Sequence[str]) -> None:
    """The synthetic sleepers' renderer (a source that generates its signals inside the ticks)."""
    from nexus.sources.synthetic.fleet import SyntheticFleet

    fleet = SyntheticFleet("typical_adult", seeds=range(lane.rows), hours=0.05, fs=lane.fs, channels=channels)
    for _ in range(2):
        fleet.next_chunk(round(PIECE_S * lane.fs))


Step = Callable[[_Lane], None]

WARM_STEPS: tuple[tuple[str, str, Step], ...] = (
    ("filter", "filter", _clean_filter),
    ("staging", "staging", _live_stager),
    ("slow_waves", "events", _slow_waves),
    ("spindles", "events", _spindles),
    ("rems", "events", _rems),
    ("arousals", "events", _arousals),
    ("heart", "events", _heart),
    ("movement", "events", _movement),
    ("clas", "filter", _clas),
)
"""The warm-up list: (name, part of the loop, step). One entry per computation of the live loop."""


def warm_up(
    fs: float,
    channels: Sequence[str],
    capacity: int,
    *,
    staging: bool = True,
    events: bool = True,
    synthetic: bool = False,
) -> dict[str, float]:
    """Compile (or load from numba's disk cache) every kernel the live loop will call.

    Call at start-up, before the first tick of a lane with this layout. A second call for the
    same layout in the same process returns at once (its kernels are loaded): a facility with
    many lanes of one layout pays once. The first call takes about a second when numba's disk
    cache holds the kernels, and a few seconds per kernel when it is empty (a fresh install or
    after a code change).

    Parameters
    ----------
    fs : float
        Sampling rate of the lane, in Hz.
    channels : sequence of str
        Channel names of the lane (their number sets the layout of the stacked block).
    capacity : int
        Session slots of the lane (one slot gives other array layouts than several).
    staging, events : bool
        Warm the live stager, the event detectors (as the loop runs them or not).
    synthetic : bool
        Warm the synthetic sleepers' renderer too (when the lane's sources are synthetic: it
        renders their signals inside the ticks).

    Returns
    -------
    dict
        Seconds spent per step of :data:`WARM_STEPS`; steps that do not apply at this
        sampling rate (or were switched off) are left out; empty when this layout was already
        warmed up in this process.
    """
    fs = check_number("fs", fs, gt=0, unit="Hz")
    capacity = int(check_number("capacity", capacity, ge=1))
    n_channels = int(check_number("channels", len(channels), ge=1))
    rows = min(capacity, WARM_ROWS)
    key = (float(fs), n_channels, rows, staging, events, synthetic)
    with _LOCK:
        if key in _DONE:
            return {}
        spent = _warm(fs, channels, rows, n_channels, staging=staging, events=events, synthetic=synthetic)
        _DONE.add(key)
    return spent


def warm_up_synthetic(fs: float, channels: Sequence[str], capacity: int) -> float:
    """Compile (or load) the synthetic sleepers' renderer for a lane that renders them inside its ticks.

    A facility of synthetic beds (``nexus simulate``, a demonstration ``nexus run``) generates their
    signals in the loop; like the loop's own kernels, the renderer's must not compile in a tick. Once
    per layout and process; returns the seconds spent (0 when already done).
    """
    fs = check_number("fs", fs, gt=0, unit="Hz")
    rows = min(int(check_number("capacity", capacity, ge=1)), WARM_ROWS)
    key = (float(fs), len(channels), rows, False, False, True)
    with _LOCK:
        if key in _DONE:
            return 0.0
        t0 = time.perf_counter()
        lane = _Lane(fs, rows, len(channels), np.zeros((rows, len(channels), 1)))
        _synthetic(lane, channels)
        _DONE.add(key)
    return round(time.perf_counter() - t0, 3)


_LOCK = threading.Lock()
_DONE: set[tuple[float, int, int, bool, bool, bool]] = set()
"""Layouts already warmed up in this process (the compiled kernels stay loaded)."""


def _warm(
    fs: float, channels: Sequence[str], rows: int, n_channels: int, *, staging: bool, events: bool, synthetic: bool
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    block = rng.normal(0.0, 20.0, (rows, n_channels, round(WARM_S * fs)))
    from nexus.core.montage import channel_roles

    lane = _Lane(fs, rows, n_channels, block, tuple(channel_roles(channels)["ephys"]))
    wanted = {"filter": True, "staging": staging, "events": events}
    spent: dict[str, float] = {}
    for name, part, step in WARM_STEPS:
        if not wanted[part]:
            continue
        t0 = time.perf_counter()
        try:
            step(lane)
        except InvalidInputError as err:  # the computation does not run at this rate
            logger.debug("warm-up: %s skipped (%s)", name, err)
            continue
        spent[name] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    _monitor(lane, channels)  # the monitor reads the channel names
    spent["monitor"] = round(time.perf_counter() - t0, 3)
    if synthetic:
        t0 = time.perf_counter()
        _synthetic(lane, channels)
        spent["synthetic"] = round(time.perf_counter() - t0, 3)
    logger.info("kernels warmed up in %.1f s: %s", sum(spent.values()), spent)
    return spent
