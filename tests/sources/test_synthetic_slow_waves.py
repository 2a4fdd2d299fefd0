"""The synthetic sleeper's slow waves are as varied as real N3: amplitude, frequency, trains, riding spindles."""

import numpy as np
import pytest

from nexus.core.stages import EPOCH_S, Stage
from nexus.sources.synthetic.fleet import SyntheticFleet

N_SLEEPERS = 24


@pytest.fixture(scope="module")
def fleet():
    return SyntheticFleet("typical_adult", range(N_SLEEPERS), hours=4.0, channels=("EEG C4-M1",))


def _n3_waves(fleet, i):
    ev = fleet.truth(i, upto=4 * 3600.0).events
    waves = ev[ev.kind.isin(["slow_oscillation", "delta_wave"])]
    ep = (waves.onset // EPOCH_S).astype(int).to_numpy()
    return waves[fleet.stages[i][ep] == Stage.N3], ev


def test_slow_oscillations_are_big_and_delta_waves_small(fleet):
    for i in range(4):
        waves, _ = _n3_waves(fleet, i)
        so = waves[waves.kind == "slow_oscillation"]
        dw = waves[waves.kind == "delta_wave"]
        assert (so.amplitude >= 75).all() and (dw.amplitude < 75).all() and (dw.amplitude >= 10).all()


def test_amplitude_spreads_within_and_between_sleepers(fleet):
    medians, spreads = [], []
    for i in range(N_SLEEPERS):
        waves, _ = _n3_waves(fleet, i)
        if len(waves) < 100:
            continue
        a = waves.amplitude.to_numpy()
        medians.append(np.median(a))
        spreads.append(np.percentile(a, 90) / np.percentile(a, 10))
    assert len(medians) >= N_SLEEPERS // 2
    # between sleepers: some have small slow waves (a median under 75 µV peak to peak), some large ones
    assert min(medians) < 75 and max(medians) > 150 and max(medians) / min(medians) > 2.0
    # within a night: the 90th percentile is at least twice the 10th (real N3: about 2.5-3)
    assert np.median(spreads) > 2.0


def test_frequencies_cover_half_to_one_and_a_half_hertz(fleet):
    waves, _ = _n3_waves(fleet, 0)
    f = waves.frequency.to_numpy()
    assert f.min() < 0.6 and f.max() > 1.4 and ((f >= 0.5) & (f <= 1.5)).all()
    assert 0.1 < np.mean(f > 1.0) < 0.6  # real N3: about one in five above 1 Hz


def test_trains_are_irregular(fleet):
    waves, _ = _n3_waves(fleet, 0)
    on = np.sort(waves.onset.to_numpy())
    gap = np.diff(on)
    gap = gap[gap < 4.0]  # inside a train
    # successive waves do not follow at a fixed rhythm: the interval varies by tens of per cent
    assert np.std(gap) / np.mean(gap) > 0.25
    # and trains break off: some pauses are longer than two typical waves
    assert np.mean(np.diff(on) > 2.5) > 0.05


def test_spindles_ride_on_up_states(fleet):
    waves, ev = _n3_waves(fleet, 0)
    sp = ev[ev.kind == "spindle"].onset.to_numpy()
    starts = waves.onset.to_numpy()
    ends = starts + waves.duration.to_numpy()
    idx = np.searchsorted(starts, sp, side="right") - 1
    inside = (idx >= 0) & (sp < ends[np.maximum(idx, 0)])
    n3_sp = sp[fleet.stages[0][(sp // EPOCH_S).astype(int)] == Stage.N3]
    assert n3_sp.size > 50
    # nearly every N3 spindle sits inside a slow wave (a random onset would land there much less often)
    assert inside[fleet.stages[0][(sp // EPOCH_S).astype(int)] == Stage.N3].mean() > 0.8
