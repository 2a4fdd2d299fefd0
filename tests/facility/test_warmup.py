"""After warm_up, the live loop compiles nothing: checked in a fresh process.

A numba kernel compiles on its first call for each new signature (dtype, dimensions, memory
layout), or loads that signature from the disk cache when an earlier process compiled it: either
way the signature joins the dispatcher's list only when it is first called in this process, so the
check below holds with the suite's shared cache, and the probe reuses what earlier tests compiled
(with an empty cache of its own it compiled every kernel again: 46 s of a CI run). The probe
below calls :func:`nexus.facility.warmup.warm_up`, records the signatures of
every compiled function in the process, then runs the live computations as the loop does — the
clean filter in place on the block, the live stager on its rows in 4-s pieces, the glitch monitor
and the CLAS phase predictor on live ticks, every event detector with its mask on (as in deep
sleep, where the sleep-gated detectors evaluate) and with one bed in their stages (a single row
evaluated, which takes other filter kernels), and the facility loop itself for a few simulated
seconds, every bed playing its dreamscape — and reports each signature that appeared after the
warm-up. A kernel (or an array layout) missing from the warm-up list shows up there.
"""

import json
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import gc, json, sys
    import numpy as np
    from numba.core.registry import CPUDispatcher

    from nexus.facility.warmup import warm_up

    FS = 256.0
    CH = ("EEG C4-M1", "EOG E1-M2", "EOG E2-M2", "EMG Chin", "ECG", "Acc X", "Acc Y", "Acc Z")
    S = 24  # sessions: not the warm-up's row count, so that only layouts and dtypes matter

    def signatures():
        gc.collect()
        seen = {}
        for d in gc.get_objects():
            if isinstance(d, CPUDispatcher):
                name = f"{d.py_func.__module__}.{d.py_func.__qualname__}"
                seen.setdefault(name, set()).update(str(s) for s in d.signatures)
        return seen

    def new_since(before):
        after = signatures()
        return {k: sorted(v - before.get(k, set())) for k, v in after.items() if v - before.get(k, set())}

    warm_up(FS, CH, S, synthetic=True)
    base = signatures()
    report = {"kernels": sorted(base)}

    # the live computations, fed as the analyzers of the loop feed them
    from nexus.dsp.filters import StatefulFilter, highpass_sos, notch_sos
    from nexus.events.arousals import ArousalStream
    from nexus.events.heart import HeartRateStream
    from nexus.events.movement import MovementStream
    from nexus.events.rems import REMStream
    from nexus.events.slow_waves import SlowWaveStream
    from nexus.events.spindles import SpindleStream
    from nexus.staging.live import LiveStager

    rng = np.random.default_rng(1)
    sos = np.vstack([highpass_sos(0.3, FS, order=1), notch_sos(50.0, FS)])
    clean = StatefulFilter(sos, (S, 5), init="step")
    stager = LiveStager(S, FS, ("eeg", "eog", "emg"), workers=1)
    detectors = [
        (SlowWaveStream(S, FS), 0), (SpindleStream(S, FS), 0), (REMStream(S, FS), [1, 2]),
        (HeartRateStream(S, FS), 4),
    ]
    movement, arousals = MovementStream(S, FS), ArousalStream(S, FS)
    active = np.ones(S, dtype=bool)
    n2 = np.full(S, 2, dtype=np.int64)
    for tick in range(45):  # 45 ticks of 1 s: an epoch closes, every detector evaluates
        block = rng.normal(0.0, 30.0, (S, len(CH), round(FS)))
        rows = block[:, 0:5]
        clean.step(rows, out=rows)
        x = np.take(block, [0, 1, 3], axis=1)
        for a in range(0, x.shape[-1], round(0.5 * FS)):
            stager.push(x[..., a : a + round(0.5 * FS)])
            stager.update()
        for stream, row in detectors:
            stream.step(block[:, row], active)
        movement.step(block[:, [5, 6, 7]])
        arousals.step(block[:, 0], n2, block[:, 3])
    # one bed in the detectors' stages, the others not: a gated detector evaluates a single row
    one = np.zeros(S, dtype=bool)
    one[0] = True
    gated = [(SlowWaveStream(S, FS), 0), (SpindleStream(S, FS), 0), (REMStream(S, FS), [1, 2]),
             (HeartRateStream(S, FS), 4)]
    for tick in range(20):
        block = rng.normal(0.0, 30.0, (S, len(CH), round(FS)))
        for stream, row in gated:
            stream.step(block[:, row], one)
    # the glitch monitor on the raw block, every bed and a subset; the CLAS phase predictor on live ticks
    from nexus.dsp.phase import CausalPhaseEstimator
    from nexus.monitor.live import GlitchMonitor

    mon = GlitchMonitor(S, CH, FS)
    est = CausalPhaseEstimator(S, FS, horizon_s=0.095)
    for tick in range(12):
        block = rng.normal(0.0, 30.0, (S, len(CH), 25))
        mon.step(block, np.arange(S) != tick % 2, (tick + 1) * 25 / FS)
        est.update(block[:, 0])
    report["computations"] = new_since(base)

    # the facility loop itself, a few simulated seconds of a synthetic fleet
    base = signatures()
    from nexus.core.clock import ManualClock
    from nexus.facility.supervisor import Supervisor
    from nexus.sources.synthetic.fleet import SyntheticFleet

    fleet = SyntheticFleet("typical_adult", seeds=range(S), hours=0.1, fs=FS, channels=CH)
    sup = Supervisor(ManualClock())
    from nexus.facility.benchmark import bench_program
    from nexus.sinks.bedside import CountingSink

    sup.add_fleet(fleet, [f"bed-{k}" for k in range(S)], programs=[bench_program()] * S,
                  sinks=[CountingSink() for _ in range(S)])  # every bed plays its dreamscape
    sup.run(40.0, tick_s=0.1)
    sup.close()
    report["loop"] = new_since(base)
    json.dump(report, sys.stdout)
    """
)


@pytest.fixture(scope="module")
def probe():
    """Run the probe in a fresh interpreter (nothing called yet), on the suite's numba cache; its report."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.timeout(660)
def test_warm_up_compiles_every_kernel_of_the_live_computations(probe):
    assert len(probe["kernels"]) >= 10  # filters, stager, model and detector kernels were all built
    assert probe["computations"] == {}


@pytest.mark.slow
@pytest.mark.timeout(660)
def test_facility_loop_compiles_nothing_after_warm_up(probe):
    assert probe["loop"] == {}


def test_a_layout_is_warmed_up_once_per_process():
    from nexus.facility.warmup import warm_up

    channels = ("EEG C4-M1", "EOG E1-M2", "EMG Chin")
    first = warm_up(128.0, channels, 3, events=False)
    assert {"filter", "staging"} <= set(first)  # the steps that apply ran
    assert warm_up(128.0, channels, 3, events=False) == {}  # same layout: nothing to do
    assert warm_up(128.0, channels, 2, events=False) != {}  # another layout (rows) is warmed up
