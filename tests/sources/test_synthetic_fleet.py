import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.core.clock import ManualClock
from nexus.core.errors import InvalidInputError
from nexus.core.stages import EPOCH_S, Stage
from nexus.sources.synthetic import Fault, SyntheticFleet, SyntheticSource
from nexus.sources.synthetic.response import arousal_probability


def test_fleet_chunk_shape_dtype_and_independent_sessions():
    fleet = SyntheticFleet(["teen", "older_adult", "teen"], [1, 2, 1], hours=0.2)
    x = fleet.next_chunk(300)
    assert x.shape == (3, 10, 300) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], x[2])  # same profile and seed: same sleeper
    assert not np.array_equal(x[0], x[1])
    assert fleet.t == pytest.approx(300 / 256)
    assert fleet.next_chunk(0).shape == (3, 10, 0)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=6))
def test_any_chunking_gives_the_same_samples(sizes):
    total = sum(sizes)
    ref = SyntheticFleet("typical_adult", [3], hours=0.05, dtype=np.float64, channels=("EEG C4-M1", "ECG", "Resp"))
    expected = ref.next_chunk(total)
    fleet = SyntheticFleet("typical_adult", [3], hours=0.05, dtype=np.float64, channels=("EEG C4-M1", "ECG", "Resp"))
    got = np.concatenate([fleet.next_chunk(n) for n in sizes], axis=2)
    np.testing.assert_array_equal(got, expected)


def _first_epoch(fleet, i, stage):
    return float(np.flatnonzero(fleet.stages[i] == stage)[0] * EPOCH_S)


def test_click_on_the_up_state_enlarges_the_next_slow_oscillations():
    fleet = SyntheticFleet("typical_adult", [0], hours=3.0, channels=("EEG C4-M1",))
    t_n3 = _first_epoch(fleet, 0, Stage.N3) + 60
    fleet.next_chunk(round(t_n3 * 256))
    plan = fleet.truth(0, upto=t_n3 + 60).events
    so = plan[(plan.kind == "slow_oscillation") & (plan.onset > t_n3)]
    i = int(np.flatnonzero(np.diff(so.onset.to_numpy()) < 3.0)[0])  # one followed closely by another
    so = so.iloc[i]
    before = fleet.truth(0, upto=so.onset + 8).events
    up_state = so.onset + 0.75 * so.duration  # inside the positive half-wave
    assert fleet.play(0, up_state, "click", 45.0) == "enhanced"
    after = fleet.truth(0, upto=so.onset + 8).events
    nxt = lambda ev: ev[(ev.kind == "slow_oscillation") & (ev.onset > up_state)].amplitude.to_numpy()  # noqa: E731
    assert nxt(after).size >= nxt(before).size + 1  # an evoked slow oscillation
    assert nxt(after).max() >= 1.29 * nxt(before)[:2].min()
    resp = fleet.truth(0, upto=up_state + 1).responses
    assert list(resp.outcome) == ["enhanced", "evoked"]


def test_arousals_are_more_likely_in_light_sleep_and_for_loud_sounds():
    assert arousal_probability(Stage.N1, 55, 0.5, False, "sound") > 3 * arousal_probability(
        Stage.N3, 55, 0.5, False, "sound"
    )
    assert arousal_probability(Stage.N2, 70, 0.5, True, "click") > arousal_probability(Stage.N2, 45, 0.5, True, "click")
    fleet = SyntheticFleet("typical_adult", range(60), hours=4.0, channels=("EEG C4-M1",))
    light = [fleet.play(i, _first_epoch(fleet, i, Stage.N1) + 5, "sound", 52.0) for i in range(60)]
    deep = [fleet.play(i, _first_epoch(fleet, i, Stage.N3) + 5, "sound", 52.0) for i in range(60)]
    assert light.count("arousal") > 2 * max(deep.count("arousal"), 1)


def test_loud_prompt_at_sleep_onset_wakes_the_sleeper():
    fleet = SyntheticFleet("typical_adult", [5], hours=1.0, channels=("EEG C4-M1", "EMG Chin"))
    t = _first_epoch(fleet, 0, Stage.N1) + 2
    fleet.next_chunk(round(t * 256))
    assert fleet.play(0, t, "prompt", 85.0) == "awakening"
    e = int(t // EPOCH_S) + 1
    assert fleet.stages[0, e] == Stage.W
    fleet.next_chunk(60 * 256)
    truth = fleet.truth(0)
    assert truth.stages[e] == Stage.W
    assert "arousal" in set(truth.events.kind)


def test_play_rejects_bad_input():
    fleet = SyntheticFleet("typical_adult", [1], hours=0.1)
    with pytest.raises(InvalidInputError, match="Did you mean 'click'"):
        fleet.play(0, 0.0, "clik", 50)
    with pytest.raises(InvalidInputError, match="session index 3"):
        fleet.play(3, 0.0, "click", 50)


def test_source_streams_with_the_clock_and_skips_dropped_samples():
    clock = ManualClock()
    src = SyntheticSource(
        "bed-1", clock, "typical_adult", seed=2, hours=0.05, faults=[Fault("dropped_samples", "*", 20.0, 5.0)]
    )
    assert src.read() is None
    chunks = []
    while clock.now() < 200:
        clock.advance(4.0)
        while (c := src.read()) is not None:
            chunks.append(c)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert chunks[0].t0 == 0.0 and chunks[0].channels == src.channels and chunks[0].fs == 256.0
    gaps = [(a.t1, b.t0) for a, b in itertools.pairwise(chunks) if abs(b.t0 - a.t1) > 1e-9]
    assert gaps == [(20.0, 25.0)]
    assert sum(c.n_samples for c in chunks) == round(0.05 * 3600 * 256) - 5 * 256
    assert src.truth().n_epochs == 6


def test_live_truth_accessors_match_the_truth_tables():
    fleet = SyntheticFleet(
        ["insomniac", "nightmare_prone"], [1, 2], hours=6.0, channels=("EEG C4-M1",), distress=[0, 2]
    )
    truth = [fleet.truth(i, upto=6 * 3600) for i in range(2)]
    ar = truth[0].events[truth[0].events.kind == "arousal"].iloc[0]
    assert fleet.arousal_active(ar.onset, ar.onset + 1.0)[0]
    assert not fleet.distress_active(0, 6 * 3600)[0]
    d = truth[1].distress.iloc[0]
    assert fleet.distress_active(d.onset + 1, d.onset + 2).tolist() == [False, True]
    assert fleet.stages_at(d.onset).shape == (2,)


def test_fleet_slots_share_one_generation_and_match_single_sources():
    from nexus.sources.synthetic.stream import FleetFeed

    clock = ManualClock()
    fleet = SyntheticFleet(["teen", "insomniac"], [4, 5], hours=0.02, dtype=np.float64)
    feed = FleetFeed(fleet, clock, max_chunk_s=3.0)
    slots = [SyntheticSource.from_fleet(feed, i, f"bed-{i}") for i in range(2)]
    alone = SyntheticSource("bed-1", ManualClock(100.0), "insomniac", seed=5, hours=0.02, max_chunk_s=3.0)
    clock.advance(100.0)
    got = [[], []]
    for _ in range(40):
        for i, s in enumerate(slots):
            if (c := s.read()) is not None:
                got[i].append(c)
    ref = [alone.read() for _ in range(len(got[1]))]
    assert fleet.n_done == round(0.02 * 3600 * 256)
    np.testing.assert_array_equal(np.concatenate([c.data for c in got[1]], 1), np.concatenate([c.data for c in ref], 1))
    assert got[0][-1].session == "bed-0" and [c.seq for c in got[0]] == list(range(len(got[0])))
    with pytest.raises(InvalidInputError, match="fleet slot 2"):
        SyntheticSource.from_fleet(feed, 2, "bed-2")


def test_next_chunk_writes_into_a_given_array():
    a = SyntheticFleet(["teen", "insomniac"], [1, 2], hours=0.05, channels=("EEG C4-M1", "EOG E1-M2", "ECG"))
    b = SyntheticFleet(["teen", "insomniac"], [1, 2], hours=0.05, channels=("EEG C4-M1", "EOG E1-M2", "ECG"))
    night = np.full((2, 3, 1000), np.nan, dtype=np.float32)
    got = b.next_chunk(600, out=night[:, :, 100:700])
    assert np.shares_memory(got, night)
    np.testing.assert_array_equal(night[:, :, 100:700], a.next_chunk(600))
    assert np.isnan(night[:, :, :100]).all() and np.isnan(night[:, :, 700:]).all()
    with pytest.raises(InvalidInputError, match="Invalid 'out'"):
        b.next_chunk(10, out=np.zeros((2, 3, 10)))  # float64 for a float32 fleet


@pytest.mark.parametrize("frame_block", [4_000, 262_144])
def test_a_session_does_not_depend_on_the_rest_of_the_fleet_nor_on_blocking(monkeypatch, frame_block):
    from nexus.sources.synthetic import fleet as fleet_mod

    alone = SyntheticFleet("nightmare_prone", [9], hours=0.02, distress=1).next_chunk(13_000)
    monkeypatch.setattr(fleet_mod, "_FRAME_BLOCK", frame_block)  # other session groups and frame blocks
    many = SyntheticFleet(
        ["teen", "insomniac", "nightmare_prone", "teen", "older_adult"],
        [7, 8, 9, 10, 11],
        hours=0.02,
        distress=[0, 1, 1, 2, 0],
    )
    got = np.concatenate([many.next_chunk(n) for n in (3_000, 1, 9_999)], axis=2)
    np.testing.assert_array_equal(got[2], alone[0])
