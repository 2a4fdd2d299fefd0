"""Dependency index, natural-night schedule and weaning plan."""

import pytest

from nexus.guard.dependency import NightSummary, dependency_index, natural_night_due, weaning_plan


def _nights(pattern, se_stim=88.0, se_nat=86.0, stimuli=300):
    """'S' stimulated, 'N' natural, one per day from 2026-11-01."""
    return [NightSummary(f"2026-11-{i + 1:02d}", c == "S", stimuli if c == "S" else 0,
                         se_stim if c == "S" else se_nat) for i, c in enumerate(pattern)]


def test_index_components():
    idx = dependency_index(_nights("SNSNSSSSSSSSSS", se_stim=90.0, se_nat=80.0, stimuli=200))
    assert (idx.nights, idx.stimulated_nights, idx.natural_nights) == (14, 12, 2)
    assert idx.share_stimulated == pytest.approx(12 / 14)
    assert idx.mean_dose == 200
    assert idx.gap_pts == pytest.approx(10.0)
    assert idx.share_trend == pytest.approx((7 - 5) / 7)
    assert idx.level == "high"


def test_index_levels():
    assert dependency_index([]).level == "unknown"
    assert dependency_index(_nights("SSSSSSSSSSSSSN", se_stim=88, se_nat=87)).level == "moderate"
    assert dependency_index(_nights("SSSSSSS")).level == "high"  # never measured without stimulation
    assert dependency_index(_nights("SNSNSN")).level == "low"


def test_natural_night_every_seventh_unless_opted_out():
    assert natural_night_due(_nights("SSSSSS"))[0] is True
    assert natural_night_due(_nights("SSSSSSN"))[0] is False
    assert natural_night_due(_nights("NSSSSSS"))[0] is True  # the natural one is 7 nights back
    assert natural_night_due(_nights("SSS"))[0] is False
    due, why = natural_night_due(_nights("SSSSSS"), opt_out=True)
    assert not due and "opted out" in why


def test_weaning_tapers_only_when_natural_sleep_is_stable():
    stable = weaning_plan(_nights("SSSNSSSN", se_stim=88, se_nat=86))
    assert stable.start
    assert [w["dose_factor"] for w in stable.weeks] == [0.75, 0.5, 0.25, 0.0]
    assert [w["natural_nights"] for w in stable.weeks] == [2, 3, 4, 7]
    worse = weaning_plan(_nights("SSSNSSSN", se_stim=90, se_nat=78))
    assert not worse.start and "not stable" in worse.reason and worse.weeks[0]["dose_factor"] == 1.0
    unmeasured = weaning_plan(_nights("SSSSSSSN"))
    assert not unmeasured.start and "only 1 natural night" in unmeasured.reason
    assert not weaning_plan(_nights("NNN")).start


def test_reasons_read_as_sentences_with_counts_in_the_right_number():
    """What the portal and 'nexus client show' print: '1 night so far', never '1 night(s)'."""
    assert natural_night_due(_nights("S"), every=3)[1].startswith("1 night so far;")
    assert natural_night_due([], every=3)[1].startswith("0 nights so far;")
    assert "in the last 2 nights:" in natural_night_due(_nights("SS"), every=3)[1]
    assert "only 1 natural night with" in weaning_plan(_nights("SSSSN")).reason
    reasons = [natural_night_due(_nights(p), every=3)[1] for p in ("", "S", "SS", "NS")]
    reasons.append(weaning_plan(_nights("SSSSN")).reason)
    assert not [r for r in reasons if "(s)" in r]
