"""The live-engine benchmark behind ``nexus bench live``.

:func:`bench_live` runs ``sessions`` synthetic beds in *real time* (a
:class:`~nexus.core.clock.RealClock`, one tick per ``tick_s``) through the supervisor, the batched
pipeline (filters, live stager, event detectors), the closed loop (every bed's dreamscape
controller, its sink and lease) and the recording journal, and reports latency per tick, CPU
use, the commands played, the sample-to-command latency of the CLAS clicks, and whether every
session kept up.

Each bed plays a program curated for deeper sleep (scenes, CLAS in N3, a wake window). The sink
of a bed counts what it is given: looped signals cannot answer a click; with ``live_synth=True``
the synthetic sleepers hear their commands and respond.

By default the beds' signals are generated before the clock starts and replayed in a loop (the
devices are outside the engine, so their cost is not the engine's); ``live_synth=True`` generates
them on the fly inside each tick instead.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.clock import RealClock
from nexus.core.errors import InvalidInputError
from nexus.facility.analyzers import default_analyzers
from nexus.facility.simulate import SIM_CHANNELS
from nexus.facility.supervisor import Supervisor
from nexus.sinks.bedside import BedSink, CountingSink
from nexus.store.recording import RecordingJournal


def bench_program() -> Any:
    """The program every bed of the benchmark plays: curated for deeper sleep, with CLAS and a smart wake."""
    from nexus.dreamscape.curator import Intake, curate

    return curate(Intake("bench", goals=["deeper_sleep", "fall_asleep_faster"],
                         consent=["audio", "stimulation", "smart_wake"], wake_window=("06:30", "07:00"))).program


class LoopedFleet:
    """A pre-generated block of many sessions, replayed in a loop (devices outside the engine)."""

    def __init__(self, data: npt.NDArray[np.floating], fs: float, channels: tuple[str, ...]) -> None:
        self.data = data
        self.fs = fs
        self.channels = channels
        self._pos = 0

    def next_chunk(self, n_samples: int) -> npt.NDArray[np.floating]:
        """The next ``n_samples`` of every session, shape (sessions, channels, samples)."""
        size = self.data.shape[-1]
        idx = (self._pos + np.arange(int(n_samples))) % size
        self._pos = (self._pos + int(n_samples)) % size
        a = int(idx[0]) if idx.size else 0
        if idx.size and a + idx.size <= size:
            return self.data[:, :, a : a + idx.size]
        return self.data[:, :, idx]


def _signals_at(
    n: int, seed: int, start_h: float, loop_s: float, fs: float, channels: tuple[str, ...]
) -> npt.NDArray[np.floating]:
    """``loop_s`` seconds of ``n`` beds cut ``start_h`` hours into the night (≤ 100 distinct sleepers, tiled)."""
    from nexus.sources.synthetic.fleet import SyntheticFleet

    distinct = min(n, 100)
    fleet = SyntheticFleet(
        "typical_adult",
        seeds=range(seed, seed + distinct),
        hours=start_h + loop_s / 3600 + 0.1,
        fs=fs,
        channels=channels,
    )
    skip, step = round(start_h * 3600 * fs), round(60 * fs)
    scratch = np.empty((distinct, len(channels), step), dtype=np.float32)
    while fleet.n_done < skip:
        k = min(step, skip - fleet.n_done)
        fleet.next_chunk(k, out=scratch[:, :, :k])
    data = fleet.next_chunk(round(loop_s * fs))
    return data[np.arange(n) % distinct]


def bench_live(
    sessions: int,
    seconds: float,
    *,
    fs: float = 256.0,
    channels: tuple[str, ...] = SIM_CHANNELS,
    tick_s: float = 0.1,
    events: bool = True,
    record: bool = True,
    live_synth: bool = False,
    loop_s: float = 20.0,
    seed: int = 0,
    start_h: float = 0.0,
    closed_loop: bool = True,
) -> dict[str, Any]:
    """Run the live engine in real time and measure it.

    Parameters
    ----------
    sessions : int
        Number of beds.
    seconds : float
        Length of the run, in seconds of wall-clock time.
    fs : float
        Sampling rate in Hz.
    channels : tuple of str
        Channels per bed.
    tick_s : float
        Tick (chunk) length in seconds.
    events : bool
        Run the event detectors.
    record : bool
        Record raw signals, stages, events and glitches in a temporary journal (deleted after).
    live_synth : bool
        Generate the synthetic signals inside the ticks instead of before.
    loop_s : float
        Seconds of signal generated before the run (replayed in a loop).
    seed : int
        Seed of the first sleeper.
    start_h : float
        Where in the night the looped signals are cut, in hours after lights-out. At 0 the beds
        are awake (sleep-gated detectors such as spindles and slow oscillations stay idle); an
        hour or more in, most beds are asleep and every detector works. Beyond 0, the loop is made
        from at most 100 distinct sleepers, repeated across the beds (seeking costs time).
    closed_loop : bool
        Run every bed's dreamscape (controller, sink, lease); False measures the engine without it.

    Returns
    -------
    dict
        ``sessions, channels, fs, seconds, cpu_percent, latency_ms_p50, latency_ms_p99,
        latency_ms_max (the first second left out), first_tick_ms, samples_dropped, samples_late, samples_missing,
        epochs_staged, events,
        ticks, lag_s, realtime`` (true when no sample was dropped and the engine ended less
        than two ticks behind the clock), plus how the signals were produced.
    """
    from nexus.sources.synthetic.fleet import SyntheticFleet

    n = int(check_number("sessions", sessions, ge=1, le=100_000))
    seconds = check_number("seconds", seconds, gt=0, le=3600, unit="s")
    check_number("tick_s", tick_s, gt=0, le=10, unit="s")
    start_h = check_number("start_h", start_h, ge=0, le=23, unit="h")
    if start_h > 0 and live_synth:
        raise InvalidInputError(
            "A start later in the night needs pre-generated signals: drop --live-synth or use --start-h 0."
        )
    fleet: Any
    if start_h > 0:
        fleet = LoopedFleet(_signals_at(n, seed, start_h, loop_s, fs, tuple(channels)), fs, tuple(channels))
    else:
        fleet = SyntheticFleet(
            "typical_adult", seeds=range(seed, seed + n), hours=max(1.0, seconds / 3600 + 0.1), fs=fs, channels=channels
        )
        if not live_synth:
            fleet = LoopedFleet(fleet.next_chunk(int(min(loop_s, seconds + 1) * fs)), fs, tuple(channels))
    with tempfile.TemporaryDirectory(prefix="nexus-bench-") as tmp:
        journal = RecordingJournal(Path(tmp) / "journal", background_sync=True) if record else None
        clock = RealClock()
        sup = Supervisor(clock, journal=journal,
                         analyzers=default_analyzers(events=events, dreamscape=closed_loop, block_s=tick_s),
                         buffer_s=8.0)
        programs = [bench_program()] * n if closed_loop else None
        sinks: list[BedSink | None] | None = None
        if closed_loop:
            if live_synth:
                from nexus.facility.beds import SleeperSink

                sinks = [SleeperSink(fleet, k, programs[k]) for k in range(n)]  # type: ignore[index]
            else:
                sinks = [CountingSink() for _ in range(n)]
        sup.add_fleet(fleet, [f"bed-{k:05d}" for k in range(n)], programs=programs, sinks=sinks)
        loop = sup.lanes[0].analyzer("dreamscape")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        sup.run(seconds, tick_s=tick_s)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        lag = sup.lag_s()
        renewals = loop.bank.renewals.copy() if closed_loop and loop is not None and hasattr(loop, "bank") else None
        sup.close()
        if journal is not None:
            journal.close()
    warm = max(1, round(1.0 / tick_s))  # the first second warms caches and kernels up
    lat = np.asarray(sup.latencies[warm:] or sup.latencies) * 1000.0
    counts = sup.counts
    return {
        "sessions": n,
        "channels": len(channels),
        "fs": fs,
        "seconds": seconds,
        "tick_ms": round(tick_s * 1000, 1),
        "cpu_percent": round(100.0 * cpu / wall, 1),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "latency_ms_p99": round(float(np.percentile(lat, 99)), 2),
        "latency_ms_max": round(float(lat.max()), 2),
        "first_tick_ms": round(float(sup.latencies[0]) * 1000.0, 2) if sup.latencies else None,
        "samples_dropped": counts.get("dropped", 0),
        "samples_late": counts.get("late", 0),
        "samples_missing": counts.get("missing", 0),
        "samples_processed": counts.get("received", 0),
        "epochs_staged": sup.epochs_staged,
        "events": dict(sorted(sup.event_counts.items())),
        "ticks": sup.ticks,
        "lag_s": round(lag, 3),
        "realtime": bool(counts.get("dropped", 0) == 0 and lag <= 2 * tick_s),
        "stager": bool(sup.lanes[0].staged),
        "recorded": record,
        "signals": "generated live"
        if live_synth
        else f"pre-generated {loop_s if start_h > 0 else min(loop_s, seconds + 1):g} s, looped",
        "start_h": start_h,
        "closed_loop": closed_loop,
        "commands": dict(sorted(sup.recorder.command_counts.items())),
        "clicks": sup.recorder.command_counts.get("click", 0),
        "decisions": sup.recorder.decisions,
        "click_latency_ms_p50": _pct(sup.recorder.click_latency_s, 50),
        "click_latency_ms_p99": _pct(sup.recorder.click_latency_s, 99),
        "leases_renewed_min": None if renewals is None else int(renewals.min()),
        "ticks_with_steps": sup.ticks,
    }


def _pct(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile of latencies in s, in ms (None when there are none)."""
    return round(float(np.percentile(np.asarray(values) * 1e3, q)), 2) if values else None
