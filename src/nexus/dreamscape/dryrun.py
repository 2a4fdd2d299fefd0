"""Dry runs: a program played to synthetic sleepers in fast-forward, in closed loop.

:func:`dry_run` streams a :class:`~nexus.sources.synthetic.fleet.SyntheticFleet`, stages it live, runs one
batched :class:`~nexus.dreamscape.controller.Controller` over all sleepers and plays every command back to the
fleet (:meth:`SyntheticFleet.play`), so that clicks can deepen slow waves, sounds can arouse and prompts can
wake. It reports what would happen: stimuli given, arousals caused, wake timing and stage, time in each scene.

Levels: the program speaks dBFS; the sleeper hears dB SPL. ``spl_at_0dbfs`` is the bed's calibration (the
SPL of a full-scale signal at the ear), 80 dB SPL by default, so a -30 dBFS click is heard at 50 dB SPL as in
Ngo et al. (2013).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.log import logger
from nexus.core.stages import EPOCH_S, STAGE_LABELS
from nexus.dreamscape.controller import Command, Controller, Decision
from nexus.dreamscape.schema import Program

EEG_CHANNEL = "EEG C4-M1"
"""The channel CLAS reads in dry runs."""

_SO_BAND = (0.5, 2.0)


@dataclass
class SessionReport:
    """What happened to one synthetic sleeper."""

    session: int
    seed: int
    clicks: int = 0
    cues: int = 0
    sounds: int = 0
    arousals_caused: int = 0
    awakenings_caused: int = 0
    enhanced: int = 0
    wake_t_s: float | None = None
    wake_stage: str | None = None
    wake_in_window: bool | None = None
    wake_light: bool | None = None
    distress_responses: int = 0
    quiet_events: int = 0
    scene_s: dict[str, float] = field(default_factory=dict)
    so_power_n3: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass
class DryRunResult:
    """Outcome of a dry run over ``len(sessions)`` synthetic sleepers."""

    program: str
    hours: float
    stager: str
    arousal_source: str
    sessions: list[SessionReport]
    decisions: list[Decision]
    commands: list[Command]

    def summary(self) -> dict[str, Any]:
        """Totals and shares across sleepers (JSON-ready)."""
        s = self.sessions
        clicks = sum(r.clicks for r in s)
        caused = sum(r.arousals_caused + r.awakenings_caused for r in s)
        wakes = [r for r in s if r.wake_t_s is not None]
        scenes: dict[str, float] = {}
        for r in s:
            for k, v in r.scene_s.items():
                scenes[k] = scenes.get(k, 0.0) + v / 60.0 / len(s)
        return {
            "program": self.program,
            "clients": len(s),
            "hours": self.hours,
            "stager": self.stager,
            "arousal_source": self.arousal_source,
            "clicks": clicks,
            "cues": sum(r.cues for r in s),
            "arousals_caused": sum(r.arousals_caused for r in s),
            "awakenings_caused": sum(r.awakenings_caused for r in s),
            "arousals_per_100_clicks": round(100.0 * caused / clicks, 2) if clicks else None,
            "clicks_on_up_state": sum(r.enhanced for r in s),
            "distress_responses": sum(r.distress_responses for r in s),
            "quiet_on_arousal": sum(d.kind == "quiet" and bool(d.inputs.get("arousal")) for d in self.decisions),
            "smart_wakes": len(wakes),
            "smart_wake_light_in_window": (
                round(float(np.mean([bool(r.wake_light and r.wake_in_window) for r in wakes])), 3) if wakes else None
            ),
            "mean_wake_min_after_lights_out": (
                round(float(np.mean([r.wake_t_s for r in wakes])) / 60.0, 1) if wakes else None
            ),
            "minutes_per_scene_per_client": {k: round(v, 1) for k, v in sorted(scenes.items())},
        }


class _TruthStager:
    """Stage probabilities from the sleeper's true stage, known at each epoch's end (an oracle, labelled so)."""

    name = "oracle (true stages of the synthetic sleeper)"

    def __init__(self, fleet: Any) -> None:
        self.fleet = fleet

    def __call__(self, chunk: npt.NDArray[np.floating], t: float) -> npt.NDArray[np.float64]:
        e = int(t // EPOCH_S) - 1
        n = self.fleet.n_sessions
        if e < 0:
            return np.full((n, 5), np.nan)
        return np.eye(5)[self.fleet.stages[:, min(e, self.fleet.n_epochs - 1)]]


def _live_stager(fleet: Any, fs: float) -> Any:
    """Engineer T's batched live stager over the fleet's EEG, EOG and EMG; ``None`` when it is not installed."""
    try:
        from nexus.staging.live import LiveStager
    except ImportError:
        return None
    stager = LiveStager(fleet.n_sessions, fs, ("eeg", "eog", "emg"), night_hours=fleet.hours)

    class _Adapter:
        name = "live (nexus.staging.live.LiveStager)"

        def __call__(self, chunk: npt.NDArray[np.floating], t: float) -> npt.NDArray[np.float64]:
            stager.push(chunk)
            return np.asarray(stager.update().probabilities, dtype=float)

    return _Adapter()


def dry_run(
    program: Program | Sequence[Program],
    *,
    clients: int = 20,
    hours: float = 8.0,
    seed: int = 0,
    profile: str = "typical_adult",
    fs: float = 100.0,
    step_s: float = 2.0,
    stimulate: bool = True,
    latency_s: float | None = None,
    spl_at_0dbfs: float = 80.0,
    stager: str = "live",
    arousals: str = "detect",
    event_delay_s: float = 2.0,
) -> DryRunResult:
    """Play a program to ``clients`` synthetic sleepers in fast-forward, in closed loop.

    Parameters
    ----------
    program : Program or sequence of Program
        One checked program for all, or one per client.
    clients : int
        Number of synthetic sleepers.
    hours : float
        Night length in hours.
    seed : int
        Seed of the first sleeper (the others use ``seed + i``).
    profile : str
        Synthetic sleeper profile.
    fs : float
        EEG sampling rate in Hz.
    step_s : float
        Chunk length in s (CLAS still decides per sample inside each chunk).
    stimulate : bool
        False for a sham night: same controller, no clicks given (for with/without comparisons).
    latency_s : float, optional
        Sample-to-sound latency for CLAS, in s.
    spl_at_0dbfs : float
        Calibration of the beds, dB SPL at 0 dBFS.
    stager : {"live", "oracle"}
        ``live`` uses :class:`nexus.staging.live.LiveStager` (falls back to the oracle, with a warning and the
        fallback named in the result, when it is not installed); ``oracle`` uses the true stages.
    arousals : {"detect", "truth"}
        ``detect`` runs the batched streaming arousal detector (:class:`nexus.events.arousals.ArousalStream`,
        EEG + chin EMG, reports an arousal when it ends); ``truth`` reports the sleeper's true arousals after
        ``event_delay_s``. Distress always comes from the truth (its detector belongs to the glitch monitor).
    event_delay_s : float
        Delay with which true events are reported to the controller (a detector's latency), in s.

    Returns
    -------
    DryRunResult
    """
    from nexus.sources.synthetic.fleet import SyntheticFleet

    check_number("clients", clients, ge=1, le=10000)
    check_number("hours", hours, gt=0, le=24, unit="h")
    programs = list(program) if isinstance(program, Sequence) else [program] * int(clients)
    n = len(programs)
    seeds = [seed + i for i in range(n)]
    channels = (EEG_CHANNEL, "EOG E1-M2", "EMG Chin")
    detector = None
    if arousals == "detect":
        from nexus.events.arousals import ArousalStream

        detector = ArousalStream(n, fs)
    fleet = SyntheticFleet(profile, seeds, hours=hours, fs=fs, channels=channels, dtype=np.float64)
    stage_fn: Any = _live_stager(fleet, fs) if stager == "live" else None
    if stage_fn is None:
        if stager == "live":
            logger.warning("nexus.staging.live is not available: the dry run stages with the true stages (oracle).")
        stage_fn = _TruthStager(fleet)
    ctrl = Controller(programs, fs, latency_s=latency_s, stimulate=stimulate)
    reports = [SessionReport(i, s) for i, s in enumerate(seeds)]
    commands: list[Command] = []
    step = round(step_s * fs)
    total = round(hours * 3600.0 * fs)
    eeg_idx = channels.index(EEG_CHANNEL)
    so_pow = np.zeros(n)
    so_cnt = np.zeros(n)
    from scipy import signal

    sos = signal.butter(2, _SO_BAND, btype="bandpass", fs=fs, output="sos")
    zi = np.zeros((sos.shape[0], n, 2))
    done = 0
    while done < total:
        m = min(step, total - done)
        chunk = fleet.next_chunk(m)
        t0, t1 = done / fs, (done + m) / fs
        done += m
        probs = stage_fn(chunk, t1)
        d0, d1 = max(t0 - event_delay_s, 0.0), max(t1 - event_delay_s, 0.0)
        # the sleeper's truth (reported after event_delay_s) stands in for the distress detector (and, when
        # asked, for the arousal detector)
        distress = fleet.distress_active(d0, d1)
        if detector is not None:
            stage_now = np.where(np.all(np.isfinite(probs), axis=1), np.argmax(np.nan_to_num(probs), axis=1), 0)
            found = detector.step(chunk[:, 0], stage_now, chunk[:, 2])
            arousal = np.zeros(n, dtype=bool)
            arousal[np.asarray(found.session, dtype=int)] = True
        else:
            arousal = fleet.arousal_active(d0, d1)
        cmds = ctrl.step(t1, eeg=chunk[:, eeg_idx], probs=probs, arousal=arousal, distress=distress)
        # slow-oscillation power in true N3 (for with/without-CLAS comparisons)
        y, zi = signal.sosfilt(sos, chunk[:, eeg_idx], axis=-1, zi=zi)
        e = min(int(t0 // EPOCH_S), fleet.n_epochs - 1)
        in_n3 = fleet.stages[:, e] == 3
        so_pow += np.where(in_n3, (y**2).sum(axis=1), 0.0)
        so_cnt += np.where(in_n3, m, 0)
        for c in cmds:
            commands.append(c)
            _play(fleet, c, reports[c.session], spl_at_0dbfs, programs[c.session])
    for r in reports:
        r.so_power_n3 = float(so_pow[r.session] / so_cnt[r.session]) if so_cnt[r.session] else float("nan")
        r.scene_s = _scene_seconds([c for c in commands if c.session == r.session], hours * 3600.0)
        wake = next((c for c in commands if c.session == r.session and c.kind == "wake"), None)
        if wake is not None:
            st = int(fleet.stage_at(r.session, wake.t))
            win = programs[r.session].wake_window_s()
            r.wake_t_s = wake.t
            r.wake_stage = STAGE_LABELS[st]
            r.wake_light = st in (0, 1, 2)
            r.wake_in_window = bool(win is not None and win[0] <= wake.t <= win[1] + step_s)
    for resp in fleet.responses:
        r = reports[int(resp["session"])]
        if resp["kind"] == "click":
            r.arousals_caused += resp["outcome"] == "arousal"
            r.awakenings_caused += resp["outcome"] == "awakening"
            r.enhanced += resp["outcome"] == "enhanced"
    source = "detected (nexus.events.arousals.ArousalStream)" if detector is not None else "truth"
    return DryRunResult(programs[0].name, hours, stage_fn.name, source, reports, ctrl.decisions, commands)


def _play(fleet: Any, c: Command, r: SessionReport, spl0: float, program: Program) -> None:
    if c.kind == "click":
        r.clicks += 1
        fleet.play(c.session, c.t, "click", max(0.0, spl0 + c.params["level_db"]))
    elif c.kind == "cue":
        r.cues += 1
        fleet.play(c.session, c.t, "prompt", max(0.0, spl0 + c.params["level_db"]))
    elif c.kind in ("scene", "protect", "wake"):
        r.sounds += 1
        r.distress_responses += c.kind == "protect"
        level = c.params.get("level_db", c.params.get("to_db", -90.0))
        if c.kind == "scene":  # the loudest layer of the scene
            layers = program.scenes[c.params["name"]].layers
            level = max((la.level_db for la in layers), default=-90.0)
        fleet.play(c.session, c.t, "sound", max(0.0, spl0 + level))
    elif c.kind == "silence":
        r.quiet_events += 1


def _scene_seconds(cmds: list[Command], end: float) -> dict[str, float]:
    out: dict[str, float] = {}
    cur, since = "silence", 0.0
    for c in sorted(cmds, key=lambda c: c.t):
        if c.kind in ("scene", "silence", "protect", "wake"):
            out[cur] = out.get(cur, 0.0) + c.t - since
            cur = c.params["name"] if c.kind == "scene" else ("silence" if c.kind == "silence" else c.kind)
            since = c.t
    out[cur] = out.get(cur, 0.0) + max(end - since, 0.0)
    return {k: round(v, 1) for k, v in out.items() if v > 0}
