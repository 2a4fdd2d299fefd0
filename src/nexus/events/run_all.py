"""Run every detector over one recording's arrays and return one event table.

The caller (the CLI, reports) reads the file and picks the channels; this module stays pure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ALL_KINDS", "Channels", "detect_all"]

ALL_KINDS: tuple[str, ...] = ("spindle", "slow_oscillation", "rem", "arousal", "heart_rate", "movement")


@dataclass
class Channels:
    """Signals handed to :func:`detect_all`: name → (samples, fs in Hz). EEG/EOG/EMG/ECG in µV, Acc in milli-g."""

    eeg: dict[str, tuple[npt.NDArray[np.float64], float]] = field(default_factory=dict)
    loc: tuple[str, npt.NDArray[np.float64], float] | None = None
    roc: tuple[str, npt.NDArray[np.float64], float] | None = None
    emg: tuple[str, npt.NDArray[np.float64], float] | None = None
    ecg: tuple[str, npt.NDArray[np.float64], float] | None = None
    acc: tuple[npt.NDArray[np.float64], float] | None = None  # (3, n_samples)


def _job(detector: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], list[pd.DataFrame]]:
    """A job that runs one detector and returns its event table."""
    return lambda: [detector(*args, **kwargs).events]


def _run(jobs: list[Callable[[], list[pd.DataFrame]]], threads: int | None,
         heavy: Sequence[bool] | None = None) -> list[list[pd.DataFrame]]:
    """The jobs' results, in the jobs' order, computed on up to ``threads`` threads.

    Jobs marked ``heavy`` run one at a time (their night-long working sets never side by side):
    the first heavy job starts at once, the light ones fill the other threads, the other heavy
    ones follow as the first ends.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = min(len(jobs), threads if threads is not None else min(cpus, 4))
    if n <= 1:
        return [job() for job in jobs]
    flags = list(heavy) if heavy is not None else [False] * len(jobs)
    heavies = [i for i, h in enumerate(flags) if h]
    order = heavies[:1] + [i for i, h in enumerate(flags) if not h] + heavies[1:]
    one_heavy = threading.Lock()

    def run(i: int) -> list[pd.DataFrame]:
        if not flags[i]:
            return jobs[i]()
        with one_heavy:
            return jobs[i]()

    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="detect") as pool:
        done = dict(zip(order, pool.map(run, order), strict=True))
    return [done[i] for i in range(len(jobs))]


def detect_all(ch: Channels, stages: npt.ArrayLike | None = None,
               kinds: tuple[str, ...] = ALL_KINDS, threads: int | None = None,
               heavy_alone: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Run the detectors that have their channels; return (events, notes about what was skipped).

    The detectors run side by side on ``threads`` threads (default: one per CPU this process may use,
    at most 4; 1 runs them one after the other); the events are the same either way. With
    ``heavy_alone`` the two with the largest night-long working sets (spindles: filtered signals and
    three moving features, ~5 night-long float64 arrays; REMs: ~4) never run side by side, so the
    peak memory is one of them plus a light detector (a caller that has other work for the idle
    core, as the night report's figures, loses no time by it).

    The events have the columns ``onset``, ``duration``, ``description``, ``channel`` and the union of
    the detectors' own columns (see each detector's Notes); heart rate gives one ``heart_rate`` row
    per 30-s epoch plus ``hr_surge`` events.
    """
    import pandas as pd

    from nexus.events.arousals import detect_arousals
    from nexus.events.heart import detect_heartbeats
    from nexus.events.movement import detect_movements
    from nexus.events.rems import detect_rems
    from nexus.events.slow_waves import detect_slow_waves
    from nexus.events.spindles import detect_spindles

    # each detector is a job; the jobs run side by side on threads (the compiled kernels and NumPy release
    # the GIL), and their tables are joined in this order, so the result does not depend on the threads
    jobs: list[Callable[[], list[pd.DataFrame]]] = []
    heavy: set[int] = set()  # indices of the heavy jobs (spindles, REMs)
    notes: list[str] = []
    for name, (x, fs) in ch.eeg.items():
        if "spindle" in kinds:
            heavy.add(len(jobs))
            jobs.append(_job(detect_spindles, x, fs, [name], stages))
        if "slow_oscillation" in kinds:
            jobs.append(_job(detect_slow_waves, x, fs, [name], stages))
    if not ch.eeg and ({"spindle", "slow_oscillation", "arousal"} & set(kinds)):
        notes.append("no EEG channel: spindles, slow oscillations and arousals skipped")
    if "rem" in kinds:
        if ch.loc is not None and ch.roc is not None:
            (n1, a, fa), (n2, b, fb) = ch.loc, ch.roc
            if fa != fb or a.size != b.size:
                raise InvalidInputError(f"EOG channels '{n1}' and '{n2}' differ in rate or length; they must match.")
            heavy.add(len(jobs))
            jobs.append(_job(detect_rems, a, b, fa, stages, channel=f"{n1},{n2}"))
        else:
            notes.append("fewer than two EOG channels: rapid eye movements skipped")
    if "arousal" in kinds and ch.eeg:
        name, (x, fs) = next(iter(ch.eeg.items()))
        emg = None
        if ch.emg is not None and ch.emg[2] == fs and ch.emg[1].size == x.size:
            emg = ch.emg[1]
        elif ch.emg is not None:
            notes.append(f"EMG '{ch.emg[0]}' has another rate than the EEG: arousals in REM skipped")
        jobs.append(_job(detect_arousals, x, fs, stages, emg=emg, channel=name))
    if "heart_rate" in kinds:
        if ch.ecg is not None:
            ecg = ch.ecg

            def heart() -> list[pd.DataFrame]:
                hr = detect_heartbeats(ecg[1], ecg[2], channel=ecg[0])
                return [hr.summary(30.0), hr.surges()]

            jobs.append(heart)
        else:
            notes.append("no ECG channel: heart rate skipped")
    if "movement" in kinds:
        if ch.acc is not None:
            jobs.append(_job(detect_movements, ch.acc[0], ch.acc[1]))
        else:
            notes.append("no 3-axis accelerometer: movements skipped")
    flags = [i in heavy for i in range(len(jobs))] if heavy_alone else None
    frames = [f for part in _run(jobs, threads, flags) for f in part]
    frames = [f for f in frames if len(f)]
    cols = ["onset", "duration", "description", "channel"]
    if not frames:
        return pd.DataFrame(columns=cols), notes
    df = pd.concat(frames, ignore_index=True, sort=False)  # pragma: no mutate (reset again after the sort)
    return df.sort_values(["onset", "description"], kind="stable").reset_index(drop=True), notes
