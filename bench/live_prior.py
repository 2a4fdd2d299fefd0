"""Make src/nexus/staging/live_prior.json: population quantiles of the live stager's smoothed features.

Runs the live stager over synthetic nights (profiles and seeds below, disjoint from the seeds that
bench/live_staging.py evaluates on), takes for every night the 5/50/95 % quantiles of each smoothed
feature over the whole night, and stores their median across nights.

    .venv/bin/python bench/live_prior.py [--nights 6] [--hours 8]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from nexus.sources.synthetic import synthesize_night
from nexus.staging import live as L
from nexus.staging.live.scaling import _quantiles

CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG Chin")
PROFILES = ("typical_adult", "older_adult", "insomniac", "teen", "typical_adult", "older_adult")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nights", type=int, default=6)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--out", default=str(L.PRIOR_FILE))
    args = ap.parse_args()
    t0 = time.time()
    nights = [
        synthesize_night(PROFILES[i % len(PROFILES)], hours=args.hours, seed=1000 + i, channels=CHANNELS)
        for i in range(args.nights)
    ]
    data = np.stack([n.signals for n in nights])
    with L.LiveStager(len(nights), nights[0].fs, prior={}, workers=1) as st:  # one shard holds every night
        step = int(5 * nights[0].fs)
        for i in range(0, data.shape[-1], step):
            st.push(data[:, :, i : i + step])
            st.update()
    scaling = st._shards[0].scaling
    q = _quantiles(scaling._norm_hist[:, : scaling._norm_len])  # (nights, 2, features, 3)
    med = np.nanmedian(q, axis=0)
    out = {}
    for i, name in enumerate(st._shards[0].blocks.raw_names):
        for j, suffix in enumerate(("c7", "p2")):
            if np.isfinite(med[j, i]).all():
                out[f"{name}_{suffix}"] = [round(float(v), 6) for v in med[j, i]]
    doc = {
        "about": "Median over synthetic nights of the 5/50/95 % quantiles of the live stager's smoothed "
        "features (c7: trailing triangular 8 epochs, p2: mean of 4 epochs). Made by bench/live_prior.py.",
        "nights": [{"profile": n.profile.name, "seed": n.seed, "hours": args.hours} for n in nights],
        "quantiles": out,
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"features": len(out), "nights": len(nights), "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
