"""Run the controller over a known night: a hypnogram (for rendering) or a recording (CLAS replay).

Both run the same :class:`~nexus.dreamscape.controller.Controller` as a live session, causally, chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.core.stages import EPOCH_S
from nexus.dreamscape.controller import Command, Controller, Decision
from nexus.dreamscape.schema import Clas, Limits, Program, Scene


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


def default_clas_program(clas: Clas | None = None) -> Program:
    """A minimal program that only runs CLAS in N3 (for replays and benchmarks)."""
    return Program(dreamscape=1, name="CLAS only", scenes={"deep": Scene(clas=clas or Clas())},
                   rules={"N3": "deep"}, limits=Limits(max_stim_per_min=60.0))


@dataclass
class ClasReplay:
    """Pulses a CLAS controller would have played over a recording.

    Attributes
    ----------
    onsets : ndarray
        Click onsets in seconds from the recording start.
    phase_pred_deg, envelope_uv : ndarray
        The predicted phase (°) and slow-wave envelope (µV) at each onset, as the controller saw them.
    decisions : list of Decision
    """

    onsets: npt.NDArray[np.float64]
    phase_pred_deg: npt.NDArray[np.float64]
    envelope_uv: npt.NDArray[np.float64]
    decisions: list[Decision]


def clas_replay(eeg: npt.ArrayLike, fs: float, probs: npt.ArrayLike | Callable[[npt.NDArray[np.float64], float],
                npt.ArrayLike], *, program: Program | None = None, latency_s: float | None = None,
                step_s: float = 1.0) -> ClasReplay:
    """Run the CLAS controller causally over one EEG channel, as if it were live.

    Parameters
    ----------
    eeg : array_like, shape (n_samples,)
        EEG in µV.
    fs : float
        Sampling rate in Hz.
    probs : array_like of shape (n_epochs, 5), or callable
        Stage probabilities per 30-s epoch (row ``e`` becomes known at the end of epoch ``e``), or a
        function ``(chunk, t_end) -> (5,) probabilities`` called at every step (a live stager).
    program : Program, optional
        A program with a CLAS scene for N3 (default: :func:`default_clas_program`).
    latency_s : float, optional
        Sample-to-sound latency in s.
    step_s : float
        Chunk length in s (decisions are still per sample).

    Returns
    -------
    ClasReplay
    """
    x = np.asarray(eeg, dtype=float).ravel()
    ctrl = Controller([program or default_clas_program()], fs, latency_s=latency_s)
    table = None if callable(probs) else np.asarray(probs, dtype=float).reshape(-1, 5)
    step = max(1, round(step_s * fs))
    onsets, phases, envs = [], [], []
    for a in range(0, x.size, step):
        chunk = x[a : a + step]
        t1 = (a + chunk.size) / fs
        if table is not None:
            e = min(int(t1 // EPOCH_S) - 1, table.shape[0] - 1)
            p = table[e] if e >= 0 else np.full(5, np.nan)
        else:
            p = np.asarray(probs(chunk, t1), dtype=float)  # type: ignore[operator]
        for c in ctrl.step(t1, eeg=chunk[None, :], probs=p[None, :]):
            if c.kind == "click":
                onsets.append(c.t)
        # the click decisions carry the predicted phase and envelope
    for d in ctrl.decisions:
        if d.kind == "click":
            phases.append(d.inputs["phase_deg"])
            envs.append(d.inputs["envelope_uv"])
    return ClasReplay(np.asarray(onsets), np.asarray(phases), np.asarray(envs), ctrl.decisions)
