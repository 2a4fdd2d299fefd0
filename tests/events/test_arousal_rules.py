"""The arousal rule pinned on hand-built one-second features, each criterion just inside and just outside.

``_arousal_core`` takes per-second features (fast power, EMG RMS, REM flag, sigma power), so every number
below is chosen by hand: a flat baseline of fast power 1.0 and shifted seconds at ``factor`` times the mean of
the 30 s that end 2 s before them (the documented baseline).
"""

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.events import arousals
from nexus.events.arousals import ArousalParams, ArousalStream, _arousal_core, detect_arousals

N = 120


def _features(n=N):
    fast = np.ones(n)
    emg = np.full(n, np.nan)
    rem = np.zeros(n)
    sigma = np.zeros(n)
    return fast, emg, rem, sigma


def _shift(fast, a, b, factor=4.0):
    """Seconds a..b-1 at ``factor`` times their baseline: the mean of fast power over [t-32, t-2)."""
    for t in range(a, b):
        fast[t] = factor * fast[t - 32 : t - 2].mean()


def _detect(fast, emg=None, rem=None, sigma=None, sleep=None, params=None):
    n = fast.size
    emg = np.full(n, np.nan) if emg is None else emg
    rem = np.zeros(n) if rem is None else rem
    sigma = np.zeros(n) if sigma is None else sigma
    sleep = np.ones(n, dtype=bool) if sleep is None else sleep
    feat = np.stack([fast, emg, rem, sigma])[None]
    ev = _arousal_core(feat, 1.0, sleep[None], params or ArousalParams())
    return [(float(o), float(d)) for o, d in zip(ev.onset, ev.duration, strict=True)], ev


@pytest.mark.parametrize(("factor", "found"), [(3.0, True), (2.99, False)], ids=["ratio-3", "ratio-2.99"])
def test_shift_needs_three_times_the_baseline(factor, found):
    fast = _features()[0]
    _shift(fast, 60, 66, factor)
    got, ev = _detect(fast)
    assert got == ([(60.0, 6.0)] if found else [])
    if found:
        assert ev.extra["fast_ratio"][0] == pytest.approx(factor)


def test_baseline_ends_two_seconds_before():
    fast = _features()[0]
    fast[58] = 2.9  # inside the 2-s gap before second 60 (and no shift itself): not part of its baseline
    _shift(fast, 60, 64, 3.01)
    assert _detect(fast)[0] == [(60.0, 4.0)]
    fast = _features()[0]
    fast[57] = 1.3  # inside the baseline [28, 58) of second 60: mean 1.01, so 3.0 is less than 3 times it
    fast[60:64] = 3.0
    assert _detect(fast)[0] == []


def test_baseline_needs_half_its_window():
    fast = _features()[0]
    fast[17:21] = 4.0  # at 17 the baseline [0, 15) has 15 s (half of 30): scored
    assert _detect(fast)[0] == [(17.0, 4.0)]
    fast = _features()[0]
    fast[16:21] = 4.0  # at 16 only 14 s: no baseline yet, so the run starts at 17
    assert _detect(fast)[0] == [(17.0, 4.0)]


@pytest.mark.parametrize(("length", "found"), [(2, False), (3, True), (15, True), (16, False)],
                         ids=["2s", "3s", "15s", "16s"])
def test_duration_3_to_15_s(length, found):
    fast = _features()[0]
    _shift(fast, 60, 60 + length)
    assert _detect(fast)[0] == ([(60.0, float(length))] if found else [])


def test_one_second_gaps_are_bridged_two_are_not():
    fast = _features()[0]
    _shift(fast, 60, 63)
    _shift(fast, 64, 67)  # 63 stays at the baseline level
    assert _detect(fast)[0] == [(60.0, 7.0)]
    fast = _features()[0]
    _shift(fast, 60, 63)
    _shift(fast, 65, 68)  # two quiet seconds: two candidates, the second too close to the first
    assert _detect(fast)[0] == [(60.0, 3.0)]


@pytest.mark.parametrize(("second", "found"), [(73, True), (72, False)], ids=["10s-apart", "9s-apart"])
def test_ten_seconds_after_an_earlier_candidate(second, found):
    fast = _features()[0]
    _shift(fast, 60, 63)
    _shift(fast, second, second + 4)
    assert _detect(fast)[0] == ([(60.0, 3.0), (float(second), 4.0)] if found else [(60.0, 3.0)])


def test_sigma_rise_is_no_shift():
    fast, _, _, sigma = _features()
    _shift(fast, 60, 65)
    sigma[60:65] = fast[60:65] + 1e-6  # the rise is mostly sigma (a spindle leaking into the bands)
    assert _detect(fast, sigma=sigma)[0] == []
    sigma[60:65] = fast[60:65]  # equal: still a shift
    assert _detect(fast, sigma=sigma)[0] == [(60.0, 5.0)]


@pytest.mark.parametrize(("asleep_from", "found"), [(50, True), (51, False)], ids=["10s-sleep", "9s-sleep"])
def test_ten_seconds_of_sleep_before(asleep_from, found):
    fast = _features()[0]
    _shift(fast, 60, 65)
    sleep = np.arange(N) >= asleep_from
    assert _detect(fast, sleep=sleep)[0] == ([(60.0, 5.0)] if found else [])


def test_a_shift_that_runs_into_wake_is_an_awakening():
    fast = _features()[0]
    _shift(fast, 60, 65)
    sleep = np.ones(N, dtype=bool)
    sleep[64] = False
    assert _detect(fast, sleep=sleep)[0] == []
    sleep[64], sleep[65] = True, False  # wake right after the shift: still an arousal
    assert _detect(fast, sleep=sleep)[0] == [(60.0, 5.0)]


def test_shifts_cut_by_the_end_of_the_data_are_not_scored():
    fast = _features()[0]
    _shift(fast, N - 5, N)
    assert _detect(fast)[0] == []
    fast = _features()[0]
    _shift(fast, N - 6, N - 1)
    assert _detect(fast)[0] == [(N - 6.0, 5.0)]


@pytest.mark.parametrize(("peak", "found"), [(1.5, True), (1.49, False)], ids=["emg-1.5", "emg-1.49"])
def test_rem_needs_an_emg_rise(peak, found):
    fast, emg, rem, _ = _features()
    _shift(fast, 60, 65)
    emg[:] = 1.0
    emg[62] = peak
    rem[:] = 1.0
    got, ev = _detect(fast, emg=emg, rem=rem)
    assert got == ([(60.0, 5.0)] if found else [])
    if found:
        assert ev.extra["emg_ratio"][0] == pytest.approx(1.5)
    assert _detect(fast, emg=emg, rem=np.zeros(N))[0] == [(60.0, 5.0)]  # outside REM the EMG does not matter
    assert _detect(fast, rem=rem)[0] == []  # REM without a chin EMG: not scored


def test_emg_baseline_is_the_30_s_before():
    fast, emg, rem, _ = _features()
    _shift(fast, 60, 65)
    emg[:] = 1.0
    emg[28:58] = 2.0  # the EMG baseline of second 60 is 2.0 now
    emg[61] = 2.9
    rem[:] = 1.0
    assert _detect(fast, emg=emg, rem=rem)[0] == []
    emg[61] = 3.0
    assert _detect(fast, emg=emg, rem=rem)[0] == [(60.0, 5.0)]


def test_rows_are_independent():
    f0, f1 = _features()[0], _features()[0]
    _shift(f0, 60, 65)
    _shift(f1, 40, 44)
    feat = np.stack([np.stack([f, np.full(N, np.nan), np.zeros(N), np.zeros(N)]) for f in (f0, f1)])
    ev = _arousal_core(feat, 1.0, np.ones((2, N), dtype=bool), ArousalParams())
    got = sorted(zip(ev.session.tolist(), ev.onset.tolist(), ev.duration.tolist(), strict=True))
    assert got == [(0, 60, 5), (1, 40, 4)]


def test_trailing_mean_by_hand():
    x = np.arange(10.0)[None]
    m = arousals._trailing_mean(x, 4, 1)  # mean over [t-5, t-1), needs >= 2 values
    assert np.isnan(m[0, :3]).all()
    np.testing.assert_allclose(m[0, 3:], [0.5, 1.0, 1.5, 2.5, 3.5, 4.5, 5.5])


def test_stage_per_second():
    assert arousals._stage_per_second(None, 3, 100.0, 300).tolist() == [2, 2, 2]
    per_sample = np.repeat([1, 3, 4], 100)
    assert arousals._stage_per_second(per_sample, 3, 100.0, 300).tolist() == [1, 3, 4]
    epochs = np.array([2, 4])
    got = arousals._stage_per_second(epochs, 60, 10.0, 600)
    assert got.tolist() == [2] * 30 + [4] * 30


def test_stage_bins_equal_per_sample_bins_and_reset_drops_the_open_bin():
    sb = arousals._StageBins(2, 4)
    sizes, stages = [3, 6, 1, 8, 2], [1.0, 2.0, 3.0, 4.0, 0.0]
    got = [sb.step(np.array([s, s + 1]), n) for n, s in zip(sizes, stages, strict=True)]
    out = np.concatenate(got, axis=1)
    samples = np.concatenate([np.full(n, s) for n, s in zip(sizes, stages, strict=True)])
    expected = samples.reshape(5, 4).sum(axis=1)
    np.testing.assert_array_equal(out[0], expected)
    np.testing.assert_array_equal(out[1], expected + 4)
    assert [g.shape[1] for g in got] == [0, 2, 0, 2, 1]
    assert sb.step(np.array([1.0, 2.0]), 2).shape == (2, 0)  # an open bin of 2 samples
    sb.reset([0])
    tail = sb.step(np.array([2.0, 2.0]), 2)
    np.testing.assert_array_equal(tail[:, 0], [2 * 2.0, 2 * 2.0 + 2 * 2.0])


def test_features_match_parseval():
    fs, a = 256.0, 20.0
    t = np.arange(int(20 * fs)) / fs
    feats = arousals._Features(3, fs)
    eeg = np.stack([a * np.sin(2 * np.pi * 10 * t), a * np.sin(2 * np.pi * 13.5 * t), a * np.sin(2 * np.pi * 22 * t)])
    emg = np.stack([10 * np.sin(2 * np.pi * 50 * t), np.zeros_like(t), 3 + np.zeros_like(t)])
    fast, sigma, emg_rms = feats.step(eeg, emg)
    assert fast.shape == (3, 20)
    s = slice(3, None)  # after the filters settle
    # a sine of amplitude A has mean power A^2 / 2 = 200 µV² in its pass band
    np.testing.assert_allclose(fast[0, s], 200, rtol=0.05)  # 10 Hz: alpha
    np.testing.assert_allclose(fast[2, s], 200, rtol=0.05)  # 22 Hz: beta
    np.testing.assert_allclose(sigma[1, s], 200, rtol=0.05)  # 13.5 Hz: sigma
    assert (sigma[0, s] < 0.6 * fast[0, s]).all() and (fast[1, s] < sigma[1, s]).all()
    np.testing.assert_allclose(emg_rms[0, s], 10 / np.sqrt(2), rtol=0.03)  # RMS of a 50-Hz sine
    np.testing.assert_allclose(emg_rms[1:, s], 0, atol=1e-6)  # flat and constant EMG: no activity


def test_detect_arousals_checks_emg_and_names_the_channel():
    with pytest.raises(InvalidInputError, match="EMG has 10 samples but EEG 20"):
        detect_arousals(np.zeros(20), 256.0, emg=np.zeros(10))
    fs = 64.0
    t = np.arange(int(100 * fs)) / fs
    eeg = np.sin(2 * np.pi * 10 * t) * np.where((t >= 60) & (t < 65), 20.0, 2.0)
    ev = detect_arousals(eeg, fs, channel="C3").events
    assert ev.channel.tolist() == ["C3"] and ev.onset.tolist() == [60.0] and ev.duration.tolist() == [5.0]
    assert np.isnan(ev.emg_ratio.iloc[0])


def test_detect_arousals_scores_rem_from_the_chin_emg_it_is_given():
    # REM epochs; an alpha burst at 60-65 s (fast power 100 x its baseline); a 20-Hz chin EMG of amplitude 2 whose
    # seconds 61 and 62 rise to amplitude `peak`: its RMS ratio to the 30 s before is peak / 2 (RMS A / sqrt 2)
    fs = 64.0
    t = np.arange(int(120 * fs)) / fs
    eeg = np.sin(2 * np.pi * 10 * t) * np.where((t >= 60) & (t < 65), 20.0, 2.0)

    def emg(peak):
        return np.sin(2 * np.pi * 20 * t) * np.where((t >= 61) & (t < 63), peak, 2.0)

    rem = [4, 4, 4, 4]
    ev = detect_arousals(eeg, fs, stages=rem, emg=emg(6.0)).events
    assert ev.onset.tolist() == [60.0] and ev.duration.tolist() == [5.0]
    assert ev.emg_ratio.iloc[0] == pytest.approx(3.0)
    assert detect_arousals(eeg, fs, stages=rem, emg=emg(2.9)).events.empty  # 1.45 < 1.5
    assert detect_arousals(eeg, fs, stages=rem).events.empty  # REM without a chin EMG: not scored
    ev = detect_arousals(eeg, fs, stages=[2, 2, 2, 2], emg=emg(2.0)).events  # N2: the flat EMG does not matter
    assert ev.onset.tolist() == [60.0] and ev.emg_ratio.iloc[0] == pytest.approx(1.0)


def test_detect_arousals_needs_64_hz_and_names_its_kind():
    with pytest.raises(InvalidInputError, match=r"^Invalid value for 'fs': expected >= 64 Hz, got 63.9 Hz\.$"):
        detect_arousals(np.zeros(40 * 64), 63.9)  # the documented minimum rate (fs >= 64)
    res = detect_arousals(np.zeros(40 * 64), 64.0)
    assert res.kind == "arousal" and res.duration_s == 40.0 and res.events.empty


def test_stream_checks_its_input():
    with pytest.raises(InvalidInputError, match="n_sessions"):
        ArousalStream(0, 256.0)
    st = ArousalStream(2, 256.0)
    with pytest.raises(InvalidInputError, match=r"Invalid EEG block shape \(3, 10\): expected \(2, n_samples\)"):
        st.step(np.zeros((3, 10)), np.full(3, 2))


def _onsets(batches, session):
    on = np.concatenate([b.onset for b in batches])
    rows = np.concatenate([b.session for b in batches])
    return on[rows == session].tolist()


def test_stream_reset_forgets_the_previous_client():
    fs, hop = 64.0, 64
    t = np.arange(int(50 * fs)) / fs
    eeg = np.sin(2 * np.pi * 10 * t) * np.where((t >= 24) & (t < 29), 20.0, 2.0)  # alpha burst at 24-29 s
    junk = 50 * np.sin(2 * np.pi * 10 * np.arange(int(40 * fs)) / fs)  # loud alpha: a high baseline

    def run(st, x, stages):
        return [st.step(x[:, i:i + hop], stages) for i in range(0, x.shape[1], hop)]

    for reset in (True, False):
        st = ArousalStream(2, fs)
        run(st, np.stack([junk, np.zeros_like(junk)]), np.array([3, 3]))  # bed 0 loud, bed 1 silent
        if reset:
            st.reset([0, 1])
        got = [*run(st, np.stack([eeg, eeg]), np.array([2, 2])), st.flush()]
        if reset:  # both beds score the new client alike, 40 s later on the stream's clock
            assert _onsets(got, 0) == _onsets(got, 1) == [64.0]
        else:  # without it the loud history of bed 0 hides the burst in its baseline
            assert _onsets(got, 0) == []


def test_power_after_silence_is_a_shift_until_the_baseline_catches_up():
    fast = np.zeros(N)
    fast[40:] = 1.0  # baseline 0 at 40-42 (ratio infinite), then (t - 42) / 30: below 1/3 up to t = 52
    assert _detect(fast)[0] == [(40.0, 13.0)]


def test_detect_arousals_names_the_bad_signal():
    x = np.zeros(int(40 * 64.0))
    bad = x.copy()
    bad[5] = np.nan
    with pytest.raises(InvalidInputError, match="EEG"):
        detect_arousals(bad, 64.0)
    with pytest.raises(InvalidInputError, match="EMG"):
        detect_arousals(x, 64.0, emg=bad)


def test_stream_scores_only_in_sleep():
    fs, hop = 64.0, 64
    t = np.arange(int(50 * fs)) / fs
    eeg = np.sin(2 * np.pi * 10 * t) * np.where((t >= 24) & (t < 29), 20.0, 2.0)
    for stage, expected in ((2, [24.0]), (0, [])):
        st = ArousalStream(1, fs)
        got = [st.step(eeg[None, i:i + hop], np.array([stage])) for i in range(0, eeg.size, hop)]
        assert _onsets([*got, st.flush()], 0) == expected
