"""An episode raised when it opens and again when it closes is one row of the night (simulate's glitch rows)."""

from __future__ import annotations

from nexus.monitor.glitch import Glitch, one_per_episode


def test_open_and_close_of_one_episode_are_one_record_with_its_duration() -> None:
    opened = Glitch("bed-1", 100.0, "distress", "distress")
    closed = Glitch("bed-1", 100.0, "distress", "distress", duration_s=95.0)
    pop = Glitch("bed-1", 120.0, "electrode_pop", "pop", channel="EEG C4-M1")
    pop_other = Glitch("bed-1", 120.0, "electrode_pop", "pop", channel="EEG Fpz-Cz")
    later = Glitch("bed-1", 400.0, "distress", "distress")  # another episode, still open at the end
    other_bed = Glitch("bed-2", 100.0, "distress", "distress", duration_s=30.0)
    recs = [g.as_record() for g in (opened, pop, pop_other, closed, later, other_bed)]
    out = one_per_episode(recs)
    assert [(r["session"], r["description"], r["channel"], r["onset"], r["duration"]) for r in out] == [
        ("bed-1", "distress", None, 100.0, 95.0),
        ("bed-1", "electrode_pop", "EEG C4-M1", 120.0, 0.0),
        ("bed-1", "electrode_pop", "EEG Fpz-Cz", 120.0, 0.0),
        ("bed-1", "distress", None, 400.0, 0.0),
        ("bed-2", "distress", None, 100.0, 30.0),
    ]
    # a closing record never gives way to a later open one of the same key
    assert one_per_episode([recs[3], recs[0]])[0]["duration"] == 95.0
