"""One tick's sounds answered in one call (SyntheticFleet.play_many): the same night as one play() call per sound."""

from __future__ import annotations

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.core.stages import EPOCH_S, Stage
from nexus.sources.synthetic import SyntheticFleet

N = 40
CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG")


def _fleet() -> SyntheticFleet:
    return SyntheticFleet("typical_adult", seeds=range(5, 5 + N), hours=1.0, fs=100.0, channels=CHANNELS)


def _ticks(fleet: SyntheticFleet, rng: np.random.Generator, n_ticks: int):
    """Sounds per tick: many beds at once, some twice in a tick, some heard in the past, clicks on up-states."""
    for _ in range(n_ticks):
        m = int(rng.integers(N // 2, 3 * N))
        sess = rng.integers(0, N, m)
        t = fleet.t + rng.uniform(-0.5, 30.0, m)
        kinds = rng.choice(["click", "sound", "prompt"], m).tolist()
        level = rng.uniform(35.0, 80.0, m)
        # clicks on the up-state of the next slow oscillations of a few beds (the 'enhanced' path)
        for s in rng.choice(N, 6, replace=False).tolist():
            so = fleet.truth(s, upto=fleet.t + 30).events
            so = so[(so.kind == "slow_oscillation") & (so.onset > fleet.t)]
            if len(so):
                sess = np.append(sess, s)
                t = np.append(t, so.onset.iloc[0] + 0.75 * so.duration.iloc[0])
                kinds.append("click")
                level = np.append(level, 45.0)
        yield sess, t, kinds, level


def test_play_many_gives_the_night_of_one_play_call_per_sound():
    one, many = _fleet(), _fleet()
    start = 20 * 60 * 100  # 20 min in: some beds asleep, some awake
    np.testing.assert_array_equal(one.next_chunk(start), many.next_chunk(start))
    got_one: list[str] = []
    got_many: list[str] = []
    for sess, t, kinds, level in _ticks(one, np.random.default_rng(4), 12):
        got_one += [one.play(int(s), float(x), k, float(lv)) for s, x, k, lv in zip(sess, t, kinds, level, strict=True)]
        got_many += many.play_many(sess, t, kinds, level)
        np.testing.assert_array_equal(one.next_chunk(100), many.next_chunk(100))
    assert got_many == got_one
    assert set(got_one) == {"none", "arousal", "awakening", "enhanced"}  # every response path was taken
    np.testing.assert_array_equal(one.next_chunk(6000), many.next_chunk(6000))  # the responses played out
    assert many.responses == one.responses and many.awakenings == one.awakenings
    np.testing.assert_array_equal(many.stages, one.stages)
    for s in range(N):
        a, b = one.truth(s), many.truth(s)
        assert a.events.equals(b.events) and a.responses.equals(b.responses)
        np.testing.assert_array_equal(a.stages, b.stages)
        assert one._rng_resp[s].bit_generator.state == many._rng_resp[s].bit_generator.state


def test_each_sound_reaches_its_own_bed_once():
    quiet, fleet = _fleet(), _fleet()
    quiet.next_chunk(1000)
    fleet.next_chunk(1000)
    woken = [3, 17, 18, 31]  # awake at 10 s: a loud prompt wakes them (again) from the next epoch
    assert (fleet.stages[woken, 0] == Stage.W).all()
    out = fleet.play_many(woken, [10.0] * 4, ["prompt"] * 4, [95.0] * 4)
    assert out == ["awakening"] * 4
    assert sorted(s for s, _, _ in fleet.awakenings) == woken  # each bed woken once
    assert [r["session"] for r in fleet.responses] == woken
    x, ref = fleet.next_chunk(3 * 3000), quiet.next_chunk(3 * 3000)
    others = [s for s in range(N) if s not in woken]
    np.testing.assert_array_equal(x[others], ref[others])  # the beds that heard nothing: untouched
    np.testing.assert_array_equal(fleet.stages[others], quiet.stages[others])
    for s in woken:
        assert not np.array_equal(x[s], ref[s])  # arousal movement and chin-EMG bursts
        assert fleet.stages[s, 1] == Stage.W
        ev = fleet.truth(s).events
        (ar,) = ev[ev.kind == "arousal"].itertuples()  # one arousal, 10.3 s to 0.3 s into the next epoch
        assert ar.onset == pytest.approx(10.3) and ar.onset + ar.duration == pytest.approx(EPOCH_S + 0.3)
        assert fleet._rng_resp[s].bit_generator.state != quiet._rng_resp[s].bit_generator.state


def test_play_many_checks_its_input_first():
    fleet = _fleet()
    with pytest.raises(InvalidInputError, match="session index"):
        fleet.play_many([0, N], [1.0, 1.0], ["sound", "sound"], [50.0, 50.0])
    with pytest.raises(InvalidInputError, match="sound kind"):
        fleet.play_many([0, 1], [1.0, 1.0], ["sound", "clik"], [50.0, 50.0])
    with pytest.raises(InvalidInputError, match="level_db"):
        fleet.play_many([0, 1], [1.0, 1.0], ["sound", "sound"], [50.0, 141.0])
    with pytest.raises(InvalidInputError, match="one of each"):
        fleet.play_many([0, 1], [1.0], ["sound", "sound"], [50.0, 50.0])
    assert fleet.responses == [] and fleet.play_many([], [], [], []) == []
