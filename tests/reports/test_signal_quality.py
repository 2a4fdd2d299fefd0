"""The night report's signal-quality table: flat and large epochs, with and without missing samples."""

import contextlib
import math

import numpy as np
import pytest

from nexus.formats.edf import Signal
from nexus.reports.night import _epoch_sd_peak, signal_quality
from nexus.reports.plots import epoch_spectra

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



@pytest.mark.parametrize("block", [1, 3, 64])
def test_per_epoch_sd_and_peak_block_by_block_equal_the_whole_array_forms(block):
    x = np.random.default_rng(block).normal(size=(10, 700)) * 30
    sd, peak = _epoch_sd_peak(x, True, block=block)
    np.testing.assert_array_equal(sd, x.std(axis=1))  # bit for bit: the report's numbers do not move
    np.testing.assert_array_equal(peak, np.abs(x).max(axis=1))
    assert _epoch_sd_peak(x, False, block=block)[1].size == 0


def test_epoch_spectra_of_a_night_equal_each_epoch_alone():
    # more epochs than one block of epoch_spectra: each epoch's spectrum is that of the epoch by itself
    x = np.random.default_rng(5).normal(size=75 * 3000 + 17) * 20
    f, p = epoch_spectra(x, FS, 30.0, fmax=40.0)
    assert p.shape == (75, f.size)
    for k in (0, 31, 32, 74):
        np.testing.assert_array_equal(p[k], epoch_spectra(x[k * 3000 : (k + 1) * 3000], FS, 30.0, fmax=40.0)[1][0])
