"""Offline staging: Nexus against YASA on the same 8-h recording (EEG + EOG + EMG at 256 Hz).

The recording is a synthetic night from the project's synthetic sleeper (``typical_adult``, seed
1), written once as EDF+. Both tools read that EDF the way their users do (Nexus:
``nexus.formats.edf.read_edf`` + ``stage_offline``; YASA: ``mne.io.read_raw_edf`` +
``SleepStaging(...).predict()``) and run in the same invocation of this script:

* fresh: a new Python process per run (import, read, stage), wall time measured by the parent,
  peak memory = the child's ``ru_maxrss``;
* warm: one process per tool, data already in memory, first run discarded, median of the rest;
* agreement and Cohen's κ between the two hypnograms.

Nexus needs its array copy of YASA's classifier (converted once per machine); the script
builds it before timing. Prints one JSON object; ratios > 1 mean Nexus is faster / smaller.

    .venv/bin/python bench/staging.py [--hours 8] [--runs 3] [--edf night.edf]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG Chin")

NEXUS = """
import json, resource, sys, time
t0 = time.perf_counter()
from nexus.formats.edf import read_edf
from nexus.staging.offline import pick_channels, stage_offline
rec = read_edf(sys.argv[1])
ch = pick_channels(rec.labels)
sig = {k: rec.channel(v).data for k, v in ch.items()}
fs = {k: rec.channel(v).fs for k, v in ch.items()}
runs = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    res = stage_offline(sig, fs)
    runs.append(time.perf_counter() - t)
print(json.dumps({"stages": res.stages.tolist(), "runs": runs, "total": time.perf_counter() - t0,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

YASA = """
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
import mne, yasa
raw = mne.io.read_raw_edf(sys.argv[1], preload=True, verbose=False)
runs = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    hyp = yasa.SleepStaging(raw, "EEG C4-M1", eog_name="EOG E1-M2", emg_name="EMG Chin").predict()
    runs.append(time.perf_counter() - t)
codes = {"WAKE": 0, "N1": 1, "N2": 2, "N3": 3, "REM": 4}
print(json.dumps({"stages": [codes[s] for s in hyp.hypno.tolist()], "runs": runs,
                  "total": time.perf_counter() - t0,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def child(code: str, edf: Path, repeats: int) -> tuple[dict, float]:
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(edf), str(repeats)], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - t
    return json.loads(out.stdout.strip().splitlines()[-1]), wall


def kappa(a: np.ndarray, b: np.ndarray) -> float:
    po = float(np.mean(a == b))
    pe = sum(float(np.mean(a == k) * np.mean(b == k)) for k in range(5))
    return (po - pe) / (1 - pe)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--runs", type=int, default=3, help="fresh processes per tool, and warm repeats")
    ap.add_argument("--edf", help="use this EDF (channels EEG C4-M1, EOG E1-M2, EMG Chin) instead")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        edf = Path(args.edf) if args.edf else Path(tmp) / "night.edf"
        if not args.edf:
            from nexus.formats.edf import write_edf
            from nexus.sources.synthetic import synthesize_night

            night = synthesize_night("typical_adult", hours=args.hours, seed=1, channels=CHANNELS)
            rec = night.to_recording()
            write_edf(edf, rec.signals, rec.annotations)
        child(NEXUS, edf, 1)  # builds the array cache of the classifier once (not timed)
        fresh = {"nexus": [], "yasa": []}
        mem = {"nexus": 0, "yasa": 0}
        stages = {}
        for _ in range(args.runs):
            for name, code in (("nexus", NEXUS), ("yasa", YASA)):
                res, wall = child(code, edf, 1)
                fresh[name].append(wall)
                mem[name] = max(mem[name], res["maxrss_kb"])
                stages[name] = np.array(res["stages"])
        warm = {}
        for name, code in (("nexus", NEXUS), ("yasa", YASA)):
            res, _ = child(code, edf, args.runs + 1)
            warm[name] = statistics.median(res["runs"][1:])
    a, b = stages["nexus"], stages["yasa"]
    n = min(a.size, b.size)
    fresh_med = {k: statistics.median(v) for k, v in fresh.items()}
    print(
        json.dumps(
            {
                "recording": {
                    "hours": args.hours,
                    "fs": 256.0,
                    "channels": list(CHANNELS),
                    "epochs": int(n),
                    "source": str(args.edf) if args.edf else "synthetic typical_adult seed 1",
                },
                "fresh_s": {k: round(v, 3) for k, v in fresh_med.items()},
                "warm_s": {k: round(v, 3) for k, v in warm.items()},
                "peak_rss_mb": {k: round(v / 1024, 1) for k, v in mem.items()},
                "agreement": round(float(np.mean(a[:n] == b[:n])), 4),
                "kappa": round(kappa(a[:n], b[:n]), 4),
                "ratios": {
                    "fresh_speedup": round(fresh_med["yasa"] / fresh_med["nexus"], 2),
                    "warm_speedup": round(warm["yasa"] / warm["nexus"], 2),
                    "memory_ratio_yasa_over_nexus": round(mem["yasa"] / mem["nexus"], 2),
                },
                "targets": {"fresh_speedup": 5, "warm_speedup": 10, "agreement": 0.97},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
