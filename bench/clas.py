"""CLAS phase accuracy (synthetic nights and the real YASA N3 sample), closed-loop SO power change and arousals
per 100 clicks (CLAS vs sham on the same synthetic sleepers), and the smart-wake share. Prints one JSON object.

    .venv/bin/python bench/clas.py [--nights 3] [--clients 10] [--hours 8] [--stager live|oracle]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from nexus.dreamscape.check import load_program
from nexus.dreamscape.figures import closed_loop, phase_accuracy_real, phase_accuracy_synthetic

ROOT = Path(__file__).resolve().parents[1]
N3_SAMPLE = ROOT / "tests" / "data" / "yasa-samples" / "data_N3_no-spindles_30sec_100Hz.txt"
PROGRAM = ROOT / "examples" / "dreamscapes" / "deep-sleep.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nights", type=int, default=3)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--stager", choices=["live", "oracle"], default="live")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    args = ap.parse_args()
    out: dict[str, object] = {"latency_ms": args.latency_ms}
    t0 = time.perf_counter()
    out["phase_real_n3"] = phase_accuracy_real(np.loadtxt(N3_SAMPLE), 100.0, latency_s=args.latency_ms / 1e3)
    out["phase_synthetic"] = phase_accuracy_synthetic(args.nights, args.hours, latency_s=args.latency_ms / 1e3)
    out["closed_loop"] = closed_loop(load_program(PROGRAM), args.clients, args.hours, stager=args.stager)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
