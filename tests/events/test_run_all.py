"""detect_all: the detectors side by side on threads give the very table they give one after the other."""

import numpy as np
import pandas as pd
import pytest

from nexus.core.errors import InvalidInputError
from nexus.events.run_all import Channels, detect_all

FS = 128.0


def _channels(minutes: float = 4.0) -> Channels:
    rng = np.random.default_rng(4)
    n = int(minutes * 60 * FS)
    t = np.arange(n) / FS
    eeg = np.cumsum(rng.normal(0, 3, n))
    eeg -= np.convolve(eeg, np.ones(256) / 256, mode="same")  # drift removed: a wandering 10-µV background
    for at in (20, 50, 95, 140, 200):  # spindles
        m = (t >= at) & (t < at + 1)
        eeg[m] += 60 * np.sin(2 * np.pi * 13 * t[m]) * np.hanning(m.sum())
    eeg += 120 * np.sin(2 * np.pi * 0.8 * t) * (t % 60 < 20)  # slow oscillations, 20 s a minute
    eeg[(t > 160) & (t < 166)] += 40 * np.sin(2 * np.pi * 10 * t[(t > 160) & (t < 166)])  # an alpha burst
    loc = rng.normal(0, 5, n)
    for at in np.arange(5, minutes * 60 - 5, 3.0):  # conjugate eye movements
        loc += 150 * np.exp(-0.5 * ((t - at) / 0.15) ** 2)
    ecg = rng.normal(0, 10, n)
    for b in np.arange(0.5, minutes * 60 - 1, 0.9):
        ecg += 900 * np.exp(-0.5 * ((t - b) / 0.012) ** 2)
    acc = rng.normal(0, 2, (3, n))
    acc[:, (t > 100) & (t < 104)] += 300
    ch = Channels(eeg={"EEG C4": (eeg, FS)}, loc=("EOG L", loc, FS), roc=("EOG R", -loc, FS),
                  emg=("EMG", rng.normal(0, 5, n), FS), ecg=("ECG", ecg, FS), acc=(acc, FS))
    return ch


def test_threads_give_the_same_events_as_one_after_the_other():
    stages = np.array([2, 2, 3, 3, 4, 4, 2, 2])  # N2, N3, R, N2: every detector has its stages
    one, notes_one = detect_all(_channels(), stages, threads=1)
    many, notes_many = detect_all(_channels(), stages, threads=4)
    assert set(one["description"]) >= {"spindle", "slow_oscillation", "rem", "heart_rate", "movement"}
    pd.testing.assert_frame_equal(many, one)
    assert notes_many == notes_one


def test_a_detector_error_reaches_the_caller_from_its_thread():
    with pytest.raises(InvalidInputError, match="Invalid hypnogram: 2 epochs of 30 s"):
        detect_all(_channels(), np.array([2, 2]), threads=4)
