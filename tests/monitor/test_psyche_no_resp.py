"""Psyche detectors of a lane without a respiration channel: its breathing values are reported as unknown.

:meth:`PsycheState.window` returns the values behind its verdicts per row; without a respiration channel the breathing
rate and its baseline are NaN (not known) and its rises 0, row by row like every other value, and the sustained
distress rule asks the heart rate for ``surge_no_resp_bpm`` (15) over its baseline, not ``surge_bpm`` (10), with chin
EMG or movement. One window = 1 s at 100 Hz, an ECG of one-sample R waves.
"""

from __future__ import annotations

import numpy as np
import pytest
from psyche_windows import window_features

from nexus.monitor.psyche import PsycheParams, PsycheState

FS = 100.0
W = 100


def test_without_a_respiration_channel_breathing_is_unknown_per_row():
    st = PsycheState(2, FS, ecg=0, resp=-1, emg=-1, acc=np.zeros(0, dtype=np.int64), params=PsycheParams())
    rows = np.arange(2)
    x = np.zeros((2, 1, W))
    x[:, 0, 50] = 1000.0  # an R wave in the middle of every window: 60 bpm
    for i in range(12):
        st.add_block(x, rows)
        v = st.window(window_features(x, float(i)))
    assert v["hr"].tolist() == [60.0, 60.0]
    for key in ("resp", "resp_base"):
        assert v[key].shape == (2,) and np.isnan(v[key]).all(), key
    assert v["resp_rise"].tolist() == [0.0, 0.0] and v["resp_rise_last"].tolist() == [0.0, 0.0]


def _surge_run(surge_bpm: float) -> list[dict]:
    """One bed, ECG on channel 0 and an accelerometer on channel 1, no respiration: 60 bpm (R waves 1 s apart) for
    60 s, then a step to 60 + ``surge_bpm`` with movement for 60 s (a step, not a climb: the ramp rule stays out)."""
    beats = [*np.arange(0.5, 60.0, 1.0).tolist()]
    beats += np.arange(beats[-1] + 60.0 / (60.0 + surge_bpm), 120.0, 60.0 / (60.0 + surge_bpm)).tolist()
    n = 120 * W
    x = np.zeros((1, 2, n))
    x[0, 0, np.round(np.asarray(beats) * FS).astype(int)] = 1000.0
    x[0, 1, 60 * W :] = np.where(np.arange(60 * W) % 2 == 0, 50.0, -50.0)  # moving: SD 50 milli-g
    st = PsycheState(1, FS, ecg=0, resp=-1, emg=-1, acc=np.array([1]), params=PsycheParams())
    out = []
    for a in range(0, n, W):
        st.add_block(x[:, :, a : a + W], np.array([0]))
        out.append(st.window(window_features(x[:, :, a : a + W], a / FS)))
    return out


@pytest.mark.parametrize(("surge_bpm", "distress"), [(20.0, True), (12.0, False)])
def test_without_breathing_a_sustained_surge_needs_fifteen_bpm(surge_bpm, distress):
    # 20 bpm: R waves 0.75 s apart; 12 bpm: 0.83 s (to the sample), over the 10 bpm asked when breathing is known
    v = _surge_run(surge_bpm)
    assert float(v[59]["hr"][0]) == 60.0 and float(v[119]["hr"][0]) == pytest.approx(60.0 + surge_bpm, abs=0.5)
    assert all(float(w["surge"][0]) > 11.0 for w in v[70:])
    assert not any(bool(w["ramp"][0]) for w in v)
    found = [i for i, w in enumerate(v) if w["distress"][0]]
    if distress:  # the 6-s heart rate 15 bpm up within ~4 s of the step, then 20 windows in a row
        assert found, "no distress"
        assert 60 + 19 < found[0] <= 60 + 6 + 19 and found == list(range(found[0], 120))
    else:
        assert found == []
