"""Run the controller over a known night: a hypnogram (for rendering) or a recording (CLAS replay).

Both run the same :class:`~nexus.dreamscape.controller.Controller` as a live session, causally, chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.core.stages import EPOCH_S
from nexus.dreamscape.controller import Command, Controller, Decision
from nexus.dreamscape.schema import Program


@dataclass
class OfflineRun:
    """Commands and decisions of one session run over a known night."""

    commands: list[Command]
    decisions: list[Decision]
    duration_s: float


def stages_to_probs(stages: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """One-hot stage probabilities (n_epochs, 5) from stage codes; artefact/unscored epochs give NaN rows."""
    st = np.asarray(stages, dtype=int).ravel()
    probs = np.full((st.size, 5), np.nan)
    ok = (st >= 0) & (st <= 4)
    probs[ok] = np.eye(5)[st[ok]]
    return probs


def run_hypnogram(program: Program, stages: npt.ArrayLike, *, epoch_s: float = EPOCH_S, step_s: float = 5.0,
                  eeg: npt.ArrayLike | None = None, fs: float | None = None, latency_s: float | None = None,
                  ) -> OfflineRun:
    """Run one session's controller over a hypnogram (and, for CLAS, its EEG).

    Parameters
    ----------
    program : Program
        A checked program.
    stages : array_like of int
        Stage codes per epoch (the stage is known at the *end* of each epoch, as live).
    epoch_s : float
        Epoch length in seconds.
    step_s : float
        Controller step in seconds.
    eeg : array_like, shape (n_samples,), optional
        EEG in µV for CLAS; without it no click is placed (clicks need the slow-wave phase).
    fs : float, optional
        Sampling rate of ``eeg`` in Hz.
    latency_s : float, optional
        Sample-to-sound latency for CLAS, in s.

    Returns
    -------
    OfflineRun
    """
    check_number("step_s", step_s, gt=0, unit="s")
    probs = stages_to_probs(stages)
    duration = probs.shape[0] * epoch_s
    x = None
    if eeg is not None:
        if fs is None:
            raise InvalidInputError("Give 'fs' (the EEG sampling rate in Hz) with the EEG.")
        x = np.asarray(eeg, dtype=float).ravel()
        duration = min(duration, x.size / fs)
    ctrl = Controller([program], fs if fs is not None else 100.0, latency_s=latency_s)
    cmds: list[Command] = []
    n_steps = int(np.ceil(duration / step_s))
    for k in range(n_steps):
        t1 = min((k + 1) * step_s, duration)
        e = int(t1 // epoch_s) - 1  # the last epoch that has ended by t1
        p = probs[e][None, :] if e >= 0 else np.full((1, 5), np.nan)
        chunk = None
        if x is not None and fs is not None:
            a, b = round(k * step_s * fs), round(t1 * fs)
            chunk = x[None, a:b]
        cmds += ctrl.step(t1, eeg=chunk, probs=p)
    return OfflineRun(cmds, ctrl.decisions, duration)
