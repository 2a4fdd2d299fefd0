"""Realism of the synthetic sleeper judged from outside: YASA's pre-trained SleepStaging vs the truth.

Usage: python bench/synth_realism.py [--seeds 10] [--hours 8] [--profile typical_adult] [--json]
Prints per-seed Cohen's kappa and accuracy, and the mean (target: mean kappa >= 0.70).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def yasa_kappa(night) -> tuple[float, float, np.ndarray]:
    """Stage ``night`` with YASA (C4-M1, E1-M2, chin EMG; age/sex from the profile): kappa, accuracy, hypnogram."""
    import logging

    import mne
    import yasa
    from sklearn.metrics import cohen_kappa_score

    logging.getLogger("yasa").setLevel(logging.ERROR)
    names = ["EEG C4-M1", "EOG E1-M2", "EMG Chin"]
    data = np.stack([night.channel(c) for c in names]) * 1e-6
    info = mne.create_info(names, night.fs, ["eeg", "eog", "emg"], verbose=False)
    raw = mne.io.RawArray(data, info, verbose=False)
    sls = yasa.SleepStaging(
        raw, eeg_name=names[0], eog_name=names[1], emg_name=names[2], metadata=night.profile.metadata
    )
    pred = sls.predict()
    codes = {"W": 0, "WAKE": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4, "REM": 4}
    p = np.array([codes[str(x)] for x in np.asarray(pred.hypno)])
    t = night.stages[: p.size]
    p = p[: t.size]
    return float(cohen_kappa_score(t, p)), float(np.mean(t == p)), p


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--profile", default="typical_adult")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from nexus.sources.synthetic import synthesize_night

    rows = []
    for seed in range(a.seeds):
        t0 = time.perf_counter()
        night = synthesize_night(a.profile, a.hours, seed, channels=("EEG C4-M1", "EOG E1-M2", "EMG Chin"))
        k, acc, _ = yasa_kappa(night)
        rows.append(
            {
                "seed": seed,
                "kappa": round(k, 3),
                "accuracy": round(acc, 3),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        if not a.json:
            print(f"seed {seed:3d}  kappa {k:.3f}  accuracy {acc:.3f}")
    mean = float(np.mean([r["kappa"] for r in rows]))
    out = {
        "profile": a.profile,
        "hours": a.hours,
        "n_seeds": a.seeds,
        "mean_kappa": round(mean, 3),
        "min_kappa": min(r["kappa"] for r in rows),
        "per_seed": rows,
    }
    print(json.dumps(out, indent=None if not a.json else 2))


if __name__ == "__main__":
    main()
