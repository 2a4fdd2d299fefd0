"""The night report's signal-quality table: flat and large epochs, with and without missing samples."""

import contextlib
import math

import numpy as np
import pytest

from nexus.formats.edf import Signal
from nexus.reports.night import signal_quality

FS = 100.0


def _channel(label: str, nan: bool) -> Signal:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3000)) * 20  # ten 30-s epochs of ordinary EEG
    x[1] = 0.3 * rng.normal(size=3000)  # flat (SD < 1 µV)
    x[2, 100] = 900.0  # one sample beyond ±500 µV
    x[3, 5] = -600.0
    if nan:
        x[1, 7] = np.nan  # missing samples in a flat and in an ordinary epoch: still judged on the rest
        x[4, 50:60] = np.nan
        x[5] = np.nan  # a wholly missing epoch is neither flat nor large
    return Signal(label, x.ravel(), FS, "uV")


@pytest.mark.parametrize("nan", [False, True], ids=["complete", "missing-samples"])
def test_flat_and_large_epochs_are_counted(nan):
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning) if nan else contextlib.nullcontext():
        eeg, emg = signal_quality([_channel("EEG C3", nan), _channel("EMG chin", nan)])
    assert eeg[:4] == ["EEG C3", "100", "10.0", "20.0"]  # 1 of 10 flat, 2 of 10 large
    assert eeg[5] == "check"  # 20% beyond 500 µV
    assert emg[3] == "n/a" or math.isnan(float(emg[3]))  # EMG is large by nature: not checked
    assert emg[5] == "good"

