"""Live (causal) sleep staging, batched across sessions: the stager that joins the parts.

:class:`LiveStager` (the sharding wrapper, with ``close()``), one shard's estimates (``_Shard``), and
:func:`stage_causal` (a recording replayed through the stager). How the estimates are made, part by
part, is told in the package's docstring (:mod:`nexus.staging.live`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number, check_option
from nexus.core.errors import InvalidInputError
from nexus.core.stages import EPOCH_S, Stage
from nexus.staging import _kernels as K
from nexus.staging.live._layout import _BLOCKS_PER_EPOCH, BLOCK_S, FloatArray
from nexus.staging.live.blocks import BlockStatistics
from nexus.staging.live.frontend import FilterFrontEnd
from nexus.staging.live.scaling import RunningScaling, load_prior
from nexus.staging.model import load_model, model_name
from nexus.staging.offline import KINDS, MIN_DURATION_S, MIN_FS, StagingResult

_T = TypeVar("_T")

MIN_SHARD: int = 128
"""Fewest sessions per shard when a :class:`LiveStager` splits its sessions over threads."""


@dataclass(frozen=True)
class LiveEstimate:
    """The latest estimate for every session.

    Attributes
    ----------
    epoch_index : ndarray of int64, shape (n_sessions,)
        Index of the epoch the estimate is for (the epoch in progress, or the one just finished).
    stage : ndarray of int8, shape (n_sessions,)
        Most probable stage (0..4), -1 (artefact) or -2 (not enough data yet).
    probabilities : ndarray, shape (n_sessions, 5)
        Probability of W, N1, N2, N3, R (NaN rows where ``stage`` < 0).
    final : bool
        True when the estimate closes an epoch (its stage is then stored in the hypnogram).
    t : float
        Seconds of data seen since the sessions started.
    """

    epoch_index: npt.NDArray[np.int64]
    stage: npt.NDArray[np.int8]
    probabilities: FloatArray
    final: bool
    t: float

    @property
    def confidence(self) -> FloatArray:
        """Highest probability per session (NaN where there is no estimate)."""
        with np.errstate(invalid="ignore"):
            return np.max(self.probabilities, axis=1)


class _Shard:
    """Causal staging of one shard of sessions: filter front-end, block statistics, running scaling, model.

    Built by :class:`LiveStager` (which checks the arguments); ``row0`` is the index of the
    shard's first session in the whole stager (the rotating refresh of the scaling uses it).
    """

    frontend_class: type[FilterFrontEnd] = FilterFrontEnd
    blocks_class: type[BlockStatistics] = BlockStatistics

    def __init__(
        self,
        n_sessions: int,
        fs: float,
        channels: tuple[str, ...],
        night_s: float,
        prior: Mapping[str, Sequence[float]],
        prior_epochs: float,
        row0: int = 0,
    ) -> None:
        self.n_sessions = n_sessions
        self.night_s = night_s
        self.kinds = tuple(k for k in KINDS if k in channels)
        self.model = load_model(self.kinds, False)
        self.n_blocks = 0
        self.n_epochs = 0
        self._last: LiveEstimate | None = None
        self.frontend = self.frontend_class(n_sessions, fs, self.kinds, [channels.index(k) for k in self.kinds])
        self.blocks = self.blocks_class(n_sessions, self.kinds)
        raw_names = self.blocks.raw_names
        self.scaling = RunningScaling(n_sessions, raw_names, prior, prior_epochs, row0, night_s / EPOCH_S)
        # model columns from [raw, c7 norms, p2 norms, time_hour, time_norm]
        cols = [*raw_names, *(f"{n}_{w}min_norm" for w in ("c7", "p2") for n in raw_names)]
        cols += ["time_hour", "time_norm"]
        self._model_cols = np.array([cols.index(n) for n in self.model.feature_names], dtype=np.int64)
        self._epochs_stage: list[npt.NDArray[np.int8]] = []
        self._epochs_proba: list[FloatArray] = []

    def push(self, x: npt.NDArray[np.floating]) -> None:
        """Filter new samples (sessions, channels, n > 0) into the front-end's buffer."""
        self.frontend.push(x)

    def reset(self, idx: npt.NDArray[np.intp]) -> None:
        """Start the sessions ``idx`` (indices in this shard) afresh."""
        self.frontend.reset(idx)
        self.blocks.reset(idx)
        self.scaling.reset(idx)

    def update(self) -> LiveEstimate:
        """Process every complete 5-s block pushed so far and re-estimate the shard's sessions."""
        est = self._last
        while (block := self.frontend.next_block()) is not None:
            at, nan = block
            self.blocks.add(self.frontend.y, at, nan, self.n_blocks)
            self.n_blocks += 1
            est = self._estimate()
        if est is None:
            s = self.n_sessions
            est = LiveEstimate(
                np.zeros(s, np.int64), np.full(s, Stage.UNS, np.int8), np.full((s, 5), np.nan), False, 0.0
            )
        self._last = est
        return est

    def _estimate(self) -> LiveEstimate:
        raw, bad = self.blocks.window_features()
        final = self.n_blocks % _BLOCKS_PER_EPOCH == 0
        t_start = max(self.n_blocks * BLOCK_S - EPOCH_S, 0.0)
        times = np.array([t_start / 3600.0, min(t_start / self.night_s, 1.0)])
        smooth, x = self._model_input(raw, bad, times)
        proba = self.model.predict_proba(x)
        stage = np.argmax(proba, axis=1).astype(np.int8)
        not_ready = self.n_blocks < 2
        stage[bad] = Stage.ART
        proba[bad] = np.nan
        if not_ready:
            stage[:] = Stage.UNS
            proba[:] = np.nan
        epoch_index = np.full(self.n_sessions, (self.n_blocks - 1) // _BLOCKS_PER_EPOCH, dtype=np.int64)
        if final:
            self._close_epoch(raw, bad, smooth, stage, proba)
        return LiveEstimate(epoch_index, stage, proba, final, self.n_blocks * BLOCK_S)

    def _model_input(
        self, raw: FloatArray, bad: npt.NDArray[np.bool_], times: FloatArray
    ) -> tuple[FloatArray, npt.NDArray[np.float32]]:
        """Smoothed features (s, 2, f) and the model's input (s, n_model) float32 (see ``K.model_inputs``)."""
        center, spread = self.scaling.scaling()
        smooth = np.empty((self.n_sessions, 2, raw.shape[1]))
        x = np.empty((self.n_sessions, self._model_cols.size), dtype=np.float32)
        K.model_inputs(raw, bad, *self.scaling.hist_sums, center, spread, times, self._model_cols, smooth, x)
        return smooth, x

    def _close_epoch(
        self,
        raw: FloatArray,
        bad: npt.NDArray[np.bool_],
        smooth: FloatArray,
        stage: npt.NDArray[np.int8],
        proba: FloatArray,
    ) -> None:
        self.n_epochs += 1
        self.scaling.close_epoch(raw, bad, smooth, self.n_epochs)
        self._epochs_stage.append(stage.copy())
        self._epochs_proba.append(proba.copy())

    def hypnogram(self) -> tuple[npt.NDArray[np.int8], FloatArray]:
        """Final stages (s, epochs) and probabilities (s, epochs, 5) of the shard's finished epochs."""
        if not self._epochs_stage:
            return np.zeros((self.n_sessions, 0), np.int8), np.zeros((self.n_sessions, 0, 5))
        return np.stack(self._epochs_stage, axis=1), np.stack(self._epochs_proba, axis=1)


class LiveStager:
    """Causal sleep staging for many sessions at once (leading axis = session).

    Parameters
    ----------
    n_sessions : int
        Number of sessions staged together.
    fs : float
        Sampling rate of the pushed blocks in Hz (> 80 Hz).
    channels : sequence of str
        Kind of each channel row in the blocks: ``"eeg"`` (required), ``"eog"``, ``"emg"``.
    night_hours : float
        Expected length of the night in hours (for the ``time_norm`` feature, and for the weight of
        the prior, which stands in for the part of the night not seen yet).
    prior : mapping, optional
        Population quantiles (5, 50, 95 %) of the smoothed features, keyed ``"<feature>_c7"`` and
        ``"<feature>_p2"``; default: the packaged ``live_prior.json``; ``{}`` for none.
    prior_epochs : float
        How many epochs of the session's own history the prior is worth.
    workers : int, optional
        Threads that share the work: the sessions are split into this many shards (at least
        :data:`MIN_SHARD` sessions each) staged side by side; every filter, kernel and tree walk
        releases the GIL. Default: one per CPU core. Results do not depend on it.

    Examples
    --------
    >>> st = LiveStager(1000, fs=256.0)                       # doctest: +SKIP
    >>> st.push(block)            # (1000, 3, n) in µV          # doctest: +SKIP
    >>> est = st.update()         # every 5 s                  # doctest: +SKIP
    >>> est.stage, est.probabilities                            # doctest: +SKIP
    """

    shard_class: type[_Shard] = _Shard
    """The class of the shards (the tests swap in the array forms of the kernels)."""

    def __init__(
        self,
        n_sessions: int,
        fs: float,
        channels: Sequence[str] = ("eeg", "eog", "emg"),
        *,
        night_hours: float = 8.0,
        prior: Mapping[str, Sequence[float]] | None = None,
        prior_epochs: float = 60.0,
        workers: int | None = None,
    ) -> None:
        self.n_sessions = int(check_number("n_sessions", n_sessions, ge=1))
        n_workers = int(check_number("workers", (os.cpu_count() or 1) if workers is None else workers, ge=1))
        self.fs = check_number("fs", fs, gt=MIN_FS, unit="Hz")
        self.channels = tuple(check_option("channel kind", c, KINDS) for c in channels)
        if "eeg" not in self.channels or len(set(self.channels)) != len(self.channels):
            raise InvalidInputError(
                f"Invalid channels {self.channels}: expected one 'eeg' and optionally one 'eog' and one 'emg'."
            )
        night_s = check_number("night_hours", night_hours, gt=0, unit="h") * 3600.0
        prior_epochs = check_number("prior_epochs", prior_epochs, ge=0)
        self.kinds = tuple(k for k in KINDS if k in self.channels)
        self.model_name = model_name(self.kinds)
        prior = load_prior() if prior is None else prior
        # the sessions are staged in shards of at least MIN_SHARD, side by side on threads
        n_shards = max(1, min(n_workers, self.n_sessions // MIN_SHARD))
        edges = np.linspace(0, self.n_sessions, n_shards + 1).round().astype(int)
        self._slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
        self._shards = [
            self.shard_class(sl.stop - sl.start, self.fs, self.channels, night_s, prior, prior_epochs, sl.start)
            for sl in self._slices
        ]
        self.model = self._shards[0].model
        self._pool: ThreadPoolExecutor | None = None
        if n_shards > 1:
            self._pool = ThreadPoolExecutor(max_workers=n_shards, thread_name_prefix="nexus-stager")
        self._last: LiveEstimate | None = None

    @property
    def n_blocks(self) -> int:
        """5-s blocks processed since the start."""
        return self._shards[0].n_blocks

    @property
    def n_epochs(self) -> int:
        """Epochs closed since the start."""
        return self._shards[0].n_epochs

    def _each(self, work: Callable[[int], _T]) -> list[_T]:
        """``work(i)`` for every shard ``i``: on the pool when there are several."""
        if self._pool is None:
            return [work(i) for i in range(len(self._shards))]
        return list(self._pool.map(work, range(len(self._shards))))

    # ------------------------------------------------------------------ input
    def push(self, block: npt.ArrayLike) -> None:
        """Add new samples for every session.

        Parameters
        ----------
        block : ndarray, shape (n_sessions, n_channels, n_samples)
            New samples in µV at :attr:`fs`, channels in :attr:`channels` order. NaN marks missing
            samples (the epochs they fall in are scored as artefact).
        """
        x = np.asarray(block)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        if x.ndim != 3 or x.shape[0] != self.n_sessions or x.shape[1] != len(self.channels):
            raise InvalidInputError(
                f"Invalid block shape {x.shape}: expected ({self.n_sessions}, {len(self.channels)}, n_samples)."
            )
        if x.shape[2] == 0:
            return
        if len(self._shards) == 1:
            self._shards[0].push(x)
        else:
            self._each(lambda i: self._shards[i].push(x[self._slices[i]]))

    def reset(self, sessions: npt.ArrayLike) -> None:
        """Start some sessions afresh (a new sleeper in the slot): nothing of their past is kept.

        Their filters restart at the next pushed sample, and their estimates are artefact (-1)
        until 30 s of new data have been seen; the other sessions are untouched. Epochs still
        follow the stager's clock.

        Parameters
        ----------
        sessions : array-like of int or bool
            Indices (or a mask) of the sessions to reset.
        """
        idx = np.arange(self.n_sessions)[np.asarray(sessions)]
        for shard, sl in zip(self._shards, self._slices, strict=True):
            mine = idx[(idx >= sl.start) & (idx < sl.stop)] - sl.start
            if mine.size:
                shard.reset(mine)

    # ------------------------------------------------------------------ estimate
    def update(self) -> LiveEstimate:
        """Process every complete 5-s block pushed so far and re-estimate all sessions.

        Returns
        -------
        LiveEstimate
            For the epoch in progress (or just finished). When several blocks were pending, the
            epochs they closed are stored in the hypnogram on the way.
        """
        parts = self._each(lambda i: self._shards[i].update())
        if len(parts) == 1:
            self._last = parts[0]
        else:
            self._last = LiveEstimate(
                np.concatenate([p.epoch_index for p in parts]),
                np.concatenate([p.stage for p in parts]),
                np.concatenate([p.probabilities for p in parts]),
                parts[0].final,
                parts[0].t,
            )
        return self._last

    # ------------------------------------------------------------------ results
    def hypnogram(self) -> tuple[npt.NDArray[np.int8], FloatArray]:
        """Final stages and probabilities of the finished epochs.

        Returns
        -------
        stages : ndarray of int8, shape (n_sessions, n_epochs)
        probabilities : ndarray, shape (n_sessions, n_epochs, 5)
        """
        parts = [sh.hypnogram() for sh in self._shards]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    # ------------------------------------------------------------------ life cycle
    def close(self) -> None:
        """Stop the shards' worker threads (idempotent).

        A stager used after it was closed runs its shards one after the other on the calling thread.
        """
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> LiveStager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stage_causal(
    signals: Mapping[str, npt.ArrayLike], fs: float | Mapping[str, float], *, block_s: float = BLOCK_S
) -> StagingResult:
    """Stage a recording causally, as :class:`LiveStager` would have done live.

    Parameters
    ----------
    signals : mapping kind → 1-D array
        ``"eeg"`` (required), ``"eog"``, ``"emg"``, in µV. All kinds must share one sampling rate.
    fs : float or mapping kind → float
        Sampling rate(s) in Hz.
    block_s : float
        Seconds of data pushed per update.

    Returns
    -------
    StagingResult
        One stage per complete epoch (the final live estimate of each epoch).
    """
    kinds = tuple(k for k in KINDS if k in signals)
    if "eeg" not in kinds:
        raise InvalidInputError("Sleep staging needs an EEG signal; none was given.")
    rates = {float(fs[k] if isinstance(fs, Mapping) else fs) for k in kinds}
    if len(rates) != 1:
        raise InvalidInputError(
            f"Live staging needs one sampling rate for all channels, got {sorted(rates)} Hz; resample first."
        )
    rate = rates.pop()
    data = np.stack([np.asarray(signals[k], dtype=np.float64) for k in kinds])
    if data.shape[-1] / rate < MIN_DURATION_S:
        raise InvalidInputError(
            f"Recording too short to stage: {data.shape[-1] / rate / 60:.1f} min, expected at least 5 min."
        )
    with LiveStager(1, rate, kinds) as st:
        step = max(round(block_s * rate), 1)
        for i in range(0, data.shape[-1], step):
            st.push(data[None, :, i : i + step])
            st.update()
        stages, proba = st.hypnogram()
    return StagingResult(
        stages=stages[0],
        probabilities=proba[0],
        confidence=np.max(proba[0], axis=1),
        model=f"{st.model_name} (live)",
    )
