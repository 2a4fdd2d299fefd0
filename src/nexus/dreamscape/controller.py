"""The dreamscape controller: a pure state machine per session, batched across sessions.

Each :meth:`Controller.step` takes what the pipeline knows about every running session for one chunk — EEG
samples (for closed-loop stimulation), stage probabilities, arousal / distress / glitch flags — and returns the
:class:`Command` list to send to the sinks. It never reads a clock, a file or a device: time comes in as
numbers, so the same code runs live, in fast-forward and in tests.

Rules, in order of precedence (each decision is logged as a :class:`Decision` with its inputs):

1. **Glitch** (technical/system): silence at once, CLAS and cues stop, the phase estimator is reset; the
   scene resumes when the glitch clears.
2. **Distress**: stop everything at once; only the program's protective response may play (``on_distress``:
   silence or a steady soothing sound) for ``for_min`` minutes.
3. **Arousal** (from sleep; ignored while the stager says W): silence at once for ``on_arousal.silence_for_s``.
4. **Smart wake**: inside the window, wake once the stager has said light sleep (P(W) + P(N1) + P(N2) ≥ 0.8)
   for 60 s without a break (so that N2 on the way into N3 does not count) — 3 min when REM was seen in the 5 min
   before (brief awakenings interrupt REM, and the live stager lags behind them); else at the window's end.
   Everything else stops and the wake ramp plays.
5. **Scenes** follow the stage (``rules``); **cues** repeat inside their scene; **CLAS** runs in its N3 scene:
   a click train starts when the predicted phase (:class:`~nexus.dsp.phase.CausalPhaseEstimator`, predicted
   over the measured latency) crosses the target and the slow wave is large enough; each further click of the
   train waits for the next crossing; then the refractory period. A per-minute stimulus cap and the per-night
   maximum apply on top.

Arrays have the session as leading axis. A running session's program can be replaced with
:meth:`Controller.update_program`: the new text is checked first, and a refused program leaves the session on
its last valid one (the refusal is logged as a decision), so nothing unchecked is ever heard.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.core.log import logger
from nexus.core.stages import STAGE_LABELS
from nexus.dreamscape._kernels import envelope_tick
from nexus.dreamscape.check import CheckReport, check_text
from nexus.dreamscape.schema import SILENCE, Program
from nexus.dsp.phase import CausalPhaseEstimator, TickTrack, target_crossings, wrap_phase

_MIN_CLICK_GAP_S = 0.5  # two clicks are at least one fast (2 Hz) slow-wave cycle apart
_MAX_TRAIN_GAP_S = 2.0  # a train is abandoned when the next up-state does not come within 2 s
_ENV_TAU_S = 60.0  # time constant of the running mean of the slow-wave envelope
_ABSURD_UV = 1e6  # no scalp EEG reaches 1 V: such samples (or NaN/inf) are corrupt; they reset the phase estimator
_ARTEFACT_HOLD_S = 3.0  # no click for this long after the envelope exceeded the physiological maximum
_DOWN_WIN_S = 1.5  # the down-state must have come within this long before the up-state
_LIGHT = (0, 1, 2)  # W, N1, N2: stages a smart wake may happen in
_WAKE_STABLE_S = 60.0  # light sleep must have lasted this long before a smart wake
_WAKE_LIGHT_P = 0.8  # ... with P(W) + P(N1) + P(N2) at least this high all along
_WAKE_AFTER_REM_S = 300.0  # light sleep within this long after REM is often a brief interruption of REM ...
_WAKE_STABLE_AFTER_REM_S = 180.0  # ... so it must last this long
_CLAS_KEYS = ("target", "min_amp", "rel", "snr", "n3", "max_amp", "down")  # a scene's CLAS settings, per row

NATURAL = Program(dreamscape=1, name="natural night (record only)")
"""The stand-in program of a row without one: no scene, no cue, no stimulation, no wake."""


@dataclass(frozen=True)
class Command:
    """Something a sink must do for one session.

    Attributes
    ----------
    session : int
        Row of the session in the controller.
    t : float
        When it takes effect, in seconds on the session clock (a click's exact onset).
    kind : str
        ``"scene"`` (start a scene; ``name``; the previous scene fades out), ``"silence"`` (stop all sound now and
        cancel scheduled clicks; ``for_s`` or None; ``fade`` True when a stage rule asks for silence, so the
        scene fades out instead of stopping), ``"click"`` (``duration_s``, ``level_db``), ``"cue"`` (``scene``,
        ``index``, ``level_db``), ``"protect"`` (``sound``, ``level_db``, ``for_s``), ``"wake"`` (``sound``,
        ``from_db``, ``to_db``, ``over_s``).
    params : dict
        Parameters of the command, as above. Levels are in dBFS.
    """

    session: int
    t: float
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """One logged decision: what was decided, on which inputs, and why.

    Attributes
    ----------
    t : float
        Time of the decision in seconds.
    session : int
        Session row.
    kind : str
        E.g. ``"scene"``, ``"click"``, ``"quiet"``, ``"program_rejected"``.
    command : Command or None
        The command issued, if any.
    inputs : dict
        The values the decision was based on (stage probabilities, phase, envelope, flags, counters).
    reason : str
        Why, in words.
    """

    t: float
    session: int
    kind: str
    command: Command | None
    inputs: dict[str, Any]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        cmd = None if self.command is None else {"t": self.command.t, "kind": self.command.kind,
                                                 **self.command.params}
        return {"t": self.t, "session": self.session, "kind": self.kind, "command": cmd,
                "inputs": self.inputs, "reason": self.reason}


def _rounded_probs(p: npt.NDArray[np.float64]) -> list[dict[str, float]]:
    """Each row of ``p`` (n, 5) as a dict of stage label to probability, to the thousandth (one rounding pass)."""
    return [dict(zip(STAGE_LABELS, row, strict=True)) for row in np.round(p, 3).tolist()]


def _probs_dict(p: npt.NDArray[np.float64]) -> dict[str, float]:
    """:func:`_rounded_probs` of one row."""
    return _rounded_probs(np.asarray(p, dtype=np.float64)[None, :])[0]


class Controller:
    """Batched dreamscape controller for ``len(programs)`` sessions.

    Parameters
    ----------
    programs : sequence of Program or None
        One checked program per session (see :func:`~nexus.dreamscape.check.load_program`); None for a
        natural (record-only) night or a free row, which never hears anything. :meth:`assign` changes a
        row's program (a new session in a facility slot).
    fs : float
        EEG sampling rate in Hz of the chunks given to :meth:`step`.
    latency_s : float, optional
        Measured latency from an EEG sample to the sound at the ear, in s (the CLAS prediction horizon).
        Default: the first program's ``clas.latency_ms`` (50 ms when none has CLAS).
    stimulate : bool
        False runs everything but CLAS (a sham night: the click decisions are logged, no click is issued).
    tick_s : float, optional
        Decide CLAS as a live loop that ticks every ``tick_s`` seconds: at the last sample of each tick the
        phase is predicted over every horizon from ``latency_s`` to ``latency_s + tick_s`` (10-ms steps) and a
        click is placed where the prediction crosses the target, so it is still ahead when the tick has been
        processed. Without it (offline replays), the crossing is sought at every sample with the horizon
        ``latency_s``. The decisions do not depend on how the samples are chunked into calls, except that the
        estimator re-learns its phase bias at chunk ends (clicks then move by a few milliseconds).
    """

    def __init__(self, programs: Sequence[Program | None], fs: float, *, latency_s: float | None = None,
                 stimulate: bool = True, tick_s: float | None = None) -> None:
        if not programs:
            raise InvalidInputError("Give at least one program (one per session).")
        self.fs = check_number("fs", fs, ge=20, unit="Hz")
        self.enabled = np.array([p is not None for p in programs], dtype=bool)
        """Rows that run a program (False: natural night, free row, or a row whose controller failed)."""
        self.failed = np.zeros(len(programs), dtype=bool)
        """Rows whose program raised an error; they stay in the safe state (see :meth:`_isolate`)."""
        self.programs: list[Program] = [NATURAL if p is None else p for p in programs]
        n = len(self.programs)
        self.n_sessions = n
        if latency_s is None:
            latency_s = next((sc.clas.latency_ms / 1000.0 for p in self.programs for sc in p.scenes.values()
                              if sc.clas is not None), 0.05)
        self.latency_s = check_number("latency_s", latency_s, ge=0, le=0.25, unit="s")
        self.stimulate = bool(stimulate)
        self.decisions: list[Decision] = []
        self.tick_s = None if tick_s is None else check_number("tick_s", tick_s, gt=0, le=0.2, unit="s")
        self._ahead_h: npt.NDArray[np.float64] | None = None
        if self.tick_s is None:
            self.phase = CausalPhaseEstimator(n, self.fs, horizon_s=self.latency_s)
        else:
            every = max(1, round(self.tick_s * self.fs))
            k = max(2, round(every / self.fs / 0.01) + 1)  # horizons 10 ms (or one sample) apart
            self._ahead_h = self.latency_s + np.linspace(0.0, every / self.fs, k)
            if self._ahead_h[-1] > 0.25:
                raise InvalidInputError(f"latency_s + tick_s = {self._ahead_h[-1]:.3f} s is beyond the 0.25-s the "
                                        "phase can be predicted; shorten the tick.")
            self.phase = CausalPhaseEstimator(n, self.fs, horizon_s=self.latency_s,
                                              ahead_s=tuple(float(h) for h in self._ahead_h), decide_every=every)
        self._prev_phase = np.zeros(n)
        self._warm_from = np.full(n, self.phase.warmup_s)  # EEG time from which phase estimates are valid
        self._eeg_t = 0.0  # EEG time of the next sample
        self._env_alpha = 1.0 / (_ENV_TAU_S * self.fs)
        self._env_zi = np.zeros(n)  # the running mean's state: (1 - alpha) * its last value
        self._env_n = np.zeros(n)  # samples in the running mean (for its start-up correction) ...
        # ... which is exactly 1.0 from this many samples on
        self._env_settled = float(np.ceil(-60.0 * np.log(2.0) / np.log1p(-self._env_alpha)))
        # state arrays
        self.scene = np.array([SILENCE] * n, dtype=object)
        self._rules = np.array([[p.scene_for(lab) for lab in STAGE_LABELS] for p in self.programs], dtype=object)
        # CLAS settings of each session's current scene (NaN target: the scene has no CLAS)
        self._clas_cfg: list[Any] = [None] * n
        self._has_cues = np.zeros(n, dtype=bool)
        self._win = np.array([p.wake_window_s() or (np.nan, np.nan) for p in self.programs], dtype=float)
        self._pulses: list[tuple[int, float, float]] = []  # clicks of this step: (row, EEG time in s, target rad)
        self._cm = np.full((len(_CLAS_KEYS), n), np.nan)  # one row per setting; self._c names the rows (views)
        self._c = dict(zip(_CLAS_KEYS, self._cm, strict=True))
        # the last predicted SO-band samples (µV) are amp · cos(phase): their envelope and phase are kept, and the
        # band is worked out only where a crossing asks for it (a cosine of every sample of every bed cost ~3 %
        # of a fast-forward step; NumPy's float64 cosine is not vectorised)
        self._band_amp = np.zeros((n, round(_DOWN_WIN_S * self.fs)))
        self._band_phase = np.zeros((n, round(_DOWN_WIN_S * self.fs)))
        # (a live tick's stretch of the band's phase held as the FIR outputs it is the angle of, flagged per column)
        self._band_re, self._band_im = np.zeros_like(self._band_phase), np.zeros_like(self._band_phase)
        self._band_z = np.zeros(self._band_phase.shape[1], dtype=bool)
        self._hold_until = np.full(n, -np.inf)  # EEG time until which an artefact blocks clicks
        self.scene_since = np.zeros(n)
        self.quiet_until = np.full(n, -np.inf)
        self.distress_until = np.full(n, -np.inf)
        self.glitch = np.zeros(n, dtype=bool)
        self.woken = np.zeros(n, dtype=bool)
        self.wake_t = np.full(n, np.nan)
        self.stage = np.full(n, -2, dtype=int)
        self.light_since = np.full(n, np.inf)
        self.last_rem = np.full(n, -np.inf)
        self.clicks_total = np.zeros(n, dtype=int)
        self.train_n = np.zeros(n, dtype=int)
        self.last_click = np.full(n, -np.inf)
        self.next_ok = np.zeros(n)
        self._stim_times: list[list[float]] = [[] for _ in range(n)]
        self._cue_count: list[dict[tuple[str, int], int]] = [{} for _ in range(n)]
        self._cue_last: list[dict[tuple[str, int], float]] = [{} for _ in range(n)]
        self._t_start = np.zeros(n)  # each row's lights-out on this controller's clock (its wake window's origin)

    # ------------------------------------------------------------------ programs
    def assign(self, session: int, program: Program | None, *, t_start: float = 0.0) -> None:
        """Give row ``session`` a new program (None: a natural night) and forget everything about its past.

        Parameters
        ----------
        session : int
            The row (a facility slot).
        program : Program or None
            A checked program, or None for a record-only night.
        t_start : float
            Time of lights-out of the new session on this controller's clock, in s (the wake window is
            counted from it).
        """
        s = int(session)
        prog = NATURAL if program is None else program
        self.programs[s] = prog
        self.enabled[s] = program is not None
        self.failed[s] = False
        self._rules[s] = [prog.scene_for(lab) for lab in STAGE_LABELS]
        win = prog.wake_window_s()
        self._win[s] = (np.nan, np.nan) if win is None else (win[0] + t_start, win[1] + t_start)
        self._t_start[s] = t_start
        self._set_scene(s, SILENCE)
        self.scene_since[s] = t_start
        for arr, v in ((self.quiet_until, -np.inf), (self.distress_until, -np.inf), (self.light_since, np.inf),
                       (self.last_rem, -np.inf), (self.last_click, -np.inf), (self.wake_t, np.nan)):
            arr[s] = v
        self.glitch[s] = self.woken[s] = False
        self.stage[s] = -2
        self.clicks_total[s] = self.train_n[s] = 0
        self.next_ok[s] = 0.0
        self._stim_times[s] = []
        self._cue_count[s] = {}
        self._cue_last[s] = {}
        self.phase.reset([s])
        self._env_zi[s] = 0.0
        self._env_n[s] = 0.0
        self._warm_from[s] = self._eeg_t + self.phase.warmup_s

    def take_decisions(self) -> list[Decision]:
        """The decisions logged since the last call (the caller journals them); the log is emptied."""
        out, self.decisions = self.decisions, []
        return out

    def _isolate(self, s: int, t: float, out: list[Command]) -> _Isolated:
        """Run one row's part of a step (``with``); an error there puts that row (only) in the safe state."""
        return _Isolated(self, s, t, out)

    def _fail_row(self, s: int, t: float, out: list[Command], exc: Exception) -> None:
        """A fault in one row's program: that row (only) goes to the safe state."""
        logger.error("Session %d: the controller failed (%s: %s); the bed goes to the safe state.",
                     s, type(exc).__name__, exc)
        self.enabled[s] = False
        self.failed[s] = True
        self._set_scene(s, SILENCE)
        self._issue(out, t, s, "silence", {"for_s": None}, {"error": f"{type(exc).__name__}: {exc}"},
                    "Controller error for this bed: stop at once, safe state.", "controller_error")

    def update_program(self, session: int, text: str, *, fmt: str = "yaml", base_dir: Path | None = None,
                       t: float = float("nan")) -> CheckReport:
        """Replace a running session's program with ``text`` if, and only if, it passes every check.

        Returns
        -------
        CheckReport
            The check; when it refuses, the session keeps its last valid program and the refusal is logged.
        """
        report = check_text(text, source=f"session {session} update", fmt=fmt, base_dir=base_dir)
        if report.ok and report.program is not None:
            self.programs[session] = report.program
            self._rules[session] = [report.program.scene_for(lab) for lab in STAGE_LABELS]
            win = report.program.wake_window_s()  # after the session's own lights-out, as in assign()
            t0 = self._t_start[session]
            self._win[session] = (np.nan, np.nan) if win is None else (win[0] + t0, win[1] + t0)
            self._log(t, session, "program_updated", None, {"name": report.program.name},
                      "The new program passed every check.")
            self._set_scene(session, "\0")  # force the scene of the new program to start at the next step
        else:
            msg = "; ".join(str(e) for e in report.errors)
            logger.error("Session %d: program update refused, keeping the last valid program: %s", session, msg)
            self._log(t, session, "program_rejected", None, {"errors": [str(e) for e in report.errors]},
                      "The edited program failed its checks; the session keeps its last valid program.")
        return report

    def note(self, t: float, session: int, kind: str, inputs: dict[str, Any], reason: str) -> None:
        """Log a decision taken outside :meth:`step` (e.g. a refused program file) with its inputs."""
        self._log(t, session, kind, None, inputs, reason)

    # ------------------------------------------------------------------ helpers
    def _set_scene(self, s: int, name: str) -> None:
        self.scene[s] = name
        sc = self.programs[s].scenes.get(name)
        c = None if sc is None else sc.clas
        self._clas_cfg[s] = c
        self._has_cues[s] = bool(sc is not None and sc.cues)
        self._cm[:, s] = (math.radians(c.target_phase_deg), c.min_amplitude_uv, c.relative_amplitude, c.min_snr,
                          c.min_n3_prob, c.max_amplitude_uv, c.min_down_state_uv) if c is not None else np.nan

    def _log(self, t: float, s: int, kind: str, cmd: Command | None, inputs: dict[str, Any], reason: str) -> None:
        self.decisions.append(Decision(float(t), int(s), kind, cmd, inputs, reason))

    def _issue(self, out: list[Command], t: float, s: int, kind: str, params: dict[str, Any],
               inputs: dict[str, Any], reason: str, decision: str | None = None) -> Command:
        cmd = Command(int(s), float(t), kind, params)
        out.append(cmd)
        self._log(t, s, decision or kind, cmd, inputs, reason)
        return cmd

    def _rate_ok(self, s: int, t: float) -> bool:
        times = self._stim_times[s]
        while times and times[0] <= t - 60.0:
            times.pop(0)
        return len(times) < self.programs[s].limits.max_stim_per_min

    # ------------------------------------------------------------------ the step
    def step(
        self,
        t: float,
        *,
        eeg: npt.ArrayLike | None = None,
        probs: npt.ArrayLike | None = None,
        arousal: npt.ArrayLike | None = None,
        distress: npt.ArrayLike | None = None,
        glitch: npt.ArrayLike | None = None,
    ) -> list[Command]:
        """Advance every session by one chunk and return the commands to play.

        Parameters
        ----------
        t : float
            Session-clock time at the end of the chunk, in s since lights-out.
        eeg : array_like, shape (n_sessions, n_samples), optional
            The chunk's EEG samples in µV (one channel per session), ending at ``t``; needed for CLAS.
        probs : array_like, shape (n_sessions, 5), optional
            Current stage probabilities (W, N1, N2, N3, R); rows of NaN mean "not staged yet".
        arousal, distress, glitch : array_like of bool, shape (n_sessions,), optional
            Events detected in this chunk.

        Returns
        -------
        list of Command
            In time order per session.
        """
        n = self.n_sessions
        t = float(t)
        out: list[Command] = []
        ar = np.zeros(n, bool) if arousal is None else np.asarray(arousal, dtype=bool).reshape(n)
        di = np.zeros(n, bool) if distress is None else np.asarray(distress, dtype=bool).reshape(n)
        gl = np.zeros(n, bool) if glitch is None else np.asarray(glitch, dtype=bool).reshape(n)
        on = self.enabled  # natural nights, free rows and failed rows hear nothing and decide nothing
        ar, di, gl = ar & on, di & on, gl & on
        if probs is not None:
            p = np.asarray(probs, dtype=float).reshape(n, 5)
            valid = np.all(np.isfinite(p), axis=1)
            self.stage = np.where(valid, np.argmax(np.where(valid[:, None], p, 0.0), axis=1), self.stage)
        else:
            p = np.full((n, 5), np.nan)
        if probs is not None:
            light_p = np.where(valid, p[:, list(_LIGHT)].sum(axis=1), 0.0)
            self.light_since = np.where(light_p >= _WAKE_LIGHT_P, np.minimum(self.light_since, t), np.inf)
            self.last_rem = np.where(valid & (np.nan_to_num(p[:, 4]) >= 0.5), t, self.last_rem)

        # 1-3: glitch, distress, arousal: stop at once
        for s in np.flatnonzero(gl & ~self.glitch):
            self._issue(out, t, s, "silence", {"for_s": None}, {"glitch": True}, "Glitch: stop at once, safe state.",
                        "quiet")
            self.phase.reset([s])
            self._env_zi[s] = 0.0
            self._env_n[s] = 0.0
            self._warm_from[s] = self._eeg_t + self.phase.warmup_s
        for s in np.flatnonzero(~gl & self.glitch & on):
            self._log(t, s, "glitch_cleared", None, {"glitch": False}, "Glitch cleared: the program resumes.")
            self._set_scene(s, "\0")
        self.glitch = gl.copy()
        for s in np.flatnonzero(di & ~self.glitch & (t >= self.distress_until)):
            with self._isolate(int(s), t, out):
                od = self.programs[s].on_distress
                self.distress_until[s] = t + od.for_min * 60.0
                if od.play == SILENCE:
                    self._issue(out, t, s, "silence", {"for_s": od.for_min * 60.0}, {"distress": True},
                                "Distress: stop at once; protective response is silence.", "quiet")
                else:
                    self._issue(out, t, s, "silence", {"for_s": None}, {"distress": True}, "Distress: stop at once.",
                                "quiet")
                    self._issue(out, t, s, "protect", {"sound": od.play, "level_db": od.level_db,
                                                       "for_s": od.for_min * 60.0},
                                {"distress": True}, f"Distress: protective {od.play} for {od.for_min:g} min.")
                self._set_scene(s, "\0")
                self.train_n[s] = 0
        # an arousal is a brief awakening from sleep: while the stager says W, the settling scene keeps playing
        for s in np.flatnonzero(ar & ~self.glitch & (t >= self.distress_until) & (self.stage != 0)):
            with self._isolate(int(s), t, out):
                quiet = self.programs[s].on_arousal.silence_for_s
                if t >= self.quiet_until[s]:
                    self._issue(out, t, s, "silence", {"for_s": quiet}, {"arousal": True},
                                f"Arousal: silence for {quiet:g} s.", "quiet")
                self.quiet_until[s] = t + quiet
                self._set_scene(s, "\0")
                self.train_n[s] = 0
        blocked = ~self.enabled | self.glitch | (t < self.distress_until) | (t < self.quiet_until) | self.woken

        # 4: smart wake
        with np.errstate(invalid="ignore"):
            in_window = t >= self._win[:, 0]  # NaN (no wake) compares False
        for s in np.flatnonzero(in_window & on & ~self.woken & ~self.glitch & (t >= self.distress_until)):
            with self._isolate(int(s), t, out):
                win = (float(self._win[s, 0]), float(self._win[s, 1]))
                need = _WAKE_STABLE_AFTER_REM_S if self.light_since[s] - self.last_rem[s] < _WAKE_AFTER_REM_S else (
                    _WAKE_STABLE_S)
                light = t - self.light_since[s] >= need
                if light or t >= win[1]:
                    ramp = self.programs[s].wake.ramp  # type: ignore[union-attr]
                    reason = (f"Smart wake: light sleep for {t - self.light_since[s]:.0f} s inside the window (stage "
                              f"{STAGE_LABELS[self.stage[s]]})." if light
                              else "Smart wake: end of the window reached without light sleep.")
                    self._issue(out, t, s, "silence", {"for_s": None}, {"wake": True}, "Wake: stop the program.",
                                "quiet")
                    self._issue(out, t, s, "wake", {"sound": ramp.sound, "from_db": ramp.from_db,
                                                    "to_db": ramp.to_db, "over_s": ramp.over_min * 60.0},
                                {"stage": int(self.stage[s]), "probs": _probs_dict(p[s]), "window_s": list(win)},
                                reason)
                    self.woken[s] = True
                    self.wake_t[s] = t
                    blocked[s] = True

        # 5a: scenes follow the stage (only sessions whose wanted scene changed are touched)
        blocked |= ~self.enabled  # rows whose program failed above
        st_all = self.stage
        want_all = np.where(st_all >= 0, self._rules[np.arange(n), np.minimum(np.maximum(st_all, 0), 4)], SILENCE)
        change = np.flatnonzero(~blocked & (want_all != self.scene))
        if change.size:  # (a thousand beds may change scene at one stage update: plain Python values, once)
            rows = zip(change.tolist(), st_all[change].tolist(), want_all[change].tolist(),
                       self.scene[change].tolist(), _rounded_probs(p[change]), strict=True)
            for s, st, want, prev, probs in rows:
                with self._isolate(s, t, out):
                    if want == SILENCE:
                        self._issue(out, t, s, "silence", {"for_s": None, "fade": True},
                                    {"stage": st, "probs": probs},
                                    f"Stage {STAGE_LABELS[st] if st >= 0 else '?'}: rule says silence.", "scene")
                    else:
                        self._issue(out, t, s, "scene", {"name": want}, {"stage": st, "probs": probs,
                                                                         "previous": str(prev)},
                                    f"Stage {STAGE_LABELS[st]}: rule plays scene '{want}'.")
                    self._set_scene(s, want)
                    self.scene_since[s] = t
                    self.train_n[s] = 0

        # 5b: cues
        for s in np.flatnonzero(~blocked & self._has_cues):
            with self._isolate(int(s), t, out):
                name = self.scene[s]
                sc = self.programs[s].scenes.get(name)
                if sc is None or not sc.cues:
                    continue
                for i, cue in enumerate(sc.cues):
                    key = (name, i)
                    cnt = self._cue_count[s].get(key, 0)
                    last = self._cue_last[s].get(key, -np.inf)
                    if (cnt < cue.max and t - self.scene_since[s] >= cue.start_after_min * 60.0
                            and t - last >= cue.every_min * 60.0 and self._rate_ok(s, t)):
                        self._issue(out, t, s, "cue", {"scene": name, "index": i, "level_db": cue.level_db,
                                                       "kind": cue.kind},
                                    {"stage": int(self.stage[s]), "count": cnt},
                                    f"{cue.kind.capitalize()} cue {cnt + 1}/{cue.max} of scene '{name}'.")
                        self._cue_count[s][key] = cnt + 1
                        self._cue_last[s][key] = t
                        self._stim_times[s].append(t)

        # 5c: CLAS
        blocked |= ~self.enabled
        if eeg is not None:
            self._clas(np.asarray(eeg, dtype=float), t, p, blocked, out)
        out.sort(key=lambda c: (c.session, c.t))
        return out

    def _clas(self, x: npt.NDArray[np.float64], t_end: float, p: npt.NDArray[np.float64],
              blocked: npt.NDArray[np.bool_], out: list[Command]) -> None:
        """CLAS for one chunk: phase estimate, artefact and amplitude gates, then click decisions.

        A click needs, at the sample where the predicted phase crosses the target: a warm estimator, no
        artefact in the last ``_ARTEFACT_HOLD_S`` (predicted envelope above the physiological ``max_amplitude_uv``,
        or corrupt samples: non-finite or beyond ``_ABSURD_UV``, which also reset the estimator), an envelope between
        the absolute and relative minimum and the maximum, a down-state at least ``min_down_state_uv`` deep in the
        predicted slow-wave band within ``_DOWN_WIN_S`` before, and the SNR gate.
        """
        n = self.n_sessions
        if x.ndim != 2 or x.shape[0] != n:
            raise InvalidInputError(f"Invalid EEG chunk: expected shape ({n}, n_samples), got {x.shape}.")
        m = x.shape[1]
        if m == 0:
            return
        eeg_t0 = self._eeg_t
        eeg_times = eeg_t0 + np.arange(m) / self.fs
        with np.errstate(invalid="ignore"):
            corrupt = ~(np.abs(x) <= _ABSURD_UV)  # NaN compares False
        if corrupt.any():
            bad = np.flatnonzero(corrupt.any(axis=1))
            last = m - 1 - np.argmax(corrupt[bad, ::-1], axis=1)
            x = np.where(corrupt, 0.0, x)
            # such values must not linger in the filters' state: start again after the last of them
            self.phase.reset(bad)
            self._env_zi[bad] = 0.0
            self._env_n[bad] = 0.0
            self._warm_from[bad] = np.maximum(self._warm_from[bad], eeg_times[last] + self.phase.warmup_s)
        c = self._c
        n3 = p[:, 3]
        with np.errstate(invalid="ignore"):
            active = ~blocked & np.isfinite(c["target"]) & (~np.isfinite(n3) | (n3 >= c["n3"]))
        # the predictions ahead of each tick's end are only read for the rows that may click
        track = self.phase.update(x, ahead_rows=active if self._ahead_h is not None else None)
        self._eeg_t += m / self.fs
        prev_last = self._prev_phase
        max_amp = np.where(np.isfinite(c["max_amp"]), c["max_amp"], np.inf)
        # an envelope beyond the physiological maximum is an artefact: no click for a while after it; the running
        # mean of the envelope (exponential, corrected for its start-up), for the relative threshold, stands still
        # through an artefact and its hold, so they do not raise the threshold for minutes (one compiled pass)
        hold, env_mean = np.empty((n, m)), np.empty((n, m))
        envelope_tick(track.amp, max_amp, eeg_t0, self.fs, _ARTEFACT_HOLD_S, self._hold_until, self._env_alpha,
                      self._env_zi, self._env_n, self._env_settled, hold, env_mean)
        # the predicted slow-wave band (real part of the analytic signal), after the last _DOWN_WIN_S of it; a live
        # tick's phases are kept as the FIR outputs they are the angles of, and only those read are turned into
        # angles (the last one, the windows before a click): the same values, without an arctan2 per sample
        k = self._band_amp.shape[1]
        band_amp = np.concatenate([self._band_amp, track.amp], axis=1)
        if isinstance(track, TickTrack):
            self._prev_phase = np.arctan2(track.z_im[:, -1], track.z_re[:, -1])
            blank = np.zeros((n, m))
            band_phase = np.concatenate([self._band_phase, blank], axis=1)
            band_re = np.concatenate([self._band_re, track.z_re], axis=1)
            band_im = np.concatenate([self._band_im, track.z_im], axis=1)
            band_z = np.concatenate([self._band_z, np.ones(m, dtype=bool)])
        else:
            self._prev_phase = track.phase[:, -1].copy()
            band_phase = np.concatenate([self._band_phase, track.phase], axis=1)
            blank = np.zeros((n, m))
            band_re = np.concatenate([self._band_re, blank], axis=1)
            band_im = np.concatenate([self._band_im, blank], axis=1)
            band_z = np.concatenate([self._band_z, np.zeros(m, dtype=bool)])
        self._band_amp, self._band_phase = band_amp[:, -k:].copy(), band_phase[:, -k:].copy()
        self._band_re, self._band_im, self._band_z = band_re[:, -k:].copy(), band_im[:, -k:].copy(), band_z[-k:].copy()
        # session-clock time of each sample: the chunk covers [t_end - m / fs, t_end), sample k taken at k / fs (as
        # on the EEG clock and in the offline reference; stamping the last sample t_end put clicks 1 sample late)
        t_samples = t_end - (m - np.arange(m)) / self.fs
        if not active.any():
            return
        rows = np.flatnonzero(active)
        ahead_onset = None
        if self._ahead_h is not None and track.ahead_idx is not None and track.ahead_phase is not None:
            crossed, ahead_onset = self._ahead_crossings(track, rows, m, t_samples)
            frac = np.zeros(crossed.shape)  # (set for each click from its onset)
        else:  # per-session targets may differ: compare against each row's own target
            prev = np.concatenate([prev_last[rows, None], track.phase[rows, :-1]], axis=1)
            d_prev = wrap_phase(prev - c["target"][rows, None])
            d_now = wrap_phase(track.phase[rows] - c["target"][rows, None])
            crossed, frac = target_crossings(d_prev, d_now, 0.0)
        amp = track.amp[rows]
        thr = np.maximum(c["min_amp"][rows, None], c["rel"][rows, None] * env_mean[rows])
        crossed &= (eeg_times[None, :] >= self._warm_from[rows, None]) & (eeg_times[None, :] >= hold[rows])
        crossed &= (amp >= thr) & (amp <= max_amp[rows, None]) & (track.snr[rows] >= c["snr"][rows, None])
        r_idx, i_idx = np.nonzero(crossed)
        trough = np.zeros(r_idx.size)
        if r_idx.size:
            # depth of the down-state: the lowest predicted band value in the _DOWN_WIN_S up to the crossing,
            # counting only samples the estimator has seen since its last reset
            at = (rows[r_idx, None], i_idx[:, None] + 1 + np.arange(k)[None, :])
            phase = np.where(band_z[at[1]], np.arctan2(band_im[at], band_re[at]), band_phase[at])
            win = band_amp[at] * np.cos(phase)
            win_t = eeg_times[i_idx, None] - (k - 1 - np.arange(k))[None, :] / self.fs
            since = self._warm_from[rows[r_idx], None] - self.phase.warmup_s
            trough = np.where(win_t >= since, win, np.inf).min(axis=1)
            deep = trough <= -c["down"][rows[r_idx]]
            r_idx, i_idx, trough = r_idx[deep], i_idx[deep], trough[deep]
        for r, i, low in zip(r_idx, i_idx, trough, strict=True):  # row-major: each session in time order
            s = int(rows[r])
            onset = t_samples[i] - frac[r, i] / self.fs + self.latency_s
            if ahead_onset is not None:  # decided at the end of a tick, for a crossing still ahead
                onset = float(ahead_onset[r, i])
                frac[r, i] = (t_samples[i] + self.latency_s - onset) * self.fs
            gates = {"down_state_uv": round(float(low), 1), "snr": round(float(track.snr[s, i]), 2),
                     "envelope_mean_uv": round(float(env_mean[s, i]), 1)}
            eeg_at = eeg_times[i] - frac[r, i] / self.fs + self.latency_s
            phase_at = float(track.phase[s, i]) if ahead_onset is None else float(self._c["target"][s])
            self._consider_click(s, onset, self._clas_cfg[s], phase_at, float(track.amp[s, i]),
                                 p[s], out, gates, eeg_at)
        if self._pulses:  # the estimator learns each sleeper's phase bias from where the clicks land
            sessions, at, target = zip(*self._pulses, strict=True)
            self.phase.note_pulses(sessions, at, target)
            self._pulses.clear()

    def _ahead_crossings(self, track: Any, rows: npt.NDArray[np.intp], m: int, t_samples: npt.NDArray[np.float64]
                         ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        """Where, from each tick's last sample, the predicted phase crosses the target within the next tick.

        Returns a mask (rows, m) that is True at the decision samples with a crossing ahead, and the onset (s,
        session clock) of that crossing: the first horizon pair whose phases pass forward through the target,
        interpolated between the two horizons.
        """
        assert self._ahead_h is not None
        h = self._ahead_h
        ph = track.ahead_phase[rows]  # (rows, D, K)
        d = wrap_phase(ph - self._c["target"][rows, None, None])
        crossed, frac = target_crossings(d[..., :-1], d[..., 1:], 0.0)  # (rows, D, K - 1)
        hit = crossed.any(axis=2)
        first = np.argmax(crossed, axis=2)
        f = np.take_along_axis(frac, first[..., None], axis=2)[..., 0]
        lag = h[first + 1] - f * (h[first + 1] - h[first])  # frac: share of the pair's interval after the target
        mask = np.zeros((rows.size, m), dtype=bool)
        onset = np.full((rows.size, m), np.nan)
        idx = track.ahead_idx
        mask[:, idx] = hit
        onset[:, idx] = t_samples[idx][None, :] + lag
        return mask, onset

    def _consider_click(self, s: int, onset: float, c: Any, phase: float, amp: float,
                        probs: npt.NDArray[np.float64], out: list[Command],
                        gates: dict[str, float] | None = None, eeg_at: float | None = None) -> None:
        if self.train_n[s] > 0 and onset - self.last_click[s] > _MAX_TRAIN_GAP_S:
            self.train_n[s] = 0  # the next up-state never came: the train ends here
            self.next_ok[s] = self.last_click[s] + c.refractory_s
        if onset - self.last_click[s] < _MIN_CLICK_GAP_S:
            return
        if self.train_n[s] == 0 and onset < self.next_ok[s]:
            return
        inputs = {"phase_deg": round(float(np.degrees(phase)), 1), "envelope_uv": round(amp, 1),
                  "probs": _probs_dict(probs), "train_click": int(self.train_n[s]) + 1,
                  "clicks_total": int(self.clicks_total[s]), "latency_s": self.latency_s, **(gates or {})}
        if self.clicks_total[s] >= c.max_per_night:
            if self.clicks_total[s] == c.max_per_night:
                self._log(onset, s, "clas_cap", None, inputs, f"Maximum of {c.max_per_night} clicks per night reached.")
                self.clicks_total[s] += 1  # log once
            return
        if not self._rate_ok(s, onset):
            self._log(onset, s, "clas_rate", None, inputs, "Stimulation rate cap reached; click skipped.")
            return
        if self.stimulate:
            self._issue(out, onset, s, "click", {"duration_s": c.click_ms / 1000.0, "level_db": c.level_db},
                        inputs, f"CLAS: predicted phase reaches {c.target_phase_deg:g}° at onset; click "
                        f"{int(self.train_n[s]) + 1}/{c.clicks} of the train.")
        else:
            self._log(onset, s, "sham_click", None, inputs, "Sham night: a click would have been given here.")
        self._stim_times[s].append(onset)
        if eeg_at is not None:  # noted for the estimator at the end of the step (one call for every click)
            self._pulses.append((s, eeg_at, float(self._c["target"][s])))
        self.clicks_total[s] += 1
        self.last_click[s] = onset
        self.train_n[s] += 1
        if self.train_n[s] >= c.clicks:
            self.train_n[s] = 0
            self.next_ok[s] = onset + c.refractory_s


class _Isolated:
    """``with`` block of one row's part of a step: an ``Exception`` there fails that row only (and is swallowed).

    A plain class rather than a generator context manager: it is entered for every scene change, cue and wake
    of every bed, up to a thousand times in one step.
    """

    __slots__ = ("ctrl", "out", "s", "t")

    def __init__(self, ctrl: Controller, s: int, t: float, out: list[Command]) -> None:
        self.ctrl, self.s, self.t, self.out = ctrl, int(s), t, out

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, Exception):  # a fault in one program must not silence the other beds
            self.ctrl._fail_row(self.s, self.t, self.out, exc)
            return True
        return False
