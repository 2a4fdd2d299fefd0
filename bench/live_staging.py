"""Live staging: per-update cost for many sessions, and live-vs-offline agreement on synthetic nights.

1. Cost: a :class:`~nexus.staging.live.LiveStager` for ``--sessions`` sessions (EEG + EOG + EMG at
   256 Hz) is fed 5-s blocks cut from a synthetic night (each session at its own offset); after a
   warm-up, every cycle ``push(5 s) + update()`` is timed. Epoch-closing updates (every 6th) are
   reported apart because they also refresh the running normalisation.
2. Agreement: ``--nights`` synthetic 8-h nights (seeds 1.., profiles below; the normalisation prior
   was made from seeds 1000..) are staged live (all nights batched in one stager, 5-s updates)
   and offline; Cohen's κ live-vs-offline per night, and each against the synthetic truth.

    .venv/bin/python bench/live_staging.py [--sessions 1000] [--cycles 36] [--workers N] [--nights 4] [--hours 8]

The stager splits its sessions over ``--workers`` threads (default one per CPU core); the cost
reports wall time per cycle and, apart, the CPU time of all threads.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np

from nexus.sources.synthetic import synthesize_night
from nexus.staging.live import LiveStager
from nexus.staging.offline import stage_offline

CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG Chin")
PROFILES = ("typical_adult", "older_adult", "insomniac", "teen")


def kappa(a: np.ndarray, b: np.ndarray) -> float:
    ok = (a >= 0) & (b >= 0)
    a, b = a[ok], b[ok]
    po = float(np.mean(a == b))
    pe = sum(float(np.mean(a == k) * np.mean(b == k)) for k in range(5))
    return (po - pe) / (1 - pe)


def cost(n_sessions: int, cycles: int, warmup: int, workers: int | None = None) -> dict:
    night = synthesize_night("typical_adult", hours=1.0, seed=5, channels=CHANNELS)
    fs = night.fs
    blk = int(5 * fs)
    src = night.signals.astype(np.float32)
    offsets = np.random.default_rng(0).integers(0, src.shape[-1] - (warmup + cycles + 1) * blk, n_sessions)
    idx = offsets[:, None] + np.arange(blk)[None, :]
    st = LiveStager(n_sessions, fs, workers=workers)
    push_t, upd_t, closing, cpu_t = [], [], [], []
    for c in range(warmup + cycles):
        block = src[:, idx + c * blk].transpose(1, 0, 2)  # (sessions, channels, samples)
        c0 = time.process_time()
        t0 = time.perf_counter()
        st.push(block)
        t1 = time.perf_counter()
        est = st.update()
        t2 = time.perf_counter()
        c1 = time.process_time()
        if c >= warmup:
            push_t.append(t1 - t0)
            upd_t.append(t2 - t1)
            cpu_t.append(c1 - c0)
            closing.append(est.final)
    total = np.array(push_t) + np.array(upd_t)
    close = np.array(closing)
    return {
        "sessions": n_sessions,
        "fs": fs,
        "workers": len(st._shards),
        "cpu_count": os.cpu_count(),
        "cycles_timed": cycles,
        "push_ms_median": round(1000 * statistics.median(push_t), 1),
        "update_ms_median": round(1000 * statistics.median(upd_t), 1),
        "cycle_ms_median": round(1000 * float(np.median(total)), 1),
        "cycle_ms_p95": round(1000 * float(np.percentile(total, 95)), 1),
        "cycle_ms_epoch_closing_median": round(1000 * float(np.median(total[close])), 1) if close.any() else None,
        "cycle_ms_max": round(1000 * float(total.max()), 1),
        "cycle_cpu_ms_median": round(1000 * statistics.median(cpu_t), 1),  # CPU time of all threads
    }


def agreement(n_nights: int, hours: float) -> dict:
    nights = [
        synthesize_night(PROFILES[i % len(PROFILES)], hours=hours, seed=1 + i, channels=CHANNELS)
        for i in range(n_nights)
    ]
    fs = nights[0].fs
    data = np.stack([n.signals for n in nights])
    st = LiveStager(n_nights, fs, night_hours=hours)
    blk = int(5 * fs)
    t = time.perf_counter()
    for i in range(0, data.shape[-1], blk):
        st.push(data[:, :, i : i + blk])
        st.update()
    live_s = time.perf_counter() - t
    live, _ = st.hypnogram()
    rows = []
    for j, n in enumerate(nights):
        off = stage_offline({"eeg": n.signals[0], "eog": n.signals[1], "emg": n.signals[2]}, fs)
        m = min(live.shape[1], len(off))
        truth = np.asarray(n.truth.stages)[:m]
        rows.append(
            {
                "profile": n.profile.name,
                "seed": n.seed,
                "kappa_live_vs_offline": round(kappa(live[j, :m], off.stages[:m]), 3),
                "agreement_live_vs_offline": round(float(np.mean(live[j, :m] == off.stages[:m])), 3),
                "kappa_live_vs_truth": round(kappa(live[j, :m], truth), 3),
                "kappa_offline_vs_truth": round(kappa(off.stages[:m], truth), 3),
            }
        )
    return {
        "nights": rows,
        "kappa_live_vs_offline_mean": round(float(np.mean([r["kappa_live_vs_offline"] for r in rows])), 3),
        "kappa_live_vs_offline_min": round(float(np.min([r["kappa_live_vs_offline"] for r in rows])), 3),
        "live_seconds_all_nights_batched": round(live_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=36, help="timed 5-s cycles (after 12 warm-up cycles)")
    ap.add_argument("--nights", type=int, default=4)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--workers", type=int, default=None, help="stager threads (default: one per CPU core)")
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--skip-agreement", action="store_true")
    args = ap.parse_args()
    out: dict = {"targets": {"cycle_ms": 50, "kappa_live_vs_offline": 0.8}}
    if not args.skip_cost:
        out["cost"] = cost(args.sessions, args.cycles, warmup=12, workers=args.workers)
    if not args.skip_agreement:
        out["agreement"] = agreement(args.nights, args.hours)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
