"""Run every detector over one recording's arrays and return one event table.

The caller (the CLI, reports) reads the file and picks the channels; this module stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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


def detect_all(ch: Channels, stages: npt.ArrayLike | None = None,
               kinds: tuple[str, ...] = ALL_KINDS) -> tuple[pd.DataFrame, list[str]]:
    """Run the detectors that have their channels; return (events, notes about what was skipped).

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

    frames: list[pd.DataFrame] = []
    notes: list[str] = []
    for name, (x, fs) in ch.eeg.items():
        if "spindle" in kinds:
            frames.append(detect_spindles(x, fs, [name], stages).events)
        if "slow_oscillation" in kinds:
            frames.append(detect_slow_waves(x, fs, [name], stages).events)
    if not ch.eeg and ({"spindle", "slow_oscillation", "arousal"} & set(kinds)):
        notes.append("no EEG channel: spindles, slow oscillations and arousals skipped")
    if "rem" in kinds:
        if ch.loc is not None and ch.roc is not None:
            (n1, a, fa), (n2, b, fb) = ch.loc, ch.roc
            if fa != fb or a.size != b.size:
                raise InvalidInputError(f"EOG channels '{n1}' and '{n2}' differ in rate or length; they must match.")
            frames.append(detect_rems(a, b, fa, stages, channel=f"{n1},{n2}").events)
        else:
            notes.append("fewer than two EOG channels: rapid eye movements skipped")
    if "arousal" in kinds and ch.eeg:
        name, (x, fs) = next(iter(ch.eeg.items()))
        emg = None
        if ch.emg is not None and ch.emg[2] == fs and ch.emg[1].size == x.size:
            emg = ch.emg[1]
        elif ch.emg is not None:
            notes.append(f"EMG '{ch.emg[0]}' has another rate than the EEG: arousals in REM skipped")
        frames.append(detect_arousals(x, fs, stages, emg=emg, channel=name).events)
    if "heart_rate" in kinds:
        if ch.ecg is not None:
            hr = detect_heartbeats(ch.ecg[1], ch.ecg[2], channel=ch.ecg[0])
            frames += [hr.summary(30.0), hr.surges()]
        else:
            notes.append("no ECG channel: heart rate skipped")
    if "movement" in kinds:
        if ch.acc is not None:
            frames.append(detect_movements(ch.acc[0], ch.acc[1]).events)
        else:
            notes.append("no 3-axis accelerometer: movements skipped")
    frames = [f for f in frames if len(f)]
    cols = ["onset", "duration", "description", "channel"]
    if not frames:
        return pd.DataFrame(columns=cols), notes
    df = pd.concat(frames, ignore_index=True, sort=False)
    return df.sort_values(["onset", "description"], kind="stable").reset_index(drop=True), notes
