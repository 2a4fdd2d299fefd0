"""A process of N real pylsl outlets, as a ward of LSL amplifiers (for the tests and bench/lsl_ingest.py).

Run: ``python bench/lsl_outlets.py --prefix ward1- --count 32 --seconds 6 [--gen 0] [--clock-ppm 0]``

Each outlet ``<prefix><k:03d>`` (type EEG, source id ``<prefix><k:03d>-sid``) describes its channels
(labels C3, C4, F3, F4, O1, O2, E1, E2 … with type EEG; unit microvolts for even k, millivolts for
odd k) and pushes :func:`samples` in real time, stamped ``t_start + i / fs`` (optionally on a clock
running ``clock_ppm`` fast, or jumping by ``--jump-s`` at ``--jump-at`` s). It prints
``created <t>`` once its outlets exist, ``consumers <n>`` after waiting for recorders
(``--wait-consumers``), ``ready <t_start>`` and ``done <n>`` (samples sent per outlet) when it
stops sending; then it waits to be killed (its outlets stay up) unless ``--exit``.
The samples of outlet k in generation g are reproducible: :func:`samples` (µV, float32).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

LABELS = ("C3", "C4", "F3", "F4", "O1", "O2", "E1", "E2", "Fz", "Cz", "Pz", "Oz", "T3", "T4", "P3", "P4")


def samples(k: int, gen: int, n: int, n_ch: int = 8, seed: int = 0) -> np.ndarray:
    """The first ``n`` samples outlet ``k`` sends in generation ``gen``, shape (n_ch, n), in µV (float32)."""
    rng = np.random.default_rng([seed, gen, k])
    return (rng.standard_normal((n_ch, n)) * 40.0).astype(np.float32)


def unit_of(k: int) -> str:
    """The unit outlet ``k`` declares."""
    return "microvolts" if k % 2 == 0 else "millivolts"


def main(argv: list[str] | None = None) -> int:
    """Create the outlets, send, report; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--first", type=int, default=0, help="index of the first outlet")
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--fs", type=float, default=256.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--gen", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--push-hz", type=float, default=32.0, help="chunks pushed per second")
    ap.add_argument("--clock-ppm", type=float, default=0.0, help="the outlets' clock runs this much fast")
    ap.add_argument("--jump-s", type=float, default=0.0, help="the outlets' clock jumps by this much ...")
    ap.add_argument("--jump-at", type=float, default=0.0, help="... this many seconds after the start")
    ap.add_argument("--exit", action="store_true", help="exit after sending (default: wait to be killed)")
    ap.add_argument("--wait-consumers", type=float, default=0.0,
                    help="wait up to this many seconds until every outlet has a consumer before sending")
    a = ap.parse_args(argv)
    from nexus.sources.lsl import configure_lsl  # the shipped lsl_api.cfg, as the facility reads it

    configure_lsl()
    import pylsl

    outlets = []
    walls = []  # when each outlet came up (Unix s): the bench measures from here to its bed
    for k in range(a.first, a.first + a.count):
        name = f"{a.prefix}{k:03d}"
        info = pylsl.StreamInfo(name, "EEG", a.channels, a.fs, "float32", f"{name}-sid")
        chans = info.desc().append_child("channels")
        for c in range(a.channels):
            ch = chans.append_child("channel")
            ch.append_child_value("label", LABELS[c % len(LABELS)] + ("" if c < len(LABELS) else str(c)))
            ch.append_child_value("type", "EEG")
            ch.append_child_value("unit", unit_of(k))
        outlets.append((k, pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)))
        walls.append(f"{name}={time.time():.3f}")
    n_total = round(a.seconds * a.fs)
    data = {k: samples(k, a.gen, n_total, a.channels, a.seed) for k, _ in outlets}
    for k, _ in outlets:
        if unit_of(k) == "millivolts":
            data[k] = (data[k].astype(np.float64) / 1000.0).astype(np.float32)
    print("walls " + " ".join(walls), flush=True)
    print(f"created {pylsl.local_clock():.6f}", flush=True)
    if a.wait_consumers > 0:  # every sample sent reaches a recorder: none is sent before it listens
        end = time.monotonic() + a.wait_consumers
        for _, out in outlets:
            out.wait_for_consumers(max(0.0, end - time.monotonic()))
        print(f"consumers {sum(out.have_consumers() for _, out in outlets)}", flush=True)
    t_start = pylsl.local_clock() + 0.2
    print(f"ready {t_start:.6f}", flush=True)
    sent = 0
    while sent < n_total:
        now = pylsl.local_clock()
        due = min(n_total, int((now - t_start) * a.fs) + 1) if now >= t_start else 0
        if due > sent:
            i = np.arange(sent, due)
            stamps = t_start + (i / a.fs) * (1.0 + a.clock_ppm * 1e-6)
            if a.jump_s:
                stamps = stamps + np.where(i / a.fs >= a.jump_at, a.jump_s, 0.0)
            ts = stamps.tolist()
            for k, out in outlets:
                out.push_chunk(np.ascontiguousarray(data[k][:, sent:due].T), ts)
            sent = due
        time.sleep(1.0 / a.push_hz)
    print(f"done {sent}", flush=True)
    if not a.exit:
        while True:
            time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
