"""The chin-EMG baseline of the psyche detectors does not learn from a lost or flat channel."""

from __future__ import annotations

import numpy as np
import pytest
from psyche_windows import window_features

from nexus.monitor.psyche import PsycheParams, PsycheState

FS = 100.0


def _emg_ratios(emg: np.ndarray) -> np.ndarray:
    """The chin EMG over its baseline, per 1-s window of a lone EMG channel."""
    st = PsycheState(1, FS, -1, -1, 0, np.zeros(0, dtype=np.int64), PsycheParams())
    rows, w, out = np.zeros(1, dtype=np.int64), round(FS), []
    for k in range(emg.size // w):
        x = emg[None, None, k * w:(k + 1) * w]
        st.add_block(x, rows)
        out.append(float(st.window(window_features(x, float(k), fs=FS))["emg_ratio"][0]))
    return np.array(out)


@pytest.mark.parametrize("lost", ["dropout", "flat"])
def test_a_lost_chin_emg_leaves_its_baseline_as_it_was(lost):
    rng = np.random.default_rng(5)
    emg = rng.normal(0.0, 4.0, round(600 * FS))  # ordinary tone, SD 4 uV
    gap = slice(round(200 * FS), round(360 * FS))  # 160 s lost
    emg[gap] = 0.0 if lost == "dropout" else 37.0 + rng.normal(0.0, 0.05, gap.stop - gap.start)
    ratio = _emg_ratios(emg)
    assert np.all(ratio[370:] < 1.3), ratio[360:380]  # the same tone after it reads as ordinary, not as a burst
    assert np.all(ratio[210:350] < 0.1)  # while lost it reads as nothing


def test_the_baseline_still_follows_a_slow_fall_of_tone():
    rng = np.random.default_rng(6)
    sd = np.repeat(np.linspace(4.0, 2.0, 600), round(FS))  # tone halving over 10 min (towards REM atonia)
    ratio = _emg_ratios(rng.normal(0.0, 1.0, sd.size) * sd)
    assert np.all(ratio[-60:] < 1.3)
