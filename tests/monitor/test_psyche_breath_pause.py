"""The breathing rate right after a breath that ended an interval the detector did not keep.

:class:`PsycheState` keeps breath-to-breath intervals of 1-20 s. The interval in progress counts as a pause once it
is longer than the intervals known (breathing that stops is slow breathing), but only from 1 s on: a breath a moment
ago, after an interval not kept (a 25-s pause), says nothing about the rate. Read as 60 / (time since that breath)
it was a rate of 100-600 breaths/min, a "faster breathing" sign for the distress rules. One window = 1 s at 100 Hz.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from psyche_windows import window_features

from nexus.monitor.psyche import PsycheParams, PsycheState

FS = 100.0
W = 100


def _run(breath_starts: list[float], seconds: int) -> list[dict]:
    """A respiration channel alone: one 4-s breath (a dip, then a rise: -sin) from each start (s), flat between."""
    n = seconds * W
    t = np.arange(n) / FS
    r = np.zeros(n)
    for s in breath_starts:
        m = (t >= s) & (t < s + 4.0)
        r[m] = -100.0 * np.sin(2 * np.pi * (t[m] - s) / 4.0)
    x = r[None, None, :]
    st = PsycheState(1, FS, ecg=-1, resp=0, emg=-1, acc=np.zeros(0, dtype=np.int64), params=PsycheParams())
    out = []
    for a in range(0, n, W):
        st.add_block(x[:, :, a : a + W], np.array([0]))
        v = st.window(window_features(x[:, :, a : a + W], a / FS))
        out.append({**v, "n_breaths": int(st.n_breaths[0])})
    return out


def test_a_breath_after_a_long_pause_is_no_burst_of_fast_breathing():
    # 15 breaths/min for 60 s, a 25-s pause (that interval is not kept), one breath, then quiet again
    v = _run([*np.arange(0.0, 60.0, 4.0).tolist(), 85.0], 100)
    assert 14.0 <= float(v[59]["resp"][0]) <= 16.0  # the regular breathing's rate
    at = next(i for i in range(61, 100) if v[i]["n_breaths"] > v[i - 1]["n_breaths"])  # the breath after the pause
    assert 85 <= at <= 89
    for w in v[at : at + 2]:
        assert float(w["resp_rise_last"][0]) <= 0.0, w["resp_rise_last"]
        assert float(w["resp_rise"][0]) < 4.0  # the sustained rule's breathing sign stays off


def test_breaths_only_after_long_pauses_leave_the_rate_unknown():
    # one breath every 25 s: no interval is kept, so no rate is known, not 60 / (time since the last breath)
    v = _run(np.arange(0.0, 200.0, 25.0).tolist(), 200)
    assert sum(w["n_breaths"] > u["n_breaths"] for u, w in pairwise(v)) >= 6
    for w in v[31:]:  # the rate is judged from 30 windows on (resp_windows)
        r = float(w["resp"][0])
        assert not (r > 10.0), r  # 2.4/min (one breath per 25-s pause) or unknown, never a fast rate
        p = PsycheParams()  # neither breathing sign of the distress rules
        assert float(w["resp_rise"][0]) < p.resp_rise and float(w["resp_rise_last"][0]) < p.ramp_resp_rise
