"""CLAS phase accuracy on real EEG and on synthetic nights, through the dreamscape controller. Prints JSON.

Each recording is replayed causally through :class:`~nexus.dreamscape.controller.Controller` (``step`` with 1-s
EEG chunks and one-hot stage probabilities from the expert hypnogram), as ``nexus dreamscape clas-replay`` does.
The stage of the epoch being recorded is given (an oracle stager: the real excerpts are a single epoch or less,
so waiting for the end of the epoch would leave nothing to replay). The truth is the offline phase at each click
onset: zero-phase 0.5–2 Hz Butterworth band-pass + Hilbert transform (:func:`~nexus.dsp.phase.reference_phase`).
Figures: circular mean and SD of that phase (0° = up-state peak), the share inside the 90° up-state window
(|phase| <= 45°), click count, and the offline envelope at the clicks (how many land on small waves).

Real recordings (skipped when missing; the ones used are named in the output):

* ``yasa N3`` — 30 s of expert-scored N3 (YASA sample, 100 Hz), whole excerpt N3;
* ``yasa N2 (run as N3)`` — 15 s of N2 with spindles (200 Hz), replayed as if staged N3: a stress test of the
  gating on spindles and smaller waves (the expert stage is N2, so a real replay would give no click at all);
* ``sleep-edf SC4001 first 5 min`` — 300 s of Fpz-Cz, expert-scored W: must give no click.

The real N3 excerpt holds only ~30 slow waves, so besides the replay from its start the script pools replays that
start 0.0, 0.5, …, 4.5 s into it (each a different, overlapping set of trains; the clicks are not independent).

    .venv/bin/python bench/clas_real.py [--nights 3] [--hours 8] [--latency-ms 50] [--seed 100]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import signal

from nexus.core.stages import EPOCH_S
from nexus.dreamscape.controller import Controller
from nexus.dreamscape.schema import Clas, Limits, Program, Scene
from nexus.dsp.phase import circular_stats, reference_band, reference_phase

ROOT = Path(__file__).resolve().parents[1]
DATA_DIRS = (ROOT / "tests" / "data", ROOT.parent / "shared" / "data")
EEG_CHANNEL = "EEG C4-M1"


def _find(rel: str) -> Path | None:
    for d in DATA_DIRS:
        p = d / rel
        if p.is_file():
            return p
    return None


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT.parent))


def clas_program(**clas: Any) -> Program:
    """A program that only runs CLAS (default settings) in N3, without a per-night cap, so that every N3 epoch of a
    synthetic night is evaluated (the default cap is 600 clicks)."""
    return Program(dreamscape=1, name="CLAS only", scenes={"deep": Scene(clas=Clas(**{"max_per_night": 5000, **clas}))},
                   rules={"N3": "deep"}, limits=Limits(max_stim_per_min=60.0))


def replay(x: npt.NDArray[np.float64], fs: float, stages: npt.ArrayLike, *, latency_s: float,
           step_s: float = 1.0) -> tuple[npt.NDArray[np.float64], list[dict[str, Any]]]:
    """Click onsets (s) of one causal CLAS run over ``x`` (one-hot probabilities of the current epoch's stage)."""
    st = np.asarray(stages, dtype=int).ravel()
    ctrl = Controller([clas_program()], fs, latency_s=latency_s)
    step = max(1, round(step_s * fs))
    onsets: list[float] = []
    for a in range(0, x.size, step):
        chunk = x[a : a + step]
        t1 = (a + chunk.size) / fs
        e = min(int((t1 - 1e-9) // EPOCH_S), st.size - 1)
        p = np.eye(5)[st[e]] if 0 <= st[e] <= 4 else np.full(5, np.nan)
        onsets += [c.t for c in ctrl.step(t1, eeg=chunk[None, :], probs=p[None, :]) if c.kind == "click"]
    inputs = [d.inputs for d in ctrl.decisions if d.kind == "click"]
    return np.asarray(onsets, dtype=float), inputs


def truth_at(x: npt.NDArray[np.float64], fs: float, onsets: npt.NDArray[np.float64]
             ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Offline reference phase (rad) and envelope (µV) at each onset (onsets past the end are dropped)."""
    idx = np.round(onsets * fs).astype(int)
    idx = idx[(idx >= 0) & (idx < x.size)]
    ph = reference_phase(x, fs)
    env = np.abs(signal.hilbert(reference_band(x, fs)))
    return ph[idx], env[idx]


def summary(phases: npt.NDArray[np.float64], envs: npt.NDArray[np.float64]) -> dict[str, Any]:
    """Circular mean, SD, share in the 90° window, count, and the envelope at the clicks."""
    s = circular_stats(phases, window=np.pi / 4)

    def num(v: float, nd: int = 1) -> float | None:
        return round(float(v), nd) if np.isfinite(v) else None

    out: dict[str, Any] = {"clicks": s["n"], "mean_deg": num(s["mean_deg"]), "sd_deg": num(s["sd_deg"]),
                           "in_90deg_window": num(s["in_window"], 3)}
    if envs.size:
        out["envelope_uv_p10_p50"] = [num(np.percentile(envs, 10)), num(np.percentile(envs, 50))]
        out["share_envelope_below_30uv"] = num(np.mean(envs < 30.0), 3)
    return out


def _one(x: npt.NDArray[np.float64], fs: float, stages: npt.ArrayLike, latency_s: float,
         offsets: tuple[float, ...] = (0.0,)) -> dict[str, Any]:
    phs, envs = [], []
    for off in offsets:
        a = round(off * fs)
        y = x[a:]
        on, _ = replay(y, fs, stages, latency_s=latency_s)
        ph, env = truth_at(y, fs, on)
        phs.append(ph)
        envs.append(env)
    return summary(np.concatenate(phs), np.concatenate(envs))


def real_figures(latency_s: float) -> dict[str, Any]:
    """Figures on the real excerpts that are present."""
    out: dict[str, Any] = {}
    p = _find("yasa-samples/data_N3_no-spindles_30sec_100Hz.txt")
    if p is not None:
        x = np.loadtxt(p)
        out["yasa N3"] = {"file": _rel(p), "seconds": x.size / 100.0,
                          "from_start": _one(x, 100.0, [3], latency_s),
                          "pooled_10_starts": _one(x, 100.0, [3], latency_s, tuple(np.arange(10) * 0.5))}
    p = _find("yasa-samples/data_N2_spindles_15sec_200Hz.txt")
    if p is not None:
        x = np.loadtxt(p)
        out["yasa N2 (run as N3)"] = {"file": _rel(p), "seconds": x.size / 200.0,
                                      "from_start": _one(x, 200.0, [3], latency_s)}
    p = _find("sleep-edf/SC4001E0-PSG_first5min.edf")
    if p is not None:
        from nexus.formats.edf import read_edf

        rec = read_edf(p)
        sig = next(s for s in rec.signals if "Fpz" in s.label)
        x = np.asarray(sig.data, dtype=float)
        out["sleep-edf SC4001 first 5 min (W)"] = {"file": _rel(p),
                                                   "seconds": x.size / sig.fs,
                                                   "from_start": _one(x, sig.fs, [0] * 10, latency_s)}
    return out


def synthetic_figures(nights: int, hours: float, seed: int, latency_s: float, fs: float = 100.0) -> dict[str, Any]:
    """Figures over synthetic nights, staged by their true hypnogram."""
    from nexus.sources.synthetic.night import synthesize_night

    phs, envs = [], []
    for k in range(nights):
        night = synthesize_night("typical_adult", hours=hours, seed=seed + k, fs=fs, channels=(EEG_CHANNEL,))
        x = night.channel(EEG_CHANNEL)
        on, _ = replay(x, fs, night.stages, latency_s=latency_s)
        ph, env = truth_at(x, fs, on)
        phs.append(ph)
        envs.append(env)
    out = summary(np.concatenate(phs), np.concatenate(envs))
    out.update({"nights": nights, "hours": hours, "seeds": [seed + k for k in range(nights)]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nights", type=int, default=3)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    lat = args.latency_ms / 1e3
    out: dict[str, Any] = {"latency_ms": args.latency_ms, "real": real_figures(lat),
                           "synthetic": synthetic_figures(args.nights, args.hours, args.seed, lat)}
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
