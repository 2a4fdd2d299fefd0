"""Distress in N3, the sustained rule's body sign once in its run, and the ramp level's floor."""

from __future__ import annotations

import numpy as np
from test_psyche import FS, ON, _ecg, _night
from test_psyche_ramp_level import _run_stages as _distress

from nexus.monitor.psyche import PsycheParams


def test_a_sleep_terror_in_n3_is_distress():
    # heart rate +30 bpm over 10 s, breathing +10/min, a tense chin and movement, all in N3
    g = _distress(_night(), lambda _t: 3)
    assert g and g[0].evidence["stage"] == 3 and g[0].evidence["rule"] == "ramp"
    assert g[0].evidence["raised_s"] - ON <= 10.0


def test_a_nightmare_that_passes_into_n3_is_raised_while_it_builds():
    # begun in N2, the hypnogram says N3 from 3 s into it (bench seeds 18012 and 18018: raised 114 and 84 s late)
    g = _distress(_night(), lambda t: 2 if t < ON + 3.0 else 3)
    assert g and g[0].evidence["raised_s"] - ON <= 10.0


def _tense_then_still(body: bool) -> np.ndarray:
    """A surge too slow for the ramp rule (30 bpm and 10 breaths/min over 60 s, N2) with no chin-EMG rise and, when
    ``body``, one movement at ON + 30 s and none after it."""
    x = _night(surge_bpm=30.0, resp_rise=10.0, ramp_s=60.0, body=False)
    if body:
        t = np.arange(x.shape[-1]) / FS
        m = (t >= ON + 30.0) & (t < ON + 32.0)
        x[0, 6, m] += 150.0 * np.sin(2 * np.pi * 1.5 * (t[m] - ON - 30.0))
    return x


def test_the_sustained_rule_needs_its_body_sign_once_in_the_run():
    # the movement leaves the 10-s ring 10 s later; asked in every window, the run broke there and nothing was raised
    g = _distress(_tense_then_still(True), lambda _t: 2)
    assert g and g[0].evidence["rule"] == "sustained"
    assert g[0].evidence["windows"] >= 20 and g[0].evidence["movement_s"] == 0  # confirmed after the movement left
    assert g[0].evidence["raised_s"] - ON <= 60.0


def test_the_sustained_rule_without_any_body_sign_is_not_distress():
    assert _distress(_tense_then_still(False), lambda _t: 2) == []


def _climb_to_just_over(top_bpm: float) -> np.ndarray:
    """N2, heart rate 60 bpm, then 6 bpm under it from 150 s for 40 s, then a climb of 1 bpm/s to ``top_bpm`` over
    60 and held there, the chin tense (x3) from the climb on; breathing and movement unchanged."""
    x = _night(300.0, surge_bpm=0.0, resp_rise=0.0, body=False)
    t = np.arange(x.shape[-1]) / FS
    top = top_bpm - 54.0  # the climb's height, bpm
    hr = np.where(t < 150.0, 60.0, 54.0 + np.clip(t - 190.0, 0.0, top))
    x[0, 4] = _ecg(hr, np.random.default_rng(3))
    x[0, 3] *= np.where(t >= 190.0, 3.0, 1.0)
    return x


def test_a_climb_from_under_the_baseline_that_ends_just_over_it_is_not_distress():
    # an awakening's climb of bench seed 18003: from 5 under its baseline to 2 over, with a tense chin, was raised:
    # measured from the floor it climbed 7 bpm; the ramp's level now also asks the rate to be over the baseline
    x = _climb_to_just_over(62.0)
    assert _distress(x, lambda _t: 2) == []
    # the same climb with the floor alone as its level (the rule before) is raised
    assert _distress(x, lambda _t: 2, PsycheParams(ramp_floor_min_bpm=-np.inf))
