"""Glitch monitor: detection quality on synthetic nights, false alarms, cost at 1000 beds, real recordings.

Prints one JSON object:

* ``faulty``: nights of the synthetic sleeper with every fault kind (``schedule_faults`` of
  ``FAULT_KINDS``, plus ``flat_line`` and ``implausible_amplitude`` scheduled apart) and two
  distress episodes per night (truth from the generator), streamed through one
  :class:`~nexus.monitor.live.GlitchMonitor` lane in ``--block-s`` blocks as live. Per kind:
  precision (detected episodes that overlap a true one of the same kind and session) and recall
  (true episodes overlapped by a detection), channel agreement for per-channel faults, and the
  detection latency (time raised − true onset, 0 when the glitch was raised before: an alarm already on,
  e.g. a nightmare that begins while the one before it still holds its alarm) p50/p95. The stage
  handed in is the true stage (the live stager is not part of this bench). Arousal storms: every
  other night gets a cluster of ``STORM_AROUSALS`` arousals ``STORM_GAP_S`` apart (the generator's
  own arousals: EMG burst, movement, heart rate); a true storm is
  wherever the generator's arousals (natural and injected)
  number ``storm_count`` or more in ``storm_window_s`` (the monitor's definition), and the monitor
  must find them from the signals alone. Its onset is the arousal that makes it a storm (the
  ``storm_count``-th in the window: no detector can know a storm before it). Arousals are counted as
  the AASM scores them and as the monitor does: an arousal that begins less than ``arousal_gap_s``
  (10 s) after the one before it ended is part of it, not a new one (the AASM asks for 10 s of sleep
  before an arousal; the generator's storm arousals can fall 1-4 s after a natural one); and one
  wholly inside a ``dropped_samples`` fault is not counted (every channel, ECG and accelerometer too,
  reads 0 there: nothing of it was recorded). A true distress episode is one long arousal-like surge
  (heart rate, movement, EMG through it): an arousal that begins inside one, or less than
  ``arousal_gap_s`` after its end, is part of it and not counted (the monitor does the same: see
  :mod:`nexus.monitor.psyche`; the generator's storm of seed 9701 fell on two overlapping nightmares,
  and 10 of its 16 arousals began inside them). ``arousal_storm_all_arousals`` scores the same
  detections against the count of every generated arousal (the definition before).
* ``clean``: nights without faults or distress (natural arousals stay): glitch episodes per
  bed-hour, by kind.
* ``cost``: one step over ``--beds`` beds × 8 channels (EEG×2, EOG×2, EMG, ECG, Resp, Acc Z) at
  256 Hz in 0.1-s blocks: wall and CPU time, median and p99 in ms (signals tiled from a small
  synthetic fleet), with the time of one ``block.sum(axis=-1)`` as a yardstick of the machine's load.
* ``real``: every glitch found in the real recordings of ``tests/data``.

Seeds default to ones never used while the thresholds were set (those were 101-112 and 201-206).
Example: ``nice -n 10 .venv/bin/python bench/glitches.py --hours 8 --nights 8``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nexus.monitor.live import GlitchMonitor
from nexus.monitor.offline import scan_recording, scan_signals
from nexus.monitor.psyche import PsycheParams
from nexus.sources.synthetic import CHANNELS
from nexus.sources.synthetic.faults import EXTRA_FAULT_KINDS, FAULT_KINDS, schedule_faults
from nexus.sources.synthetic.fleet import SyntheticFleet

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
STORM_AROUSALS, STORM_GAP_S = 16, 30.0
COST_CHANNELS = ("EEG C4-M1", "EEG Fpz-Cz", "EOG E1-M2", "EOG E2-M2", "EMG Chin", "ECG", "Resp", "Acc Z")


def _stream(fleet: SyntheticFleet, hours: float, block_s: float) -> list:
    mon = GlitchMonitor(fleet.n_sessions, fleet.channels, fleet.fs, sessions=[str(i) for i in range(fleet.n_sessions)])
    n_total = round(hours * 3600 * fleet.fs)
    step = round(block_s * fleet.fs)
    active = np.ones(fleet.n_sessions, dtype=bool)
    out = []
    done = 0
    while done < n_total:
        n = min(step, n_total - done)
        x = fleet.next_chunk(n)
        done += n
        t = fleet.t
        out += mon.step(x, active, t, stages=fleet.stages_at(max(t - 1e-6, 0.0)))
    out += mon.finish(fleet.t)
    return [g for g in out if g.duration_s is not None]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> bool:
    return a0 < b1 and b0 < a1


def _inject_storms(fleet: SyntheticFleet, hours: float, seeds: list[int]) -> None:
    """A cluster of arousals on every other night, at a random time in the middle half of the night."""
    for i in range(0, len(seeds), 2):
        rng = np.random.default_rng([seeds[i], 31])
        t0 = rng.uniform(0.25, 0.75) * hours * 3600.0
        for k in range(STORM_AROUSALS):
            fleet._arouse(i, t0 + k * STORM_GAP_S + rng.uniform(0.0, 5.0), float(rng.uniform(3.0, 10.0)), rng)


def _storm_truth(
    fleet: SyntheticFleet,
    night: int,
    count: int,
    window_s: float,
    lost: Sequence[tuple[float, float]] = (),
    gap_s: float | None = None,
    surges: Sequence[tuple[float, float]] = (),
) -> list[tuple[float, float]]:
    """Intervals where the generator's arousals number ``count`` or more in the last ``window_s`` seconds.

    Arousals wholly inside one of the ``lost`` intervals (s; samples lost on every channel) are not counted,
    nor, with ``gap_s``, one that begins less than ``gap_s`` s after the end of the one before (the same arousal)
    or of one of the ``surges`` (s; distress episodes: one long arousal-like surge), or inside one of them.
    """
    sel = fleet._arousals.session == night
    order = np.argsort(fleet._arousals.onset[sel])
    on, dur = fleet._arousals.onset[sel][order], fleet._arousals.duration[sel][order]
    seen = np.ones(on.size, dtype=bool)
    for lo, hi in lost:
        seen &= ~((on >= lo) & (on + dur <= hi))
    if gap_s is not None and on.size:
        # distress episodes take part in the chain of ends like arousals, and are not counted themselves
        s_on = np.array([lo for lo, _ in surges], dtype=float)
        s_end = np.array([hi for _, hi in surges], dtype=float)
        all_on, all_end = np.concatenate([on, s_on]), np.concatenate([on + dur, s_end])
        o = np.argsort(all_on, kind="stable")
        ended = np.maximum.accumulate(all_end[o])  # the latest end of an arousal or surge so far
        ok = np.ones(o.size, dtype=bool)
        ok[1:] = all_on[o][1:] - ended[:-1] >= gap_s
        apart = np.empty(o.size, dtype=bool)
        apart[o] = ok
        seen &= apart[: on.size]
    a = on[seen]
    spans = [(float(a[i + count - 1]), float(a[i] + window_s)) for i in range(a.size - count + 1)
             if a[i + count - 1] < a[i] + window_s]
    merged: list[tuple[float, float]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def faulty(seeds: list[int], hours: float, block_s: float) -> dict:
    faults = [
        schedule_faults(FAULT_KINDS, hours, CHANNELS, s)
        + schedule_faults(EXTRA_FAULT_KINDS, hours, CHANNELS, s + 10**6)
        for s in seeds
    ]
    fleet = SyntheticFleet("typical_adult", seeds, hours=hours, faults=faults, distress=2, dtype=np.float64)
    _inject_storms(fleet, hours, seeds)
    t0 = time.perf_counter()
    det = _stream(fleet, hours, block_s)
    wall = time.perf_counter() - t0
    truth: list[tuple[int, str, float, float, str | None]] = []
    truth_all: list[tuple[int, str, float, float, str | None]] = []
    for i in range(len(seeds)):
        tr = fleet.truth(i)
        for o, d, k, c in zip(tr.faults.onset, tr.faults.duration, tr.faults.kind, tr.faults.channel, strict=True):
            truth.append((i, str(k), float(o), float(o + d), None if c == "*" else str(c)))
        for o, d in zip(tr.distress.onset, tr.distress.duration, strict=True):
            truth.append((i, "distress", float(o), float(o + d), None))
        pp = PsycheParams()
        lost = [(float(o), float(o + d)) for o, d, k in zip(tr.faults.onset, tr.faults.duration, tr.faults.kind,
                                                            strict=True) if k == "dropped_samples"]
        surges = [(float(o), float(o + d)) for o, d in zip(tr.distress.onset, tr.distress.duration, strict=True)]
        for lo, hi in _storm_truth(fleet, i, pp.storm_count, pp.storm_window_s, lost, pp.arousal_gap_s, surges):
            truth.append((i, "arousal_storm", lo, hi, None))
        for lo, hi in _storm_truth(fleet, i, pp.storm_count, pp.storm_window_s):
            truth_all.append((i, "arousal_storm_all_arousals", lo, hi, None))
    unmatched = [
        {
            "night": int(g.session),
            "kind": g.kind,
            "channel": g.channel,
            "onset": g.onset_s,
            "duration": g.duration_s,
            "evidence": g.evidence,
        }
        for g in det
        if not any(
            t[0] == int(g.session) and t[1] == g.kind and _overlap(g.onset_s, g.onset_s + g.duration_s, t[2], t[3])
            for t in truth
        )
    ]
    kinds = [*sorted({k for _, k, *_ in truth} | {g.kind for g in det}), "arousal_storm_all_arousals"]
    res = {}
    for kind in kinds:
        tk = [t for t in truth + truth_all if t[1] == kind]
        dk = [g for g in det if g.kind == kind.removesuffix("_all_arousals")]
        tp_det = sum(
            any(int(g.session) == t[0] and _overlap(g.onset_s, g.onset_s + g.duration_s, t[2], t[3]) for t in tk)
            for g in dk
        )
        lat, hits, chan_ok = [], 0, 0
        for t in tk:
            m = [g for g in dk if int(g.session) == t[0] and _overlap(g.onset_s, g.onset_s + g.duration_s, t[2], t[3])]
            if m:
                hits += 1
                first = min(m, key=lambda g: g.evidence["raised_s"])
                lat.append(max(first.evidence["raised_s"] - t[2], 0.0))
                chan_ok += t[4] is None or any(g.channel == t[4] for g in m)
        res[kind] = {
            "true": len(tk),
            "detected": len(dk),
            "precision": round(tp_det / len(dk), 3) if dk else None,
            "recall": round(hits / len(tk), 3) if tk else None,
            "channel_agreement": round(chan_ok / hits, 3) if hits else None,
            "latency_p50_s": round(float(np.percentile(lat, 50)), 1) if lat else None,
            "latency_p95_s": round(float(np.percentile(lat, 95)), 1) if lat else None,
            "latencies_s": sorted(round(float(x), 1) for x in lat),
        }
    lat_all = []
    for t in truth:
        m = [
            g
            for g in det
            if g.kind == t[1] and int(g.session) == t[0] and _overlap(g.onset_s, g.onset_s + g.duration_s, t[2], t[3])
        ]
        if m:
            lat_all.append(max(min(g.evidence["raised_s"] for g in m) - t[2], 0.0))
    return {
        "nights": len(seeds),
        "seeds": seeds,
        "hours": hours,
        "block_s": block_s,
        "wall_s": round(wall, 1),
        "latency_p95_s_all": round(float(np.percentile(lat_all, 95)), 1) if lat_all else None,
        "per_kind": res,
        "unmatched": unmatched,
    }


def clean(seeds: list[int], hours: float, block_s: float) -> dict:
    fleet = SyntheticFleet("typical_adult", seeds, hours=hours, distress=0, dtype=np.float64)
    det = _stream(fleet, hours, block_s)
    by_kind: dict[str, int] = {}
    for g in det:
        by_kind[g.kind] = by_kind.get(g.kind, 0) + 1
    bed_h = len(seeds) * hours
    return {
        "nights": len(seeds),
        "seeds": seeds,
        "bed_hours": bed_h,
        "episodes": len(det),
        "false_alarms_per_bed_hour": round(len(det) / bed_h, 3),
        "by_kind": by_kind,
        "episodes_found": [
            {
                "night": int(g.session),
                "kind": g.kind,
                "channel": g.channel,
                "onset": g.onset_s,
                "duration": g.duration_s,
                "evidence": g.evidence,
            }
            for g in det
        ],
    }


def cost(beds: int, reps: int) -> dict:
    """Wall and CPU time of one step; a plain ``block.sum(axis=-1)`` timed alongside calibrates a busy machine."""
    import os

    fs, block = 256.0, 26
    src = SyntheticFleet("typical_adult", list(range(16)), hours=0.2, channels=COST_CHANNELS, dtype=np.float64)
    base = src.next_chunk(round(60 * fs))  # 16 beds × 60 s
    mon = GlitchMonitor(beds, COST_CHANNELS, fs)
    active = np.ones(beds, dtype=bool)
    idx = np.arange(beds) % 16
    wall, cpu, ref = [], [], []
    for k in range(reps):
        a = (k * block) % (base.shape[-1] - block)
        x = np.ascontiguousarray(base[idx, :, a : a + block])
        t0, c0 = time.perf_counter(), time.process_time()
        mon.step(x, active, (k + 1) * block / fs)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        t0 = time.perf_counter()
        x.sum(axis=-1)
        ref.append(time.perf_counter() - t0)
    w, c, r = (np.array(v[20:]) * 1e3 for v in (wall, cpu, ref))
    return {
        "beds": beds,
        "channels": len(COST_CHANNELS),
        "fs": fs,
        "block_samples": block,
        "steps": int(w.size),
        "wall_median_ms": round(float(np.median(w)), 2),
        "wall_p99_ms": round(float(np.percentile(w, 99)), 2),
        "cpu_median_ms": round(float(np.median(c)), 2),
        "cpu_p99_ms": round(float(np.percentile(c, 99)), 2),
        "reference_block_sum_median_ms": round(float(np.median(r)), 3),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "cpu_cores": os.cpu_count(),
    }


def real() -> dict:
    from nexus.formats.edf import read_edf

    out: dict[str, object] = {}
    for p in sorted((DATA / "sleep-edf").glob("*PSG*.edf")):
        rec = read_edf(p)
        gl, notes = scan_recording(rec)
        out[p.name] = {
            "duration_s": rec.duration,
            "notes": notes,
            "glitches": [
                {
                    "onset": g.onset_s,
                    "duration": g.duration_s,
                    "kind": g.kind,
                    "channel": g.channel,
                    "evidence": g.evidence,
                }
                for g in gl
            ],
        }
    ys = DATA / "yasa-samples"
    arrays = []
    for name, fs in (("data_N2_spindles_15sec_200Hz.txt", 200.0), ("data_N3_no-spindles_30sec_100Hz.txt", 100.0)):
        if (ys / name).exists():
            arrays.append((name, np.loadtxt(ys / name)[None, :], ["EEG"], fs))
    if (ys / "data_EOGs_REM_256Hz.npz").exists():
        z = np.load(ys / "data_EOGs_REM_256Hz.npz")
        arrays.append(("data_EOGs_REM_256Hz.npz", z["data"], ["EOG LOC", "EOG ROC"], float(z["sf"])))
    for name, x, ch, fs in arrays:
        gl = scan_signals(x, ch, fs)
        out[name] = {
            "duration_s": x.shape[-1] / fs,
            "glitches": [
                {
                    "onset": g.onset_s,
                    "duration": g.duration_s,
                    "kind": g.kind,
                    "channel": g.channel,
                    "evidence": g.evidence,
                }
                for g in gl
            ],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--nights", type=int, default=8)
    ap.add_argument("--seed0", type=int, default=7001)
    ap.add_argument("--block-s", type=float, default=0.1)
    ap.add_argument("--beds", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--only", choices=("faulty", "clean", "cost", "real"), action="append")
    a = ap.parse_args()
    parts = a.only or ["faulty", "clean", "cost", "real"]
    res: dict[str, object] = {}
    seeds = list(range(a.seed0, a.seed0 + a.nights))
    if "faulty" in parts:
        res["faulty"] = faulty(seeds, a.hours, a.block_s)
    if "clean" in parts:
        res["clean"] = clean([s + 500 for s in seeds], a.hours, a.block_s)
    if "cost" in parts:
        res["cost"] = cost(a.beds, a.reps)
    if "real" in parts:
        res["real"] = real()
    print(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
