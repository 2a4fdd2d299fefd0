"""The extraction state machine: stop at once, then wake or release; idempotent; conflicts go to the safest."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.core.errors import InvalidInputError
from nexus.safety.extraction import (
    SAFETY_ORDER,
    ExtractionMachine,
    ExtractionMode,
    Phase,
    WakeRamp,
    parse_mode,
    safest,
)

DEEP = np.array([[0.0, 0.05, 0.1, 0.85, 0.0]])  # N3: not light sleep
LIGHT = np.array([[0.1, 0.2, 0.6, 0.1, 0.0]])  # P(W+N1+N2) = 0.9


def test_every_mode_stops_stimulation_at_once():
    for mode in SAFETY_ORDER:
        m = ExtractionMachine(1)
        out, actions = m.order(0, mode, 10.0)
        assert out.outcome == "started" and out.mode == mode
        assert actions[0].kind == "stop" and actions[0].t == 10.0
        assert m.safe_at[0] == 10.0 and m.extracting[0]


def test_release_plays_nothing_more_and_never_ends_by_itself():
    m = ExtractionMachine(1)
    _, actions = m.order(0, "release", 0.0)
    assert [a.kind for a in actions] == ["stop"]
    assert m.advance(1e6, LIGHT) == [] and m.phase[0] == Phase.RELEASED


def test_gentle_waits_for_light_sleep_then_ramps_then_ends():
    m = ExtractionMachine(1, max_wait_s=600.0, max_ramp_s=120.0)
    _, actions = m.order(0, "gentle", 0.0, WakeRamp("birdsong", -50.0, -25.0, 600.0))
    assert [a.kind for a in actions] == ["stop"]
    assert m.advance(30.0, DEEP) == []  # deep sleep: keep waiting
    wake = m.advance(60.0, LIGHT)
    assert [a.kind for a in wake] == ["wake"]
    assert wake[0].params == {"sound": "birdsong", "from_db": -50.0, "to_db": -25.0, "over_s": 120.0}  # capped
    assert m.advance(179.0, LIGHT) == []
    end = m.advance(180.0, LIGHT)
    assert [a.kind for a in end] == ["end"] and m.done_at[0] == 180.0 and m.take_done() == [0]


def test_gentle_wait_is_bounded_and_unstaged_beds_do_not_count_as_light():
    m = ExtractionMachine(1, max_wait_s=300.0)
    m.order(0, "gentle", 0.0)
    assert m.advance(299.0, np.full((1, 5), np.nan)) == []
    assert [a.kind for a in m.advance(300.0, DEEP)] == ["wake"]


def test_immediate_wakes_at_once_with_a_short_rise():
    m = ExtractionMachine(1, immediate_ramp_s=5.0)
    _, actions = m.order(0, "immediate", 3.0)
    assert [a.kind for a in actions] == ["stop", "wake"]
    assert actions[1].params["over_s"] == 5.0 and actions[1].params["to_db"] == -25.0
    assert [a.kind for a in m.advance(8.0)] == ["end"]


def test_orders_are_idempotent():
    m = ExtractionMachine(1)
    m.order(0, "gentle", 0.0)
    again, actions = m.order(0, "gentle", 5.0)
    assert again.outcome == "unchanged" and actions == []
    assert m.ordered_at[0] == 0.0 and m.deadline[0] == 600.0  # the second order did not move the deadline


def test_a_less_firm_order_keeps_the_safer_one():
    m = ExtractionMachine(1)
    m.order(0, "immediate", 0.0)
    out, actions = m.order(0, "release", 1.0)
    assert out.outcome == "unchanged" and out.mode == ExtractionMode.IMMEDIATE and actions == []
    assert m.phase[0] == Phase.WAKING


def test_a_firmer_order_escalates_without_restarting_anything():
    m = ExtractionMachine(1, immediate_ramp_s=5.0)
    m.order(0, "release", 0.0)
    out, actions = m.order(0, "gentle", 10.0)
    assert out.outcome == "escalated" and [a.kind for a in actions] == []  # no second "stop"
    m.advance(20.0, LIGHT)  # gentle ramp starts (600 s by default)
    out, actions = m.order(0, "immediate", 30.0)
    assert out.outcome == "escalated" and [a.kind for a in actions] == ["wake"]
    assert m.wake_until[0] == 35.0  # the immediate wake shortens the gentle ramp
    assert m.ordered_at[0] == 0.0 and m.safe_at[0] == 0.0


def test_an_ended_extraction_cannot_be_ordered_again():
    m = ExtractionMachine(1)
    m.order(0, "immediate", 0.0)
    m.advance(10.0)
    out, actions = m.order(0, "gentle", 11.0)
    assert out.outcome == "already_done" and actions == []


def test_bad_modes_and_slots_are_refused_with_a_clear_message():
    m = ExtractionMachine(2)
    with pytest.raises(InvalidInputError, match=r"Invalid value for 'mode'.*gentle"):
        m.order(0, "panic", 0.0)
    with pytest.raises(InvalidInputError, match="slot"):
        m.order(5, "gentle", 0.0)
    assert parse_mode("GENTLE") is ExtractionMode.GENTLE


def test_safest_ranks_immediate_over_gentle_over_release():
    assert safest("release", "gentle") is ExtractionMode.GENTLE
    assert safest("gentle", "immediate", "release") is ExtractionMode.IMMEDIATE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([m.value for m in SAFETY_ORDER]),
                          st.floats(0.0, 50.0), st.booleans()), min_size=1, max_size=12))
def test_property_mode_in_force_is_the_safest_ordered_and_stop_happens_once(orders):
    m = ExtractionMachine(1, max_wait_s=20.0, max_ramp_s=10.0, immediate_ramp_s=2.0)
    t, stops, ordered = 0.0, 0, []
    for mode, dt, light in orders:
        t += dt
        m.advance(t, LIGHT if light else DEEP)
        out, actions = m.order(0, mode, t)
        stops += sum(a.kind == "stop" for a in actions)
        if out.outcome != "already_done":
            ordered.append(mode)
            assert m.mode(0) is safest(*ordered)
        assert m.phase[0] != Phase.NONE  # once ordered, the program never comes back
    assert stops == 1
    # and every wake ends: within max_wait + max_ramp the bed is done (or released)
    m.advance(t + 20.0, DEEP)
    m.advance(t + 40.0, DEEP)
    assert m.phase[0] in (Phase.DONE, Phase.RELEASED)


def test_settings_are_checked_by_name():
    with pytest.raises(InvalidInputError, match=r"^Invalid value for 'n': expected >= 1, got 0\.$"):
        ExtractionMachine(0)
    with pytest.raises(InvalidInputError, match="light_p"):
        ExtractionMachine(2, light_p=1.5)
    assert ExtractionMachine(2, light_p=1.0).light_p == 1.0


def test_outcomes_name_their_bed_and_release_says_what_it_does():
    m = ExtractionMachine(3)
    out, _ = m.order(2, "release", 5.0)
    assert (out.slot, out.t, out.outcome) == (2, 5.0, "started")
    assert out.reason == "Released to natural sleep: record only, nothing more is played."


def test_an_immediate_wake_rises_10_db_to_the_ramps_end_and_a_gentle_one_plays_the_ramp():
    ramp = WakeRamp("birdsong", -50.0, -25.0, 600.0)
    m = ExtractionMachine(2)
    _, actions = m.order(0, "immediate", 1.0, ramp)
    [wake] = [a for a in actions if a.kind == "wake"]
    assert wake.params == {"sound": "birdsong", "from_db": -35.0, "to_db": -25.0, "over_s": m.immediate_ramp_s}
    _, actions = m.order(1, "gentle", 1.0, ramp)
    assert [a.kind for a in actions] == ["stop"]
    [wake] = m.advance(2.0, np.vstack([LIGHT, LIGHT]))
    assert (wake.slot, wake.kind) == (1, "wake")
    assert wake.params == {"sound": "birdsong", "from_db": -50.0, "to_db": -25.0, "over_s": m.max_ramp_s}


def test_a_gentle_wake_that_waited_in_vain_still_plays_the_gentle_ramp():
    ramp = WakeRamp("birdsong", -50.0, -25.0, 120.0)
    m = ExtractionMachine(1)
    m.order(0, "gentle", 0.0, ramp)
    assert m.advance(m.max_wait_s - 1.0, DEEP) == []
    [wake] = m.advance(m.max_wait_s, DEEP)
    assert wake.params == {"sound": "birdsong", "from_db": -50.0, "to_db": -25.0, "over_s": 120.0}
    assert wake.reason.startswith("Gentle wake: no light sleep within")
