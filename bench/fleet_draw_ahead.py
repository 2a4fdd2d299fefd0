"""What the synthetic fleet's frame draw-ahead costs the chunks that pay it. Prints JSON.

Usage: python bench/fleet_draw_ahead.py [--clients 500] [--chunks 600] [--chunk-s 0.25]

A fleet of ``--clients`` sleepers (the night's channels at 100 Hz) is pulled in chunks of ``--chunk-s`` s, as a
live floor's ticks pull it; the thread CPU time of ``SyntheticFleet._draw_frames_ahead`` (the uniform draws of the
synthesis frames, taken ahead) is summed per chunk. Prints how many chunks paid some of it, the median and largest
such payment (ms), and the total. Thread CPU time hardly moves with the machine's load (label figures anyway).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from nexus.facility.simulate import NIGHT_CHANNELS
from nexus.sources.synthetic.fleet import SyntheticFleet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--chunks", type=int, default=600)
    ap.add_argument("--chunk-s", type=float, default=0.25)
    args = ap.parse_args()
    fleet = SyntheticFleet("typical_adult", seeds=range(args.clients), hours=0.5, fs=100.0, channels=NIGHT_CHANNELS)
    n = round(args.chunk_s * fleet.fs)
    for _ in range(40):  # past the first fills
        fleet.next_chunk(n)
    draw = fleet._draw_frames_ahead
    paid = [0.0]

    def timed(*a: Any) -> None:
        t = time.thread_time()
        draw(*a)
        paid[0] += time.thread_time() - t

    fleet._draw_frames_ahead = timed  # type: ignore[method-assign]
    per_chunk = []
    for _ in range(args.chunks):
        paid[0] = 0.0
        fleet.next_chunk(n)
        per_chunk.append(paid[0] * 1e3)
    ms = np.array(per_chunk)
    hit = ms[ms > 0.0]
    print(json.dumps({
        "clients": args.clients,
        "chunks": args.chunks,
        "chunk_s": args.chunk_s,
        "chunks_paying": int(hit.size),
        "per_paying_chunk_ms_median": round(float(np.median(hit)), 2) if hit.size else 0.0,
        "per_paying_chunk_ms_max": round(float(hit.max()), 2) if hit.size else 0.0,
        "total_ms": round(float(ms.sum()), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
