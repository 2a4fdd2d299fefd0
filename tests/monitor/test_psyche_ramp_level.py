"""The ramp rule's level and heart rate: a slow heart, a climb from below the baseline, an awakening."""

from __future__ import annotations

import numpy as np
from psyche_windows import lone_ecg_values
from test_psyche import CH, FS, ON, _ecg, _night

from nexus.monitor.live import GlitchMonitor, MonitorParams
from nexus.monitor.psyche import PsycheParams


def _short_surges(ecg: np.ndarray) -> list[float]:
    """The ramp rule's short-window surge (bpm) of each 1-s window of a lone ECG channel."""
    return lone_ecg_values(ecg, FS, "surge_short")


def test_a_slow_heart_has_a_short_window_rate_in_every_window():
    # at 50 bpm two 1-s windows often hold one beat: the ramp rule's rate was unknown there, and one unknown window
    # broke its run of climbing windows (a nightmare of bench seed 17011 was raised 3 s later for it)
    rng = np.random.default_rng(4)
    s = _short_surges(_ecg(np.full(round(60 * FS), 50.0), rng))
    assert np.isfinite(s[8:]).all(), s
    assert np.allclose(s[8:], 0.0, atol=2.0)


def _run_stages(x: np.ndarray, stage_at, params: PsycheParams | None = None) -> list:
    """The distress glitches of one bed ``x`` streamed in 0.5-s blocks, its stage ``stage_at(t)`` at each."""
    mon = GlitchMonitor(1, CH, FS, sessions=["s1"], params=MonitorParams(psyche=params or PsycheParams()))
    step = round(0.5 * FS)
    out = []
    for a in range(0, x.shape[-1], step):
        b = min(a + step, x.shape[-1])
        out += mon.step(x[:, :, a:b], [True], b / FS, stages=[stage_at(b / FS)])
    return [g for g in out if g.kind == "distress"]


def test_a_nightmare_climbing_from_below_its_baseline_is_raised_as_early():
    # the heart rate 5 bpm under its baseline for the 22 s before a nightmare that climbs 20 bpm over 15 s from there
    # (N2): its level is measured from where the climb began, not from the baseline it first has to reach
    base = _night(300.0, surge_bpm=20.0, resp_rise=9.0, ramp_s=15.0, off=290.0)
    t = np.arange(base.shape[-1]) / FS
    dip = np.clip((t - (ON - 25.0)) / 3.0, 0.0, 1.0) * 5.0  # 5 bpm down over 3 s, 25 s before ON
    hr = 60.0 - dip + 20.0 * np.clip(np.minimum(t - ON, 290.0 - t) / 15.0, 0.0, 1.0)
    base[0, 4] = _ecg(hr, np.random.default_rng(0))
    g = _run_stages(base, lambda _t: 2)
    assert g and g[0].evidence["rule"] == "ramp"
    # 8.0 s with the floor alone as its level, 9.0 s since it also asks the rate to be over the baseline (see
    # test_psyche_gate_and_sign); 12.0 s with the level measured from the baseline alone
    assert g[0].evidence["raised_s"] - ON <= 9.5, g[0].evidence


def _awakening(surge_bpm: float) -> np.ndarray:
    """N2 until 200 s, then W: the heart rate climbs ``surge_bpm`` over 12 s from 201 s, breathing quickens by 6/min,
    the chin tenses (x3) and the sleeper moves every 12 s."""
    x = _night(300.0, surge_bpm=0.0, resp_rise=6.0, on=201.0, off=290.0, ramp_s=12.0)
    t = np.arange(x.shape[-1]) / FS
    hr = 60.0 + surge_bpm * np.clip(np.minimum(t - 201.0, 290.0 - t) / 12.0, 0.0, 1.0)
    x[0, 4] = _ecg(hr, np.random.default_rng(1))
    return x


def test_an_awakening_heart_rate_climb_is_not_distress():
    # waking from N2, the heart rate climbs 14 bpm over its sleep baseline (an awakening's heart-rate response),
    # breathing quickens, the chin tenses and the sleeper moves: within the 2-min grace after sleep the ramp rule
    # (4 bpm over the baseline for 7 windows) took it for a nightmare, and the sustained rule (10 bpm for 20 s)
    # would have. In W they ask 10 and 20 bpm over the sleep baseline
    assert _run_stages(_awakening(14.0), lambda t: 2 if t < 200.0 else 0) == []


def test_a_nightmare_sized_surge_in_wake_after_sleep_is_still_distress():
    g = _run_stages(_awakening(30.0), lambda t: 2 if t < 200.0 else 0)
    assert g and g[0].evidence["stage"] == 0
