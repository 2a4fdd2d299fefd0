"""plan_tonight: consent, the natural-night schedule and the weaning plan decide what a night plays."""

from __future__ import annotations

from pathlib import Path

from nexus.dreamscape.check import load_program
from nexus.guard.dependency import NightSummary
from nexus.guard.tonight import plan_tonight, scale_dose

FULL = ["recording", "audio", "stimulation", "dream_incubation", "psyche_monitoring"]
FOREST = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes" / "deep-sleep.yaml"


def _prog():
    return load_program(FOREST)


def _nights(pattern: str, se_stim: float = 88.0, se_nat: float = 86.0, start: int = 1):
    """'S' stimulated, 'N' natural nights, one per day from 2026-01-<start>."""
    return [NightSummary(f"2026-01-{start + i:02d}", c == "S", 300 if c == "S" else 0,
                         se_stim if c == "S" else se_nat) for i, c in enumerate(pattern)]


def test_consent_and_a_first_night():
    p = _prog()
    t = plan_tonight(FULL, [], p)
    assert t.run and t.mode == "stimulation" and t.program is p and t.dose_factor == 1.0
    t = plan_tonight(["recording", "audio"], [], p)
    assert t.mode == "stimulation" and all(sc.clas is None for sc in t.program.scenes.values())
    assert any("CLAS" in r for r in t.reasons)
    t = plan_tonight(["recording"], [], p)
    assert (t.run, t.program, t.mode) == (True, None, "record_only")
    t = plan_tonight(["audio"], [], p)  # no recording: no night at all
    assert not t.run and t.mode == "refused"


def test_one_natural_night_in_seven_unless_opted_out():
    p = _prog()
    t = plan_tonight(FULL, _nights("SSSSSS", se_nat=70.0), p)
    assert t.program is None and t.mode == "record_only" and "natural" in t.reasons[-1]
    assert plan_tonight(FULL, _nights("SSNSSS", se_nat=70.0), p).program is p
    t = plan_tonight([*FULL, "opt_out_natural_nights"], _nights("SSSSSS", se_nat=70.0), p)
    assert t.program is p and any("opted out" in r for r in t.reasons)


def test_the_weaning_plan_tapers_the_dose_and_adds_natural_nights():
    p = _prog()
    clicks = sum(sc.clas.max_per_night for sc in p.scenes.values() if sc.clas is not None)
    # natural sleep stable (86 % vs 88 %): week 1 of the taper, dose x0.75, two natural nights a week
    hist = _nights("SSSNSSNSS")  # two natural nights among the last six: tonight stimulates
    t = plan_tonight(FULL, hist, p)
    assert t.dose_factor == 0.75 and t.mode == "stimulation"
    assert sum(sc.clas.max_per_night for sc in t.program.scenes.values() if sc.clas is not None) == int(clicks * 0.75)
    assert any("weaning plan, week 1" in r for r in t.reasons)
    # a week further into a stable taper: x0.5 and three natural nights a week; two in the last six: natural
    t2 = plan_tonight(FULL, _nights("SSNSSNSSNSSNSSNSS"), p)
    assert t2.dose_factor == 0.5 and t2.program is None and "week 2" in t2.natural
    # natural sleep not stable (60 %): no taper, the program as written
    t3 = plan_tonight(FULL, _nights("SSNSSSSNSS", se_nat=60.0), p)
    assert t3.dose_factor == 1.0 and t3.program is p
    # every taper week asks for more natural nights: with none in the last six, tonight is natural
    t4 = plan_tonight(FULL, _nights("NNSSSSSSS"), p)
    assert t4.program is None and "weaning plan" in (t4.natural or "")


def test_scale_dose_rounds_down_and_drops_what_reaches_zero():
    p = _prog()
    half = scale_dose(p, 0.5)
    for name, sc in p.scenes.items():
        if sc.clas is not None:
            assert half.scenes[name].clas.max_per_night == sc.clas.max_per_night // 2
    none = scale_dose(p, 0.0)
    assert all(sc.clas is None and not sc.cues for sc in none.scenes.values())
    assert scale_dose(p, 1.0) is p
