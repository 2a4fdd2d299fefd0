"""Dry runs: a program played to synthetic sleepers through the facility loop, in fast-forward.

:func:`dry_run` is a setup of the facility loop (:func:`~nexus.facility.setups.run_loop`): a
:class:`~nexus.sources.synthetic.fleet.SyntheticFleet` as source, each sleeper's own ears as sink
(:class:`~nexus.facility.beds.SleeperSink`: clicks can deepen slow waves, sounds can arouse and
prompts can wake), stages from the live stager (or the sleepers' true stages, an oracle), arousals
from the arousal detector, distress from the sleepers' true episodes (until the psyche monitor runs
in the loop). It reports what would happen: stimuli given, arousals caused, wake timing and stage,
time in each scene.

Levels: the program speaks dBFS; the sleeper hears dB SPL. ``spl_at_0dbfs`` is the bed's calibration (the
SPL of a full-scale signal at the ear), 80 dB SPL by default, so a -30 dBFS click is heard at 50 dB SPL as in
Ngo et al. (2013).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nexus.core.checks import check_number, check_option
from nexus.core.stages import STAGE_LABELS
from nexus.dreamscape.controller import Command
from nexus.dreamscape.schema import Program
from nexus.facility.beds import SleeperSink
from nexus.facility.setups import run_loop
from nexus.sinks.bedside import BedSink, CountingSink, TeeSink

EEG_CHANNEL = "EEG C4-M1"
"""The channel CLAS reads in dry runs."""

CHANNELS = (EEG_CHANNEL, "EOG E1-M2", "EMG Chin")


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
    clicks_enhancing: int = 0
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
        d = dict(self.__dict__)
        d["so_power_n3"] = None if not np.isfinite(self.so_power_n3) else round(self.so_power_n3, 2)
        return d


@dataclass
class DryRunResult:
    """Outcome of a dry run over ``len(sessions)`` synthetic sleepers."""

    program: str
    hours: float
    stager: str
    arousal_source: str
    sessions: list[SessionReport]
    decisions: list[dict[str, Any]]
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
            "distress_source": "truth (the synthetic sleepers' episodes, 2 s late)",
            "clicks": clicks,
            "cues": sum(r.cues for r in s),
            "arousals_caused": sum(r.arousals_caused for r in s),
            "awakenings_caused": sum(r.awakenings_caused for r in s),
            "arousals_per_100_clicks": round(100.0 * caused / clicks, 2) if clicks else None,
            "clicks_enhancing_slow_waves": sum(r.clicks_enhancing for r in s),
            "distress_responses": sum(r.distress_responses for r in s),
            "quiet_on_arousal": sum(d["description"] == "quiet" and bool(d["inputs"].get("arousal"))
                                    for d in self.decisions),
            "smart_wakes": len(wakes),
            "smart_wake_light_in_window": (
                round(float(np.mean([bool(r.wake_light and r.wake_in_window) for r in wakes])), 3) if wakes else None
            ),
            "mean_wake_min_after_lights_out": (
                round(float(np.mean([r.wake_t_s for r in wakes])) / 60.0, 1) if wakes else None
            ),
            "minutes_per_scene_per_client": {k: round(v, 1) for k, v in sorted(scenes.items())},
            "model_dependent": ["arousals_caused", "awakenings_caused", "arousals_per_100_clicks",
                                "clicks_enhancing_slow_waves"],
        }


def dry_run(
    program: Program | Sequence[Program],
    *,
    clients: int = 20,
    hours: float = 8.0,
    seed: int = 0,
    profile: str = "typical_adult",
    fs: float = 100.0,
    step_s: float = 0.5,
    stimulate: bool = True,
    spl_at_0dbfs: float = 80.0,
    stager: str = "live",
) -> DryRunResult:
    """Play a program to ``clients`` synthetic sleepers through the facility loop, in fast-forward.

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
        The loop's step in s (clicks are decided for a live 0.1-s tick; a sleeper's response starts at most
        one step late).
    stimulate : bool
        False for a sham night: same controller, no clicks given (for with/without comparisons).
    spl_at_0dbfs : float
        Calibration of the beds, dB SPL at 0 dBFS.
    stager : {"live", "oracle"}
        ``live``: the facility's live stager; ``oracle``: the sleepers' true stages, known at each epoch's end.

    Returns
    -------
    DryRunResult
    """
    from nexus.sources.synthetic.fleet import SyntheticFleet

    check_number("clients", clients, ge=1, le=10000)
    check_number("hours", hours, gt=0, le=24, unit="h")
    check_option("stager", stager, ("live", "oracle"))
    programs = list(program) if isinstance(program, Sequence) else [program] * int(clients)
    n = len(programs)
    seeds = [seed + i for i in range(n)]
    fleet = SyntheticFleet(profile, seeds, hours=hours, fs=fs, channels=CHANNELS, dtype=np.float64)
    ears = [SleeperSink(fleet, k, programs[k], spl_at_0dbfs=spl_at_0dbfs) for k in range(n)]
    sinks: list[BedSink | None] = [TeeSink([e, CountingSink(e.limiter.ceiling_dbfs)]) for e in ears]
    run = run_loop(fleet, programs, hours * 3600.0, sinks=sinks, stages="oracle" if stager == "oracle" else "live",
                   step_s=step_s, events=False, arousal=True, distress_truth=True, stimulate=stimulate)
    reports = [SessionReport(i, s) for i, s in enumerate(seeds)]
    loop = run.loop
    for r in reports:
        k = r.session
        cmds = run.commands[k]
        r.clicks = sum(c.kind == "click" for c in cmds)
        r.cues = sum(c.kind == "cue" for c in cmds)
        r.sounds = sum(c.kind in ("scene", "protect", "wake") for c in cmds)
        r.distress_responses = sum(c.kind == "protect" for c in cmds)
        r.quiet_events = sum(c.kind == "silence" for c in cmds)
        r.scene_s = _scene_seconds(cmds, hours * 3600.0)
        n_so = int(loop.so_samples[k])
        r.so_power_n3 = float(loop.so_power[k] / n_so) if n_so else float("nan")
        wake = next((c for c in cmds if c.kind == "wake"), None)
        if wake is not None:
            st = int(fleet.stage_at(k, wake.t))
            win = programs[k].wake_window_s()
            r.wake_t_s = wake.t
            r.wake_stage = STAGE_LABELS[st]
            r.wake_light = st in (0, 1, 2)
            r.wake_in_window = bool(win is not None and win[0] <= wake.t <= win[1] + step_s)
    for resp in fleet.responses:
        r = reports[int(resp["session"])]
        if resp["kind"] == "click":
            r.arousals_caused += resp["outcome"] == "arousal"
            r.awakenings_caused += resp["outcome"] == "awakening"
            r.clicks_enhancing += resp["outcome"] == "enhanced"
    stager_name = ("oracle (true stages of the synthetic sleeper, known at each epoch's end)" if stager == "oracle"
                   else "live (the facility's live stager)")
    return DryRunResult(programs[0].name, hours, stager_name, "detected (the facility's arousal detector)", reports,
                        [d for bed in run.decisions for d in bed], [c for bed in run.commands for c in bed])


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
