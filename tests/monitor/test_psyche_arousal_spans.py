"""Psyche detectors: the spans of windows the arousal rules look at (an arousal's signs, a storm's 10 minutes).

An arousal's signs (movement, a chin-EMG burst, an EEG shift to faster waves) count when they fall in the same last
``arousal_move_windows`` windows (3 s), each a jump over its lowest value in the windows before that span. Driven
directly (:class:`PsycheState`), one window = 1 s at 100 Hz, no ECG (the heart-rate rules made unreachable, so that
the burst rests on the two corroborating signs alone). A storm is ``storm_count`` (12) arousals in the last
``storm_window_s`` (600) windows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from psyche_windows import window_features

from nexus.monitor.psyche import PsycheParams, PsycheState

FS = 100.0
W = 100  # samples per window (1 s)
PARAMS = PsycheParams(arousal_hr_bpm=math.inf, arousal_hr_weak_bpm=math.inf, arousal_both_hr_bpm=-math.inf)


def _bursts(eeg_fast_ago: int, emg_burst_ago: int) -> list[bool]:
    """Whether each of 16 windows is an arousal burst: EEG (square waves, mean |first difference| / SD 0.08) and
    chin EMG (SD 1) steady, but for the EEG's 4x faster waves ``eeg_fast_ago`` windows before the last and the chin
    EMG's SD of 4 ``emg_burst_ago`` windows before it; the sleeper moves in the last window."""
    st = PsycheState(1, FS, ecg=-1, resp=-1, emg=1, acc=np.array([2]), params=PARAMS, eeg=np.array([0]))
    n = 16
    out = []
    for i in range(n):
        ago = n - 1 - i
        x = np.zeros((1, 3, W))
        x[0, 0] = np.where((np.arange(W) // (5 if ago == eeg_fast_ago else 20)) % 2 == 0, 10.0, -10.0)
        sd = 4.0 if ago == emg_burst_ago else 1.0
        x[0, 1] = np.where(np.arange(W) % 2 == 0, sd, -sd)
        x[0, 2] = np.where(np.arange(W) % 2 == 0, 50.0, -50.0) if ago == 0 else 0.0
        v = st.window(window_features(x, float(i)))
        out.append(bool(v["burst"][0]))
    return out


@pytest.mark.parametrize("ago", [0, 1, 2])
def test_an_eeg_shift_counts_in_each_of_the_last_three_windows(ago):
    # the chin-EMG burst and the movement in the last window, the EEG shift 0, 1 or 2 windows before it
    assert _bursts(eeg_fast_ago=ago, emg_burst_ago=0) == [False] * 15 + [True]


@pytest.mark.parametrize("ago", [0, 1, 2])
def test_a_chin_emg_burst_counts_in_each_of_the_last_three_windows(ago):
    assert _bursts(eeg_fast_ago=0, emg_burst_ago=ago) == [False] * 15 + [True]


def test_signs_three_windows_before_the_movement_are_not_its_arousal():
    # three windows before the last: outside the span (and inside the one before it, which makes it no jump)
    assert not any(_bursts(eeg_fast_ago=3, emg_burst_ago=0))
    assert not any(_bursts(eeg_fast_ago=0, emg_burst_ago=3))


def test_arousals_older_than_the_storm_window_leave_the_count():
    # one arousal handed in every 55 s for 40 minutes: 10 or 11 of them in any 600 s, never the 12 of a storm; the
    # count at each window is the number handed in during the last 600 windows (an arousal handed in before a window
    # is counted at that window)
    st = PsycheState(1, FS, ecg=-1, resp=-1, emg=-1, acc=np.zeros(0, dtype=np.int64), params=PsycheParams())
    x = np.zeros((1, 1, W))
    handed = []
    counts, storms = [], []
    for i in range(2400):
        if i % 55 == 0:
            st.add_arousals(np.array([0]), np.ones(1))
            handed.append(i)
        v = st.window(window_features(x, float(i)))
        counts.append(float(v["arousals"][0]))
        storms.append(bool(v["storm"][0]))
    want = [sum(1 for j in handed if i - 600 < j <= i) for i in range(2400)]
    assert counts == want
    assert max(want[600:]) == 11 and min(want[600:]) == 10 and not any(storms)
