"""Psyche detectors' rules pinned on small signals with answers derived by hand (beats, breaths, reset, evidence).

The detectors are driven directly (:class:`PsycheState`), one window = 1 s at 100 Hz, with features built from the
signal of each window (mean, standard deviation, mean absolute first difference per channel).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from psyche_windows import window_features

from nexus.monitor.psyche import PsycheParams, PsycheState, distress_evidence

FS = 100.0
W = 100  # samples per window (1 s)
NO = np.zeros(0, dtype=np.int64)


def _drive(st: PsycheState, x: np.ndarray, rows: np.ndarray | None = None, t0: float = 0.0) -> list[dict]:
    """Feed ``x`` window by window (one block per window); the window outputs."""
    rows = np.arange(x.shape[0]) if rows is None else rows
    out = []
    for a in range(0, x.shape[-1], W):
        st.add_block(x[:, :, a : a + W], rows)
        out.append(st.window(window_features(x[:, :, a : a + W], t0 + a / FS, rows)))
    return out


def _square_breaths(edges: list[float], seconds: float, amp: float = 200.0) -> np.ndarray:
    """A respiration trace: low (-amp) before the first onset, then from each breath onset (a rising edge, s) high
    for the first half of the interval to the next onset and low for the second half."""
    n = round(seconds * FS)
    r = np.full(n, -amp)
    ends = [*edges[1:], seconds]
    for e, nxt in zip(edges, ends, strict=True):
        r[round(e * FS) : round((e + (nxt - e) / 2) * FS)] = amp
    return r


# breaths every 4 s (15/min) from 2 s to 58 s, then one of 3 s (20/min) and every 2 s (30/min) from 61 s
EDGES = [*np.arange(2.0, 59.0, 4.0).tolist(), *np.arange(61.0, 120.0, 2.0).tolist()]


def _spikes(times_s: list[float], n: int) -> np.ndarray:
    """An ECG whose R waves are one-sample spikes of 1000 µV at ``times_s``."""
    e = np.zeros(n)
    e[np.round(np.asarray(times_s) * FS).astype(int)] = 1000.0
    return e


# ---------------------------------------------------------------------------------------------------- heart beats
def test_beats_of_two_sessions_are_found_at_their_r_waves():
    # two sessions in one lane, R waves as one-sample spikes: the |first difference| crosses 0.4 x its largest value
    # at the spike's sample; session 0 beats every 0.8 s (75 bpm) with an extra spike 0.2 s after its second beat
    # (inside the 0.3-s refractory time: not a beat), session 1 every 1.0 s (60 bpm)
    st = PsycheState(2, FS, ecg=0, resp=-1, emg=-1, acc=NO, params=PsycheParams())
    x = np.zeros((2, 1, 500))
    x[0, 0] = _spikes([0.4, 1.2, 2.0, 2.2, 2.8, 3.6, 4.4], 500)
    x[1, 0] = _spikes([0.5, 1.5, 2.5, 3.5, 4.5], 500)
    rows = np.arange(2)
    st.add_block(x[:, :, :100], rows)  # no threshold yet (set at the end of the first window): no beat
    assert st.beats.tolist() == [0.0, 0.0]
    st.window(window_features(x[:, :, :100], 0.0, rows))
    st.add_block(x[:, :, 100:], rows)  # one 4-s block holding several beats per session
    # the first beat of each session has no beat before it (no interval); then 4 intervals of 0.8 s and 3 of 1 s
    assert st.beats.tolist() == [4.0, 3.0]
    assert st.rr_sum == pytest.approx([3.2, 3.0])
    assert st.last_beat.tolist() == [440, 450]  # the last R wave's sample
    v = st.window(window_features(x[:, :, 100:], 1.0, rows))
    assert v["hr"] == pytest.approx([75.0, 60.0])
    assert v["move_s"].tolist() == [0, 0] and not v["movement"].any()  # no accelerometer: no movement


# ---------------------------------------------------------------------------------------------------- reset
def _busy_lane() -> tuple[PsycheState, np.ndarray]:
    """Three sessions after 40 s of ECG (60 bpm), breathing (15/min), chin EMG, movement and EEG, staged N2."""
    n = 40 * W
    t = np.arange(n) / FS
    rng = np.random.default_rng(3)
    x = np.zeros((3, 5, n))
    x[:, 0] = _spikes(np.arange(0.5, 40.0, 1.0).tolist(), n)
    x[:, 1] = _square_breaths(np.arange(2.0, 40.0, 4.0).tolist(), 40.0)
    x[:, 2] = rng.normal(0, 5, (3, n))
    x[:, 3] = 100.0 * np.sin(2 * np.pi * 1.5 * t)
    x[:, 4] = rng.normal(0, 20, (3, n))
    st = PsycheState(3, FS, ecg=0, resp=1, emg=2, acc=np.array([3]), params=PsycheParams(), eeg=np.array([4]))
    st.set_stage(np.arange(3), np.array([2, 2, 2]), np.full(3, 39.0))
    st.add_arousals(np.arange(3), np.ones(3))
    _drive(st, x)
    return st, x


def _arrays(st: PsycheState) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in vars(st).items() if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == 3}


def test_reset_of_one_session_returns_it_to_its_start_and_leaves_the_others():
    st, x = _busy_lane()
    before = _arrays(st)
    st.reset(np.array([1]))
    after = _arrays(st)
    fresh = _arrays(PsycheState(3, FS, ecg=0, resp=1, emg=2, acc=np.array([3]), params=PsycheParams(),
                                eeg=np.array([4])))
    for name in before:
        np.testing.assert_array_equal(after[name][[0, 2]], before[name][[0, 2]], err_msg=name)
        np.testing.assert_array_equal(after[name][1], fresh[name][1], err_msg=name)
    # the start values by hand: nothing carried from the old session
    assert not st.above[1] and not st.has_last[1] and st.thr[1] == np.inf and st.k[1] == 0
    assert st.last_sleep_t[1] == -np.inf and st.stage[1] == -2 and st.last_sleep_stage[1] == -2
    assert np.isnan(st.hr_base[1]) and np.isnan(st.rr_base[1]) and st.arousal_total[1] == 0.0
    assert st.beats[0] > 0 or st.k[0] == 40  # the others still count on
    # the reset session, fed again, answers as a new session in a new lane would
    st2 = PsycheState(1, FS, ecg=0, resp=1, emg=2, acc=np.array([3]), params=PsycheParams(), eeg=np.array([4]))
    a = _drive(st, x[1:2], rows=np.array([1]))
    b = _drive(st2, x[1:2])
    for va, vb in zip(a, b, strict=True):
        for key in ("hr", "hr_base", "resp", "resp_base", "emg_ratio", "move_s", "arousals", "eeg_shift"):
            np.testing.assert_array_equal(va[key], vb[key], err_msg=key)


# ---------------------------------------------------------------------------------------------------- breathing
def _breathing_run(params: PsycheParams, ecg: bool, move: bool) -> list[dict]:
    """One bed, 100 s: breaths at EDGES (15/min, then one 20/min interval, then 30/min); with ``move`` movement
    throughout, with ``ecg`` R waves every 1 s (60 bpm, steady)."""
    n = 100 * W
    t = np.arange(n) / FS
    x = np.zeros((1, 3, n))
    x[0, 0] = _spikes(np.arange(0.5, 100.0, 1.0).tolist(), n)
    x[0, 1] = _square_breaths(EDGES, 100.0)
    x[0, 2] = 100.0 * np.sin(2 * np.pi * 1.5 * t) * move  # accelerometer: moving (SD ~71 milli-g)
    st = PsycheState(1, FS, ecg=0 if ecg else -1, resp=1, emg=-1, acc=np.array([2]), params=params)
    return _drive(st, x)


def test_a_session_that_starts_mid_breath_counts_its_first_breath_at_the_first_rising_edge():
    # the trace starts high (mid-inhale, 0-0.6 s), falls at 0.6 s, then breaths begin every 4 s from 2 s: the start
    # is no breath onset (no rise from below the hysteresis band), so 3 breaths by 11 s, 2 intervals of 4 s: 15/min
    n = 12 * W
    x = np.zeros((1, 1, n))
    x[0, 0] = _square_breaths([2.0, 6.0, 10.0, 14.0], 12.0)
    x[0, 0, : round(0.6 * FS)] = 200.0
    st = PsycheState(1, FS, ecg=-1, resp=0, emg=-1, acc=NO, params=PsycheParams())
    v = _drive(st, x[:, :, : 11 * W])
    assert st.n_breaths[0] == 3 and st.last_breath[0] == 10.0 * FS
    assert float(v[10]["resp"][0]) == 15.0


# the breathing baseline frozen (infinite time constant) once set: its value is exactly the first rate, 15/min
FROZEN = PsycheParams(resp_windows=20, resp_tau_s=math.inf)


def test_breathing_rise_over_its_baseline_and_the_rule_without_an_ecg():
    v = _breathing_run(FROZEN, ecg=False, move=True)
    rate = [float(w["resp"][0]) for w in v]
    rise = [float(w["resp_rise"][0]) for w in v]
    # the rate: 60 / the mean of the last 3 breath-to-breath intervals (s)
    assert rate[30] == rate[59] == 15.0 and rise[30] == rise[59] == 0.0
    assert rise[19] == 0.0  # before resp_windows: no rise
    assert v[40]["resp_base"][0] == 15.0
    assert rise[61] == pytest.approx(60.0 / (11.0 / 3.0) - 15.0)  # 4, 4, 3 s
    assert rise[63] == pytest.approx(20.0 - 15.0)  # 4, 3, 2 s
    assert rise[65] == pytest.approx(60.0 / (7.0 / 3.0) - 15.0)  # 3, 2, 2 s
    assert rise[67] == rise[90] == pytest.approx(30.0 - 15.0)
    # without an ECG: distress needs the rise >= 6/min (from 65 s) with movement for 20 windows in a row
    dis = [i for i, w in enumerate(v) if w["distress"][0]]
    assert dis[0] == 65 + 19
    ev = distress_evidence(v[dis[0]], 0, FROZEN)
    assert ev["resp_rise_per_min"] == 15.0 and ev["resp_per_min"] == 30.0 and ev["rule"] == "sustained"


# the ramp rule loosened so that a steady 60 bpm meets it: only its one further sign (here breathing) decides
LOOSE_RAMP = dataclasses.replace(
    FROZEN, ramp_bpm=-1.0, ramp_rise3_bpm=-1.0, ramp_rise3_max_bpm=1.0, ramp_rise5_bpm=-1.0, ramp_fall_bpm=1.0,
    ramp_windows=1,
)


@pytest.mark.parametrize(("threshold", "first"), [(5.0, 61), (5.0 + 1e-9, 63), (4.0, 61), (15.0, 63)])
def test_the_ramp_rules_breathing_sign_at_its_threshold(threshold, first):
    # no chin EMG, no movement: the breathing is the one further sign. The newest breath-to-breath interval: 3 s
    # at 61 s (20/min, exactly 5/min over the frozen 15/min baseline), then 2 s from 63 s (30/min: 15 over); a rise
    # equal to the threshold is the sign
    v = _breathing_run(dataclasses.replace(LOOSE_RAMP, ramp_resp_rise=threshold), ecg=True, move=False)
    assert float(v[61]["resp_rise_last"][0]) == 5.0 and float(v[63]["resp_rise_last"][0]) == 15.0
    assert all(float(w["hr"][0]) == 60.0 for w in v[10:])
    ramp = [i for i, w in enumerate(v) if w["ramp"][0]]
    assert ramp[0] == first


# ---------------------------------------------------------------------------------------------------- arousals
def _arousal_windows(emg_sd: list[float]) -> list[dict]:
    """One bed without ECG: EEG at its baseline frequency but for the last window (4x), a movement in the last
    window only, the chin EMG's SD per window as given (baseline 1)."""
    params = PsycheParams(arousal_pre_windows=7, arousal_hr_bpm=math.inf, arousal_hr_weak_bpm=math.inf,
                          arousal_both_hr_bpm=-math.inf)
    st = PsycheState(1, FS, ecg=-1, resp=-1, emg=1, acc=np.array([2]), params=params, eeg=np.array([0]))
    out = []
    m = len(emg_sd)
    for i, sd in enumerate(emg_sd):
        last = i == m - 1
        x = np.zeros((1, 3, W))
        # EEG: a square wave whose mean |first difference| / SD is 0.1 (0.4 in the last window)
        x[0, 0] = np.where((np.arange(W) // (5 if last else 20)) % 2 == 0, 10.0, -10.0)
        x[0, 1] = np.where(np.arange(W) % 2 == 0, sd, -sd)  # SD = sd
        x[0, 2] = np.where(np.arange(W) % 2 == 0, 50.0, -50.0) if last else 0.0
        out.append(st.window(window_features(x, float(i), np.array([0]))))
    return out


def test_a_chin_emg_jump_counts_from_the_quiet_window_just_inside_the_pre_arousal_span():
    # arousal_pre_windows 7 (its default 6 is twice arousal_move_windows 3, where ring[-6:-3] and ring[-6:3] are the
    # same span): the pre-arousal span is 6 to 3 windows before the newest, the burst span its last 3 windows.
    # A tonic chin EMG (3x) 4-6 windows before, quiet (1x) 3 windows before, then 4x over the last 3: the burst is a
    # jump of >= 1.5x over the quiet window (4 >= 1.5 x 1), and with the EEG shift (4x) and the movement it is an
    # arousal by the smaller-rise rule.
    base = [1.0] * 10
    v = _arousal_windows([*base, 3.0, 3.0, 3.0, 1.0, 4.0, 4.0, 4.0])
    assert float(v[-1]["emg_ratio"][0]) == 4.0 and float(v[-1]["eeg_shift"][0]) >= 2.0
    assert [bool(w["burst"][0]) for w in v] == [False] * 16 + [True]
    # the quiet window one further back (7 windows before the newest): outside the span; the tonic 3x over the span
    # leaves no jump (4 < 1.5 x 3): no arousal
    v = _arousal_windows([*base, 1.0, 3.0, 3.0, 3.0, 3.0, 4.0, 4.0, 4.0])
    assert not any(bool(w["burst"][0]) for w in v)


# ---------------------------------------------------------------------------------------------------- evidence
def test_distress_evidence_names_and_rounds_its_values():
    p = PsycheParams()
    v = {
        "hr": np.array([0.0, 91.2649]), "hr_base": np.array([0.0, 60.04]), "surge": np.array([0.0, 31.2249]),
        "resp": np.array([0.0, np.nan]), "resp_rise": np.array([0.0, 7.96]), "emg_ratio": np.array([0.0, 2.3471]),
        "move_s": np.array([0, 3]), "stage": np.array([0, 4]), "ramp": np.array([False, True]),
        "run": np.array([0, 4]), "surge_short": np.array([0.0, 12.349]), "rise3": np.array([0.0, 4.44]),
        "rise5": np.array([0.0, -0.06]), "resp_rise_last": np.array([0.0, 1.05001]),
    }
    assert distress_evidence(v, 1, p) == {
        "hr_bpm": 91.3, "hr_baseline_bpm": 60.0, "hr_surge_bpm": 31.2, "threshold_surge_bpm": 10.0,
        "resp_per_min": None, "resp_rise_per_min": 8.0, "threshold_resp_rise": 4.0,
        "emg_ratio": 2.35, "threshold_emg_ratio": 2.0, "movement_s": 3, "stage": 4, "rule": "ramp", "windows": 4,
        "hr_surge_2s_bpm": 12.3, "hr_rise_3s_bpm": 4.4, "hr_rise_5s_bpm": -0.1, "resp_rise_last_breath": 1.1,
        "threshold_ramp_bpm": 4.0,
    }
    assert distress_evidence({**v, "ramp": np.array([False, False])}, 1, p)["rule"] == "sustained"
