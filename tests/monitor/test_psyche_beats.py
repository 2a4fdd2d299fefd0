"""The psyche detectors' heart beats: one spike on the ECG does not blind the beat detector for the next window."""

from __future__ import annotations

import numpy as np
import pytest
from psyche_windows import lone_ecg_values

FS = 256.0


def _ecg(seconds: float, bpm: float, rng: np.random.Generator) -> np.ndarray:
    """An ECG (µV): R waves of 1000 µV at ``bpm``, and a little noise."""
    t = np.arange(round(seconds * FS)) / FS
    beat_t = np.arange(0.3, seconds, 60.0 / bpm)
    d = np.abs(t[:, None] - beat_t[None, :]).min(axis=1)
    return 1000.0 * np.exp(-0.5 * (d / 0.01) ** 2) + rng.normal(0, 5, t.size)


def _heart_rates(ecg: np.ndarray) -> list[float]:
    """The 2-s heart rate (bpm) of each 1-s window of a lone ECG channel, as the ramp rule reads it."""
    return lone_ecg_values(ecg, FS, "hr_short")


@pytest.mark.parametrize("spike_uv", [2500.0, -6000.0])
def test_one_spike_on_the_ecg_loses_no_beat_of_the_next_windows(spike_uv):
    rng = np.random.default_rng(3)
    ecg = _ecg(40.0, 72.0, rng)
    steady = _heart_rates(ecg)
    i = round(20.45 * FS)  # in window 20, between two R waves
    ecg[i] += spike_uv  # one sample off: a step of 2.5-6x an R wave's steepest
    hit = _heart_rates(ecg)
    assert np.allclose(steady[10:], 72.0, atol=3.0)
    # the spike's window may count it as a beat; the windows after it count every R wave
    assert np.allclose(hit[22:], steady[22:], atol=0.5), (hit[19:26], steady[19:26])
