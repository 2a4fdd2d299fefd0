"""CLAS phase accuracy (synthetic nights and the real YASA N3 sample), closed-loop SO power change and arousals
per 100 clicks (CLAS vs sham on the same synthetic sleepers), and the smart-wake share. Prints one JSON object.
Same library code as ``nexus bench clas``.

The SO power change and the arousals per 100 clicks are model-dependent: the synthetic sleeper's own response
model (``nexus.sources.synthetic.response``) decides how its slow oscillations and arousals answer a click, so
these figures check that the closed loop works end to end; they are not effect sizes measured on people. The
JSON says so in ``closed_loop.model_dependent``.

    .venv/bin/python bench/clas.py [--nights 3] [--clients 10] [--hours 8] [--stager live|oracle]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from nexus.facility.figures import clas_figures

N3_SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "yasa-samples"
N3_SAMPLE = N3_SAMPLE / "data_N3_no-spindles_30sec_100Hz.txt"
MODEL_DEPENDENT = {
    "figures": ["so_power_change_pct_mean", "so_power_change_pct_per_client", "arousals_per_100_clicks"],
    "why": "set by the synthetic sleeper's response model to clicks (nexus.sources.synthetic.response), "
           "not measured on people: they show the closed loop works end to end, not an effect size",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nights", type=int, default=3)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--stager", choices=["live", "oracle"], default="live")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    args = ap.parse_args()
    out = clas_figures(nights=args.nights, clients=args.clients, hours=args.hours, stager=args.stager,
                       latency_s=args.latency_ms / 1e3, n3_sample=np.loadtxt(N3_SAMPLE))
    if isinstance(out.get("closed_loop"), dict):
        out["closed_loop"]["model_dependent"] = MODEL_DEPENDENT
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
