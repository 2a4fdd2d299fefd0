"""CPU cost of the batched streaming event detectors, per detector, for N sessions in 100-ms blocks.

Prints one JSON object: CPU milliseconds per session per second of signal for each detector, and
the share of one core all six would take for ``--sessions`` beds. Signals are synthetic sleepers
(nexus.sources.synthetic), tiled across sessions.

    .venv/bin/python bench/events_stream.py [--sessions 1000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from nexus.events.arousals import ArousalStream
from nexus.events.heart import HeartRateStream
from nexus.events.movement import MovementStream
from nexus.events.rems import REMStream
from nexus.events.slow_waves import SlowWaveStream
from nexus.events.spindles import SpindleStream
from nexus.sources.synthetic.night import synthesize_night


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--block-ms", type=float, default=100.0)
    args = ap.parse_args()
    night = synthesize_night("typical_adult", hours=1.0, seed=5)
    fs = night.fs
    # a stretch from the middle of the night, the same for every session (cost does not depend on it)
    a = int(1800 * fs)
    b = a + int(args.seconds * fs)
    sig = {c: np.broadcast_to(night.channel(c)[a:b], (args.sessions, b - a)) for c in night.channels}
    eeg, emg, ecg = sig["EEG C4-M1"], sig["EMG Chin"], sig["ECG"]
    eog = np.stack([sig["EOG E1-M2"], sig["EOG E2-M2"]], axis=1)
    acc = np.stack([sig["Acc X"], sig["Acc Y"], sig["Acc Z"]], axis=1)
    stage = np.full(args.sessions, 2)
    S = args.sessions
    dets = {
        "spindle": (SpindleStream(S, fs), lambda i, j: (eeg[:, i:j],)),
        "slow_oscillation": (SlowWaveStream(S, fs), lambda i, j: (eeg[:, i:j],)),
        "rem": (REMStream(S, fs), lambda i, j: (eog[..., i:j],)),
        "r_peak": (HeartRateStream(S, fs), lambda i, j: (ecg[:, i:j],)),
        "movement": (MovementStream(S, fs), lambda i, j: (acc[..., i:j],)),
        "arousal": (ArousalStream(S, fs), lambda i, j: (eeg[:, i:j], stage, emg[:, i:j])),
    }
    blk = max(1, round(args.block_ms / 1000 * fs))
    out: dict[str, object] = {"sessions": S, "fs": fs, "seconds": args.seconds, "block_ms": args.block_ms}
    per = {}
    worst = {}
    p99 = {}
    first = {}
    for name, (det, args_of) in dets.items():
        steps = []
        events = 0
        for i in range(0, b - a, blk):
            blocks = [np.ascontiguousarray(x) for x in args_of(i, i + blk)]
            t = time.process_time()
            events += len(det.step(*blocks))
            steps.append(time.process_time() - t)
        per[name] = round(1000 * sum(steps) / args.seconds / S, 5)
        first[name] = round(1000 * steps[0], 1)  # first touch of the preallocated buffers
        worst[name] = round(1000 * max(steps[1:]), 1)
        p99[name] = round(1000 * float(np.percentile(steps, 99)), 1)
        out[f"{name}_events"] = events
    out["cpu_ms_per_session_second"] = per
    out["step_ms_p99"] = p99
    out["step_ms_max_after_first"] = worst
    out["step_ms_first"] = first
    out["core_percent_all_detectors"] = round(100 * sum(per.values()) * S / 1000, 1)
    out["machine"] = "shared 2-core machine, loaded by other engineers' work; CPU time (process_time)"
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
