"""CPU time of the dreamscape controller's live tick with CLAS on every bed (``Controller.step``, and of it
``Controller._clas``), on synthetic N3-like EEG: slow waves of 0.8-1.2 Hz and ~80 µV with noise and rare
5-mV artefacts, every bed in N3 with the default CLAS program, decided at the end of 0.1-s ticks. CPU time
(``time.thread_time``) per step after ``--warm-s`` seconds; the machine's load average is printed with it.

    .venv/bin/python bench/clas_tick.py [--rows 1000] [--fs 256] [--chunk 25] [--ticks 40] [--warm-s 3]
    .venv/bin/python bench/clas_tick.py --rows 100 --fs 100 --chunk 100 --ticks 20   # nexus simulate's steps

``--save FILE.npz`` keeps the clicks (session, onset) and each step's last phases, to compare two versions
of the code (same clicks, phases to the rounding level).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from nexus.dreamscape.controller import Controller
from nexus.dreamscape.presets import default_clas_program


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--fs", type=float, default=256.0)
    ap.add_argument("--chunk", type=int, default=25, help="samples per step")
    ap.add_argument("--ticks", type=int, default=40, help="steps measured")
    ap.add_argument("--warm-s", type=float, default=3.0, help="seconds run before measuring")
    ap.add_argument("--save", default=None)
    args = ap.parse_args()
    rows, fs, chunk = args.rows, args.fs, args.chunk
    n = int((args.warm_s + args.ticks * chunk / fs) * fs) + chunk
    rng = np.random.default_rng(5)
    t = np.arange(n) / fs
    ph = 2 * np.pi * (0.8 + 0.4 * rng.random((rows, 1))) * t[None, :] + rng.uniform(0, 2 * np.pi, (rows, 1))
    x = 80 * np.cos(ph) * (1 + 0.3 * np.sin(2 * np.pi * t / 13.0))[None, :] + rng.normal(0, 10, (rows, n))
    x[rng.random((rows, n)) < 2e-4] = 5000.0  # artefacts: the envelope's hold
    ctrl = Controller([default_clas_program()] * rows, fs, latency_s=0.08, tick_s=0.1)
    clas_cpu: list[float] = []
    clas = ctrl._clas

    def timed(*a: Any) -> None:
        t0 = time.thread_time()
        clas(*a)
        clas_cpu.append(time.thread_time() - t0)

    ctrl._clas = timed  # type: ignore[method-assign]
    probs = np.tile(np.eye(5)[3], (rows, 1))
    clicks: list[tuple[int, float]] = []
    phases, cpu = [], []
    n_warm = int(args.warm_s * fs) // chunk
    for k in range(n_warm + args.ticks):
        t0 = time.thread_time()
        cmds = ctrl.step((k + 1) * chunk / fs, eeg=x[:, k * chunk : (k + 1) * chunk], probs=probs)
        if k >= n_warm:
            cpu.append(time.thread_time() - t0)
        clicks += [(c.session, c.t) for c in cmds if c.kind == "click"]
        phases.append(ctrl._prev_phase.copy())
    step, cl = np.array(cpu) * 1000, np.array(clas_cpu[-len(cpu):]) * 1000
    print(f"rows={rows} fs={fs:g} chunk={chunk}: step CPU median {np.median(step):.2f} ms (min {step.min():.2f}), "
          f"of which _clas median {np.median(cl):.2f} ms (min {cl.min():.2f}); clicks {len(clicks)}; "
          f"load {os.getloadavg()[0]:.1f}")
    if args.save:
        np.savez(args.save, clicks=np.array(clicks), phases=np.array(phases), cpu=step)


if __name__ == "__main__":
    main()
