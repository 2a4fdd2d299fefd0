"""Calibration of the synthetic sleeper's architecture against real expert hypnograms, side by side.

Usage: python bench/synth_calibration.py [--seeds 40] [--profile typical_adult] [--json]

Real: the 39 Sleep-EDF sleep-cassette hypnograms (tests/data, ages 25-34, R&K: S3+S4 -> N3,
movement -> W) and YASA's 6-h sample hypnogram. The Sleep-EDF files hold ~20 h of wake around the
night and no lights-out mark, so every hypnogram (real and synthetic alike) is trimmed to
[first sleep - 15 min, last sleep + 15 min]; SOL is therefore reported for the untrimmed synthetic
nights only. Statistics come from nexus.staging.stats.sleep_statistics (AASM, YASA definitions);
cycles and the share of N3 in the first half of the sleep period are computed here.
Prints median [10th-90th percentile] per metric.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
METRICS = ("TST", "SPT", "%N1", "%N2", "%N3", "%REM", "WASO", "Lat_REM", "cycles", "N3_first_half")


def trim(stages: np.ndarray) -> np.ndarray:
    sleep = np.flatnonzero(np.isin(stages, (1, 2, 3, 4)))
    return stages[max(sleep[0] - 30, 0) : sleep[-1] + 31]


def n_cycles(stages: np.ndarray) -> int:
    """REM periods separated by >= 15 min of other stages (each closes one NREM-REM cycle)."""
    rem = np.flatnonzero(stages == 4)
    if rem.size == 0:
        return 0
    return int(1 + np.count_nonzero(np.diff(rem) > 30))


def metrics(stages: np.ndarray) -> dict[str, float]:
    from nexus.staging.stats import sleep_statistics

    h = trim(np.asarray(stages, dtype=np.int8))
    s = sleep_statistics(h)
    sleep = np.flatnonzero(np.isin(h, (1, 2, 3, 4)))
    spt = h[sleep[0] : sleep[-1] + 1]
    n3 = spt == 3
    out = {k: float(s[k]) for k in METRICS if k in s}
    out["Lat_REM"] = float(s["Lat_REM"]) - float(s["SOL"])  # from sleep onset
    out["cycles"] = float(n_cycles(spt))
    out["N3_first_half"] = float(n3[: spt.size // 2].sum() / max(n3.sum(), 1))
    return out


def summarise(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    return {k: [round(float(np.nanpercentile([r[k] for r in rows], q)), 1) for q in (50, 10, 90)] for k in METRICS}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--profile", default="typical_adult")
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from nexus.formats.hypnogram import read_hypnogram
    from nexus.sources.synthetic import SyntheticFleet

    real = [
        metrics(read_hypnogram(p).stages)
        for p in sorted((DATA / "sleep-edf" / "hypnograms_1Hz_csv").glob("*-PSG.edf.csv"))
    ]
    yasa_sample = metrics(read_hypnogram(DATA / "yasa-samples" / "data_full_6hrs_100Hz_hypno_30s.txt").stages)
    fleet = SyntheticFleet(a.profile, range(a.seeds), hours=a.hours)  # plans only; no signal is generated
    synth = [metrics(st) for st in fleet.stages]
    sol = [float(np.flatnonzero(st != 0)[0] / 2) for st in fleet.stages]
    out = {
        "real_sleep_edf": {"n": len(real), **summarise(real)},
        "yasa_sample_6h": {k: round(v, 1) for k, v in yasa_sample.items()},
        "synthetic": {
            "profile": a.profile,
            "n": a.seeds,
            **summarise(synth),
            "SOL": [round(float(np.percentile(sol, q)), 1) for q in (50, 10, 90)],
        },
    }
    if a.json:
        print(json.dumps(out, indent=2))
        return
    head_real, head_syn = f"Sleep-EDF (n={len(real)})", f"synthetic (n={a.seeds})"
    print(f"{'metric':14s} {head_real:>24s} {head_syn:>24s} {'YASA 6h':>8s}")
    for k in METRICS:
        r, s = out["real_sleep_edf"][k], out["synthetic"][k]
        print(
            f"{k:14s} {r[0]:8.1f} [{r[1]:6.1f}-{r[2]:6.1f}] {s[0]:8.1f} [{s[1]:6.1f}-{s[2]:6.1f}] {yasa_sample[k]:8.1f}"
        )
    s = out["synthetic"]["SOL"]
    print(f"{'SOL (untrim.)':14s} {'n/a (no lights-out)':>24s} {s[0]:8.1f} [{s[1]:6.1f}-{s[2]:6.1f}]")
    print("minutes except %, cycles (count) and N3_first_half (share); median [10th-90th percentile]")


if __name__ == "__main__":
    main()
