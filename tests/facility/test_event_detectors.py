"""The lane's event analyzers around the real detectors: the stage gate of spindles and slow waves (N2 and N3 only,
once a stager runs), movements (no stage gate, the stream takes no mask) and arousals, and only active beds'
events, each with its lane row."""

import numpy as np
import pytest

from nexus.events.table import EventBatch
from nexus.facility.analyzers import ArousalDetector, movement, slow_waves, spindles
from nexus.facility.pipeline import Lane
from nexus.facility.step import StepContext

FS = 256.0
CHANNELS = ("EEG C4-M1", "EMG chin", "ACC X", "ACC Y", "ACC Z")  # rows 0, 1 and 2-4


def _background(seconds, seed):
    """Pink-ish EEG background, 10 µV RMS."""
    w = np.random.default_rng(seed).normal(0, 1, int(seconds * FS))
    f = np.fft.rfftfreq(w.size, 1 / FS)
    x = np.fft.irfft(np.fft.rfft(w) / np.maximum(f, 0.5) ** 0.8, w.size)
    return 10 * x / x.std()


def _with_spindles(seconds, onsets, seed):
    x = _background(seconds, seed)
    t = np.arange(x.size) / FS
    for o in onsets:  # 1-s, 40-µV, 13-Hz bursts
        m = (t >= o) & (t < o + 1.0)
        x[m] += 40 * np.sin(2 * np.pi * 13 * t[m]) * np.hanning(m.sum())
    return x


def _with_slow_waves(seconds, troughs, seed):
    x = 0.3 * _background(seconds, seed)
    t = np.arange(x.size) / FS
    for tr in troughs:  # one 1-Hz cycle of 60 µV: down-state at tr
        m = (t >= tr - 0.25) & (t < tr + 0.75)
        x[m] += -60 * np.sin(2 * np.pi * (t[m] - tr + 0.25))
    return x


def _run(analyzer, block, *, active, stage, staged=True, step_s=0.5):
    """Feed (slots, channels, samples) in steps; the events of all steps, one batch."""
    n = round(step_s * FS)
    cap = block.shape[0]
    out = []
    for a in range(0, block.shape[-1], n):
        ctx = StepContext(block[..., a:a + n], np.asarray(active, bool), FS, CHANNELS, a, True, staged,
                          np.full((cap, 5), np.nan), np.asarray(stage, np.int64), np.zeros(cap, bool),
                          np.zeros(cap, bool))
        out += analyzer.step(ctx).events
    return EventBatch.concat(out[0].kind, out) if out else None


def _block(cap, eeg, seconds):
    b = np.zeros((cap, len(CHANNELS), int(seconds * FS)))
    b[:, 0] = eeg
    b[:, 4] = 1000.0  # gravity on Z, in milli-g
    return b


def _per_session(ev, cap):
    return [0 if ev is None else int(np.count_nonzero(ev.session == s)) for s in range(cap)]


@pytest.mark.parametrize(
    ("factory", "eeg", "found"),
    [(spindles, _with_spindles(40, [10.0, 22.0], seed=1), 2),
     (slow_waves, _with_slow_waves(30, [5.0, 13.0, 22.0], seed=3), 3)],
    ids=["spindles", "slow_waves"],
)
def test_spindles_and_slow_waves_only_in_n2_and_n3_once_staged(factory, eeg, found):
    """The same signal in five beds staged N2, N3, N1, REM and not yet: only the N2 and N3 beds get the events;
    without a stager the gate is off (all five); an inactive bed gets none."""
    lane = Lane(CHANNELS, FS, 5)
    block = _block(5, eeg, eeg.size / FS)
    ev = _run(factory(lane), block, active=[True] * 5, stage=[2, 3, 1, 4, -2])
    assert _per_session(ev, 5) == [found, found, 0, 0, 0]
    assert set(ev.channel.tolist()) == {0}
    ungated = _run(factory(lane), block, active=[True] * 5, stage=[2, 3, 1, 4, -2], staged=False)
    assert _per_session(ungated, 5) == [found] * 5
    idle = _run(factory(lane), block, active=[True, False, True, True, True], stage=[2] * 5)
    assert _per_session(idle, 5) == [found, 0, found, found, found]


def test_movements_in_any_stage_from_active_beds_only():
    """Beds 0 and 2 move for 6 s from 30 s, bed 1 lies still; bed 2 is not active: one movement, of bed 0, on the
    accelerometer's first row (2), whatever the stage (wake here)."""
    rng = np.random.default_rng(0)
    seconds = 60
    block = _block(3, 0.0, seconds)
    block[:, 2:] += rng.normal(0, 2, block[:, 2:].shape)
    a, b = int(30 * FS), int(36 * FS)
    for s in (0, 2):
        block[s, 2:, a:b] += rng.normal(0, 60, (3, b - a))
    ev = _run(movement(Lane(CHANNELS, FS, 3)), block, active=[True, True, False], stage=[0, 0, 0], step_s=1.0)
    assert (ev.session.tolist(), ev.channel.tolist(), ev.onset.tolist(), ev.duration.tolist()) == (
        [0], [2], [30.0], [6.0])


def test_arousals_of_inactive_beds_are_dropped():
    """Three N2 beds each with a 6-s alpha burst at 60 s after a minute of sleep; bed 1 is not active: the
    arousals of beds 0 and 2 only, one each, at 60 s, on the EEG row."""
    t = np.arange(int(100 * FS)) / FS
    eeg = np.stack([_background(100, seed=s) for s in range(3)])
    m = (t >= 60) & (t < 66)
    eeg[:, m] += 30 * np.sin(2 * np.pi * 10 * t[m])
    block = _block(3, eeg, 100)
    block[:, 1] = np.random.default_rng(4).normal(0, 5, block[:, 1].shape)
    ev = _run(ArousalDetector(Lane(CHANNELS, FS, 3)), block, active=[True, False, True], stage=[2, 2, 2],
              step_s=1.0)
    assert ev.session.tolist() == [0, 2]
    assert ev.channel.tolist() == [0, 0]
    np.testing.assert_allclose(ev.onset, [60.0, 60.0], atol=1.0)
