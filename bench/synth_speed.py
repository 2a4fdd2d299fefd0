"""Speed of the synthetic sleeper, on one core. Prints JSON.

Usage: python bench/synth_speed.py [--hours 8] [--batch-hours 1] [--sleepers 100] [--fleet 1000]

* night: one night of ``--hours`` h, 8 channels (EEG x2, EOG x2, EMG, ECG, Resp, Acc X) at 256 Hz
  (target: 8 h in < 15 s).
* batch: ``--sleepers`` nights of ``--batch-hours`` h generated together (SyntheticFleet walked in
  cache-sized blocks by iter_batch, float32) vs a few of the same nights made one at a time with synthesize_night
  (float64); seconds per night each way and their ratio (target: >= 5x).
* stream_1s_chunks: ``--sleepers`` sessions streamed live in 1-s chunks for 60 s, one fleet for all
  vs one single-session fleet each (what batching buys the facility engine).
* fleet: cost of generating 1 s for ``--fleet`` sessions x 10 channels at 256 Hz with
  SyntheticFleet.next_chunk (target: well under 0.3 s), and the set-up time of that fleet.

The process pins itself to CPU 0 and BLAS/OpenMP to one thread before numpy is imported. Times are
CPU seconds of this process (time.process_time), so that a loaded, shared machine inflates them less
than wall-clock time would.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {0})

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--batch-hours", type=float, default=1.0)
    ap.add_argument("--sleepers", type=int, default=100)
    ap.add_argument("--single", type=int, default=5, help="nights made one at a time for the comparison")
    ap.add_argument("--fleet", type=int, default=1000)
    a = ap.parse_args()
    from nexus.sources.synthetic import CHANNELS, SyntheticFleet, iter_batch, synthesize_night

    ch8 = CHANNELS[:8]
    out: dict[str, object] = {
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "n/a"
    }
    t = time.process_time()
    night = synthesize_night("typical_adult", a.hours, 0, channels=ch8)
    out["night"] = {
        "hours": a.hours,
        "channels": len(ch8),
        "fs": 256.0,
        "seconds": round(time.process_time() - t, 2),
        "samples": int(night.signals.size),
    }
    del night

    t = time.process_time()
    for s in range(a.single):
        synthesize_night("typical_adult", a.batch_hours, s, channels=ch8)
    one = (time.process_time() - t) / a.single
    t = time.process_time()
    fleet = SyntheticFleet("typical_adult", range(a.sleepers), hours=a.batch_hours, channels=ch8)
    for _ in iter_batch(fleet):
        pass
    batched = (time.process_time() - t) / a.sleepers
    out["batch"] = {
        "hours_per_night": a.batch_hours,
        "sleepers": a.sleepers,
        "one_at_a_time_s_per_night": round(one, 3),
        "batched_s_per_night": round(batched, 3),
        "speedup": round(one / batched, 2),
    }

    # live streaming in 1-s chunks: one fleet of N sessions vs N one-session fleets
    n, secs = a.sleepers, 60
    fleets = [SyntheticFleet("typical_adult", [s], hours=1.0, channels=ch8) for s in range(n)]
    t = time.process_time()
    for _ in range(secs):
        for f in fleets:
            f.next_chunk(256)
    single = time.process_time() - t
    fleet = SyntheticFleet("typical_adult", range(n), hours=1.0, channels=ch8)
    t = time.process_time()
    for _ in range(secs):
        fleet.next_chunk(256)
    together = time.process_time() - t
    out["stream_1s_chunks"] = {
        "sessions": n,
        "seconds_streamed": secs,
        "one_fleet_per_session_s": round(single, 2),
        "one_fleet_for_all_s": round(together, 2),
        "speedup": round(single / together, 1),
    }
    del fleets

    t = time.process_time()
    fleet = SyntheticFleet("typical_adult", range(a.fleet), hours=8.0)
    setup = time.process_time() - t
    fleet.next_chunk(256)
    times = []
    for _ in range(10):
        t = time.process_time()
        x = fleet.next_chunk(256)
        times.append(time.process_time() - t)
    out["fleet"] = {
        "sessions": a.fleet,
        "channels": x.shape[1],
        "fs": 256.0,
        "setup_s": round(setup, 2),
        "s_per_1s_chunk_median": round(float(np.median(times)), 4),
        "s_per_1s_chunk_max": round(float(np.max(times)), 4),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
