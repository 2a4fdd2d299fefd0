"""The slow-oscillation criteria pinned on hand-built waves, each just inside and just outside its limit.

The criteria apply to the band-passed EEG; here the band-pass is replaced by the identity, so the wave below
*is* the filtered signal and every duration and amplitude is exact: at 100 Hz a negative half-wave of
``n_neg`` samples lasts ``n_neg / 100`` s. The causal down-state tracker is pinned the same way.
"""

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.events import slow_waves
from nexus.events.slow_waves import SlowWaveParams, SlowWaveStream, detect_slow_waves

FS = 100.0
LEAD = 20


@pytest.fixture
def unfiltered(monkeypatch):
    """Detect on the signal as given (the band-pass becomes the identity)."""
    monkeypatch.setattr(slow_waves, "zero_phase_any", lambda x, *sos: [np.asarray(x, dtype=np.float64)] * len(sos))


def _wave(n_neg=50, trough=60.0, n_pos=50, peak=40.0):
    """Positive lead-in, one negative and one positive half-wave, then a negative tail and a positive end."""
    neg = np.full(n_neg, -trough / 2)
    neg[n_neg // 2] = -trough
    pos = np.full(n_pos, peak / 2)
    pos[n_pos // 2] = peak
    return np.r_[np.full(LEAD, 5.0), neg, pos, np.full(20, -5.0), np.full(5, 5.0)]


def _found(x, params=None):
    return len(detect_slow_waves(x, FS, params=params).events)


def test_columns_of_one_wave(unfiltered):
    ev = detect_slow_waves(_wave(n_neg=40, trough=80, n_pos=30, peak=50), FS).events
    assert len(ev) == 1
    e = ev.iloc[0]
    assert e.onset == pytest.approx(0.20) and e.duration == pytest.approx(0.70)
    assert e.neg_peak_s == pytest.approx(0.40) and e.neg_amp_uv == -80
    assert e.pos_peak_s == pytest.approx(0.75) and e.pos_amp_uv == 50
    assert e.ptp_uv == 130
    assert e.slope_uv_s == pytest.approx(130 / 0.35)
    assert e.freq_hz == pytest.approx(1 / 0.70)
    assert e.description == "slow_oscillation" and e.channel == "CH0"


@pytest.mark.parametrize(
    ("wave", "found"),
    [
        ({"n_neg": 30}, True), ({"n_neg": 29}, False), ({"n_neg": 150}, True), ({"n_neg": 151}, False),
        ({"n_pos": 10}, True), ({"n_pos": 9}, False), ({"n_pos": 100}, True), ({"n_pos": 101}, False),
        ({"trough": 40.0}, True), ({"trough": 39.9}, False), ({"trough": 200.0}, True), ({"trough": 200.1}, False),
        ({"peak": 10.0, "trough": 70.0}, True), ({"peak": 9.9, "trough": 70.0}, False),
        ({"peak": 150.0}, True), ({"peak": 150.1}, False),
        ({"trough": 45.0, "peak": 30.0}, True), ({"trough": 45.0, "peak": 29.9}, False),
    ],
    ids=["neg-0.30s", "neg-0.29s", "neg-1.50s", "neg-1.51s", "pos-0.10s", "pos-0.09s", "pos-1.00s", "pos-1.01s",
         "trough-40", "trough-39.9", "trough-200", "trough-200.1", "peak-10", "peak-9.9", "peak-150", "peak-150.1",
         "ptp-75", "ptp-74.9"],
)
def test_each_criterion_just_inside_and_outside(unfiltered, wave, found):
    assert _found(_wave(**wave)) == int(found)


def test_peak_to_peak_upper_limit(unfiltered):
    p = SlowWaveParams(amp_ptp=(75.0, 300.0))
    assert _found(_wave(trough=160.0, peak=140.0), p) == 1
    assert _found(_wave(trough=160.0, peak=140.1), p) == 0


def test_half_waves_cut_by_the_edges_are_no_candidates(unfiltered):
    x = _wave()
    assert _found(x[LEAD:]) == 0  # starts inside the negative half-wave
    assert _found(x[: LEAD + 50 + 30]) == 0  # ends inside the positive half-wave
    assert _found(x[: LEAD + 50 + 50 + 1]) == 1  # one sample of the next negative half-wave closes it


def test_only_in_the_stages_searched_at_the_trough(unfiltered):
    x = _wave()
    st = np.full(x.size, 2)
    st[LEAD + 25] = 1  # the trough's sample is N1
    assert len(detect_slow_waves(x, FS, stages=st).events) == 0
    assert len(detect_slow_waves(x, FS, stages=st, include=(1,)).events) == 1
    st[:] = 1
    st[LEAD + 25] = 3  # only the trough's sample counts
    assert len(detect_slow_waves(x, FS, stages=st).events) == 1


def test_a_hypnogram_of_30_s_epochs_is_spread_over_their_samples(unfiltered):
    x = np.full(int(60 * FS), 5.0)  # two epochs; the same wave in each, its trough at 10.45 s and at 40.45 s
    w = _wave()
    x[1000:1000 + w.size] = w
    x[4000:4000 + w.size] = w
    assert detect_slow_waves(x, FS, stages=[1, 2]).events.onset.tolist() == [pytest.approx(40.2)]
    assert detect_slow_waves(x, FS, stages=[3, 1]).events.onset.tolist() == [pytest.approx(10.2)]


def test_channels_are_rows(unfiltered):
    x = np.stack([np.zeros(_wave().size), _wave()])
    ev = detect_slow_waves(x, FS, ch_names=["Fz", "Cz"]).events
    assert ev.channel.tolist() == ["Cz"]
    with pytest.raises(InvalidInputError, match="Got 1 channel names for 2 channels"):
        detect_slow_waves(x, FS, ch_names=["Fz"])


@pytest.mark.parametrize("bad", [{"dur_neg": (1.5, 0.3)}, {"amp_neg": (-1.0, 200.0)}, {"freq": (1.0, 1.0)}],
                         ids=["reversed", "negative", "empty"])
def test_params_are_checked(bad):
    name = next(iter(bad))
    with pytest.raises(InvalidInputError, match=f"Invalid value for '{name}': expected \\(min, max\\)"):
        SlowWaveParams(**bad)
    assert SlowWaveParams(amp_pos=(0.0, 1.0)).amp_pos == (0.0, 1.0)


class _Identity:
    """A stand-in for the causal band-pass: passes the signal through, records resets."""

    resets: list = []

    def __init__(self, sos, shape, init=None):
        pass

    def step(self, x):
        return np.array(x, dtype=np.float64)

    def reset(self, idx):
        _Identity.resets.append(list(np.asarray(idx)))


@pytest.fixture
def causal_identity(monkeypatch):
    _Identity.resets = []
    monkeypatch.setattr(slow_waves, "StatefulFilter", _Identity)


def test_a_fresh_stream_has_no_down_state_and_a_boolean_new_mask():
    ds = SlowWaveStream(3, FS).down_states
    assert np.isnan(ds.time).all() and np.isnan(ds.amp_uv).all() and ds.value_uv.tolist() == [0.0] * 3
    assert ds.new.dtype == np.bool_ and not ds.new.any()
    assert np.arange(3)[ds.new].size == 0  # usable as a mask of beds before the first block


def test_down_state_is_confirmed_by_the_next_sample(causal_identity):
    sw = SlowWaveStream(2, FS)
    sw.step(np.array([[0.0, -10.0, -50.0], [0.0, 0.0, 0.0]]))
    ds = sw.down_states
    assert not ds.new.any() and np.isnan(ds.time).all()  # -50 is the last sample: not yet a trough
    sw.step(np.array([[-30.0, 0.0, -45.0, -45.0, -41.0], [0.0] * 5]))
    assert ds.new.tolist() == [True, False]
    assert ds.time[0] == pytest.approx(5 / FS)  # the latest trough: the first sample of the -45 plateau
    assert ds.amp_uv[0] == -45.0
    assert ds.value_uv.tolist() == [-41.0, 0.0]
    assert np.isnan(ds.time[1]) and np.isnan(ds.amp_uv[1])
    sw.step(np.array([[-20.0, -20.0], [0.0, 0.0]]))
    assert not ds.new.any() and ds.time[0] == pytest.approx(5 / FS)  # kept until the next one


def test_down_state_threshold_is_strict():
    for thr, amp, found in ((40.0, -40.0, False), (40.0, -40.01, True), (30.0, -35.0, True), (30.0, -29.0, False)):
        mp = pytest.MonkeyPatch()
        mp.setattr(slow_waves, "StatefulFilter", _Identity)
        try:
            sw = SlowWaveStream(1, FS, down_threshold_uv=thr)
            sw.step(np.array([[0.0, amp, 0.0]]))
            assert bool(sw.down_states.new[0]) is found
        finally:
            mp.undo()


def test_down_state_mask(causal_identity):
    x = np.array([[0.0, -50.0, 0.0, -60.0, 0.0, 0.0]] * 2)
    sw = SlowWaveStream(2, FS)
    sw.step(x, np.array([True, False]))
    assert sw.down_states.new.tolist() == [True, False]
    assert sw.down_states.time[0] == pytest.approx(3 / FS)
    sw = SlowWaveStream(2, FS)
    m = np.ones((2, 6), dtype=bool)
    m[0, 3] = False  # the -60 trough's own sample is outside the mask: the earlier one is the latest
    m[1, 1] = False
    sw.step(x, m)
    assert sw.down_states.time.tolist() == [pytest.approx(1 / FS), pytest.approx(3 / FS)]


def test_down_state_reset_and_three_axis_blocks(causal_identity):
    sw = SlowWaveStream(2, FS)
    sw.step(np.array([[[0.0, -50.0, 0.0]], [[0.0, -50.0, 0.0]]]))  # (sessions, 1 channel, samples)
    assert sw.down_states.new.all()
    sw.step(np.array([[0.0, -70.0], [0.0, -70.0]]))  # -70 waits for its next sample
    sw.reset([1])
    assert _Identity.resets == [[1]]
    assert np.isnan(sw.down_states.time[1]) and np.isnan(sw.down_states.amp_uv[1])
    assert sw.down_states.time[0] == pytest.approx(1 / FS)
    sw.step(np.array([[-60.0, 0.0], [-60.0, 0.0]]))
    # bed 0 still holds the -70: confirmed now by the -60 after it; bed 1 forgot it, so its trough is the -60
    assert sw.down_states.new.tolist() == [True, True]
    assert sw.down_states.time.tolist() == [pytest.approx(4 / FS), pytest.approx(5 / FS)]
    assert sw.down_states.amp_uv.tolist() == [-70.0, -60.0]


def test_rate_and_input_checks():
    assert SlowWaveStream(1, 10.0).fs == 10.0
    with pytest.raises(InvalidInputError, match="'fs'"):
        SlowWaveStream(1, 9.9)
    bad = np.zeros(1000)
    bad[3] = np.inf
    with pytest.raises(InvalidInputError, match="EEG"):
        detect_slow_waves(bad, FS)


def test_stream_confirms_waves_only_inside_the_mask(unfiltered):
    x = np.tile(_wave(), 12)[None]  # 12 waves in 14.4 s
    for allowed, expected in ((True, 12), (False, 0)):
        sw = SlowWaveStream(1, FS)
        got = [sw.step(x[:, i:i + 50], np.array([allowed])) for i in range(0, x.shape[1], 50)]
        got.append(sw.flush())
        assert sum(g.onset.size for g in got) == expected


def test_slope_when_trough_and_peak_are_neighbours(unfiltered):
    x = _wave()
    x[LEAD : LEAD + 50] = -30.0
    x[LEAD + 49] = -60.0  # the trough is the last negative sample ...
    x[LEAD + 50 : LEAD + 100] = 20.0
    x[LEAD + 50] = 40.0  # ... and the peak the first positive one
    e = detect_slow_waves(x, FS).events.iloc[0]
    assert e.ptp_uv == 100.0 and e.slope_uv_s == pytest.approx(100.0 * FS)  # over one sample
