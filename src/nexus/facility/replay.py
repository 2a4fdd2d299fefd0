"""Known nights through the facility loop: CLAS replays of recordings, and hypnograms to render.

Both are setups of :func:`~nexus.facility.setups.run_loop` with one bed whose signals are a
recording (:class:`~nexus.facility.setups.ArrayFleet`) and whose sink only keeps what it is given:

* :func:`clas_replay` — where a CLAS program would have clicked over a recording, causally, as live
  (stages from the live stager, a hypnogram, or N3 throughout for excerpts).
* :func:`hypnogram_night` — every command a program gives over a hypnogram (and, for clicks, the
  night's EEG), for :class:`~nexus.dreamscape.renderer.Renderer` to turn into sound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.core.stages import EPOCH_S
from nexus.dreamscape.controller import Command
from nexus.dreamscape.presets import default_clas_program
from nexus.dreamscape.schema import Program
from nexus.facility.setups import ArrayFleet, run_loop


@dataclass
class ClasReplay:
    """Pulses a CLAS program would have played over a recording.

    Attributes
    ----------
    onsets : ndarray
        Click onsets in seconds from the recording start.
    phase_pred_deg, envelope_uv : ndarray
        The predicted phase (°) and slow-wave envelope (µV) at each onset, as the controller saw them.
    decisions : list of dict
        Every decision, as journaled.
    stages : str
        Where the stages came from.
    """

    onsets: npt.NDArray[np.float64]
    phase_pred_deg: npt.NDArray[np.float64]
    envelope_uv: npt.NDArray[np.float64]
    decisions: list[dict[str, Any]]
    stages: str


def _bed(eeg: npt.ArrayLike, fs: float, others: dict[str, npt.ArrayLike] | None) -> ArrayFleet:
    x = np.asarray(eeg, dtype=np.float64).ravel()
    rows, names = [x], ["EEG"]
    for name, sig in (others or {}).items():
        y = np.asarray(sig, dtype=np.float64).ravel()
        if y.size != x.size:
            raise InvalidInputError(f"Channel '{name}' has {y.size} samples, the EEG {x.size}: resample it first.")
        rows.append(y)
        names.append(name)
    return ArrayFleet(np.stack(rows)[None], fs, names)


def clas_replay(eeg: npt.ArrayLike, fs: float, *, stages: str = "live", hypnogram: npt.ArrayLike | None = None,
                others: dict[str, npt.ArrayLike] | None = None, program: Program | None = None,
                sound_latency_s: float = 0.05, step_s: float = 0.5) -> ClasReplay:
    """Replay a recording through the facility loop as if it were live; return where CLAS clicked.

    Parameters
    ----------
    eeg : array_like, shape (n_samples,)
        EEG in µV.
    fs : float
        Sampling rate in Hz (≥ 20).
    stages : {"live", "hypnogram", "n3"}
        Live staging (EEG, plus ``others``), a known hypnogram, or N3 throughout (an excerpt).
    hypnogram : array_like of int, optional
        Stage codes per 30-s epoch for ``stages="hypnogram"``.
    others : dict, optional
        More channels for the live stager, named by role (``"EOG ..."``, ``"EMG ..."``), same length.
    program : Program, optional
        A program with a CLAS scene for N3 (default: :func:`~nexus.dreamscape.presets.default_clas_program`).
    sound_latency_s : float
        Latency of the sound path in s (the prediction horizon adds the step).
    step_s : float
        The loop's step in s (the clicks are decided for a live 0.1-s tick whatever the step).
    """
    check_number("fs", fs, ge=20, unit="Hz")
    fleet = _bed(eeg, fs, others)
    duration = fleet.data.shape[-1] / fs
    hyp = None if hypnogram is None else np.atleast_2d(np.asarray(hypnogram, dtype=np.int64))
    run = run_loop(fleet, [program or default_clas_program()], duration, stages=stages, hypnograms=hyp,
                   step_s=step_s, sound_latency_s=sound_latency_s, events=False, arousal=stages != "n3")
    clicks = [d for d in run.decisions[0] if d["description"] == "click" and d["command"] is not None]
    played = {round(c.t, 6) for c in run.commands[0] if c.kind == "click"}
    clicks = [d for d in clicks if round(d["command"]["t"], 6) in played]  # late ones were dropped
    return ClasReplay(np.array([d["command"]["t"] for d in clicks]),
                      np.array([d["inputs"]["phase_deg"] for d in clicks]),
                      np.array([d["inputs"]["envelope_uv"] for d in clicks]), run.decisions[0], stages)


def hypnogram_night(program: Program, stages: npt.ArrayLike, *, epoch_s: float = EPOCH_S,
                    eeg: npt.ArrayLike | None = None, fs: float | None = None) -> tuple[list[Command], float]:
    """Every command ``program`` gives over a night known by its hypnogram (and EEG, for clicks).

    Returns the commands (``t`` in s since lights-out) and the night's length in s. Without EEG the
    loop reads a flat line: no slow wave, so no click.
    """
    st = np.asarray(stages, dtype=np.int64).ravel()
    if epoch_s != EPOCH_S:
        raise InvalidInputError(f"Hypnograms of {epoch_s:g}-s epochs are not supported here; resample to 30 s.")
    duration = st.size * epoch_s
    if eeg is not None:
        if fs is None:
            raise InvalidInputError("Give 'fs' (the EEG sampling rate in Hz) with the EEG.")
        x = np.asarray(eeg, dtype=np.float64).ravel()
        duration = min(duration, x.size / fs)
    else:
        fs = 100.0
        x = np.zeros(round(duration * fs))
    run = run_loop(_bed(x, fs, None), [program], duration, stages="hypnogram", hypnograms=st[None],
                   step_s=1.0, events=False, arousal=False)
    return run.commands[0], duration
