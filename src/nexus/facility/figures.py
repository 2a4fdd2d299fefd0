"""CLAS and smart-wake figures (used by ``bench/clas.py`` and ``nexus bench clas``).

* **Phase accuracy**: the EEG is replayed through the facility loop (:func:`~nexus.facility.replay.clas_replay`,
  0.1-s steps as a live tick, the prediction horizon covering the step and the sound latency);
  the phase of each pulse onset is read from the zero-phase offline reference
  (:func:`~nexus.dsp.phase.reference_phase`: 0.5–2 Hz band-pass + Hilbert) and summarised as circular mean,
  circular SD and the share inside the 90° window around the up-state peak (|phase| ≤ 45°).
* **Closed loop**: the same synthetic sleepers are run with and without clicks (a sham night with the same
  controller); slow-oscillation power (0.5–2 Hz, in true N3) and arousals caused per 100 clicks are compared.
* **Smart wake**: share of wakes that happen in W/N1/N2 inside the window.
* **Controller cost**: wall time of one batched step for 1000 sessions (speed figure, never asserted in tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.dreamscape.controller import Controller
from nexus.dreamscape.schema import Program
from nexus.dsp.phase import circular_stats, reference_phase
from nexus.facility.dryrun import EEG_CHANNEL, dry_run
from nexus.facility.replay import clas_replay


def pulse_phases(eeg: npt.ArrayLike, fs: float, onsets: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Reference phase (radians) of the EEG at each pulse onset (onsets in s; those past the end are dropped)."""
    x = np.asarray(eeg, dtype=float).ravel()
    ref = reference_phase(x, fs)
    idx = np.round(np.asarray(onsets, dtype=float) * fs).astype(int)
    idx = idx[(idx >= 0) & (idx < x.size)]
    return np.asarray(ref[idx])


def _stats(phases: npt.NDArray[np.float64]) -> dict[str, Any]:
    s = circular_stats(phases, window=np.pi / 4)

    def num(v: float, nd: int) -> float | None:
        return round(v, nd) if np.isfinite(v) else None  # JSON has no NaN

    return {"pulses": s["n"], "mean_deg": num(s["mean_deg"], 1), "sd_deg": num(s["sd_deg"], 1),
            "in_90deg_window": num(s["in_window"], 3)}


def phase_accuracy_real(eeg: npt.ArrayLike, fs: float, *, latency_s: float = 0.05) -> dict[str, Any]:
    """Phase accuracy on a real N3 excerpt (the whole excerpt is taken as N3)."""
    x = np.asarray(eeg, dtype=float).ravel()
    res = clas_replay(x, fs, stages="n3", sound_latency_s=latency_s)
    return _stats(pulse_phases(x, fs, res.onsets))


def phase_accuracy_synthetic(nights: int = 3, hours: float = 8.0, *, fs: float = 100.0, seed: int = 100,
                             latency_s: float = 0.05) -> dict[str, Any]:
    """Phase accuracy over synthetic nights (staged by their true hypnogram, open loop, through the facility loop)."""
    from nexus.sources.synthetic.night import synthesize_night

    all_ph = []
    for k in range(nights):
        night = synthesize_night("typical_adult", hours=hours, seed=seed + k, fs=fs, channels=(EEG_CHANNEL,))
        x = night.channel(EEG_CHANNEL)
        res = clas_replay(x, fs, stages="hypnogram", hypnogram=night.stages, sound_latency_s=latency_s)
        all_ph.append(pulse_phases(x, fs, res.onsets))
    out = _stats(np.concatenate(all_ph) if all_ph else np.zeros(0))
    out.update({"nights": nights, "hours": hours})
    return out


def closed_loop(program: Program, clients: int = 10, hours: float = 8.0, *, seed: int = 200,
                stager: str = "live") -> dict[str, Any]:
    """CLAS vs sham on the same synthetic sleepers: SO power change, arousals per 100 clicks, smart wake."""
    stim = dry_run(program, clients=clients, hours=hours, seed=seed, stimulate=True, stager=stager)
    sham = dry_run(program, clients=clients, hours=hours, seed=seed, stimulate=False, stager=stager)
    p_stim = np.array([s.so_power_n3 for s in stim.sessions])
    p_sham = np.array([s.so_power_n3 for s in sham.sessions])
    ok = np.isfinite(p_stim) & np.isfinite(p_sham) & (p_sham > 0)
    change = 100.0 * (p_stim[ok] / p_sham[ok] - 1.0)
    summ = stim.summary()
    wakes = [r for r in stim.sessions + sham.sessions if r.wake_t_s is not None]
    good = [bool(r.wake_light and r.wake_in_window) for r in wakes]
    sham_summ = sham.summary()
    return {
        "clients": clients, "hours": hours, "stager": stim.stager,
        "so_power_change_pct_mean": round(float(np.mean(change)), 1) if change.size else None,
        "so_power_change_pct_per_client": [round(float(c), 1) for c in change],
        "clicks": summ["clicks"], "arousals_per_100_clicks": summ["arousals_per_100_clicks"],
        "clicks_enhancing_share": (round(summ["clicks_enhancing_slow_waves"] / summ["clicks"], 3) if summ["clicks"]
                                   else None),
        "model_dependent": ["so_power_change_pct_mean", "so_power_change_pct_per_client", "arousals_per_100_clicks",
                            "clicks_enhancing_share"],
        "smart_wakes": len(wakes),
        "smart_wake_light_in_window": round(float(np.mean(good)), 3) if wakes else None,
        "smart_wake_stages": {st: sum(r.wake_stage == st for r in wakes) for st in ("W", "N1", "N2", "N3", "R")},
        "sham_clicks": sham_summ["clicks"],
    }


def controller_step_ms(program: Program, sessions: int = 1000, tick_s: float = 0.1, ticks: int = 60,
                       fs: float = 100.0) -> dict[str, Any]:
    """Wall time of one batched controller step (all sessions in N3, slow waves, CLAS active), in ms."""
    import time

    ctrl = Controller([program] * sessions, fs)
    rng = np.random.default_rng(0)
    probs = np.tile(np.eye(5)[3], (sessions, 1))
    m = round(tick_s * fs)
    times = []
    for k in range(ticks):
        t = k * tick_s + np.arange(m) / fs
        x = 60 * np.cos(2 * np.pi * 0.9 * t)[None, :] + rng.normal(0, 5, (sessions, m))
        t0 = time.perf_counter()
        ctrl.step((k + 1) * tick_s, eeg=x, probs=probs)
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times[10:]) * 1e3
    return {"sessions": sessions, "tick_ms": tick_s * 1e3, "step_ms_p50": round(float(np.median(ms)), 2),
            "step_ms_p95": round(float(np.percentile(ms, 95)), 2)}


def clas_figures(*, nights: int = 3, clients: int = 10, hours: float = 8.0, stager: str = "live",
                 latency_s: float = 0.05, n3_sample: npt.ArrayLike | None = None) -> dict[str, Any]:
    """All CLAS figures in one JSON-ready dict (what ``bench/clas.py`` and ``nexus bench clas`` print).

    ``n3_sample`` is the real N3 EEG at 100 Hz; default: the YASA sample shipped with the tests, when present.
    """
    import time
    from importlib import resources
    from pathlib import Path

    t0 = time.perf_counter()
    out: dict[str, Any] = {"latency_ms": latency_s * 1e3}
    if n3_sample is None:
        here = Path(str(resources.files("nexus"))).parents[1]
        path = here / "tests" / "data" / "yasa-samples" / "data_N3_no-spindles_30sec_100Hz.txt"
        n3_sample = np.loadtxt(path) if path.is_file() else None
    if n3_sample is not None:
        out["phase_real_n3"] = phase_accuracy_real(n3_sample, 100.0, latency_s=latency_s)
    out["phase_synthetic"] = phase_accuracy_synthetic(nights, hours, latency_s=latency_s)
    example = Path(str(resources.files("nexus"))).parents[1] / "examples" / "dreamscapes" / "deep-sleep.yaml"
    from nexus.dreamscape.check import load_program
    from nexus.dreamscape.curator import Intake, curate

    program = load_program(example) if example.is_file() else curate(
        Intake("bench", goals=["deeper_sleep"], consent=["audio", "stimulation", "smart_wake"],
               wake_window=("06:30", "07:00"))).program
    out["closed_loop"] = closed_loop(program, clients, hours, stager=stager)
    out["controller_step"] = controller_step_ms(program)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out
