"""What the extraction machine tells staff and the audit log, pinned: the reasons of each order and action,
the bounds of its settings, and the light-sleep threshold taken inclusively."""

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.safety.extraction import ExtractionMachine, ExtractionMode, Phase

DEEP = np.array([[0.0, 0.05, 0.1, 0.85, 0.0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_wait_s": -1}, "Invalid value for 'max_wait_s': expected >= 0 s, got -1 s."),
        ({"max_ramp_s": 0}, "Invalid value for 'max_ramp_s': expected > 0 s, got 0 s."),
        ({"immediate_ramp_s": 0}, "Invalid value for 'immediate_ramp_s': expected > 0 s, got 0 s."),
    ],
    ids=["wait", "ramp", "immediate"],
)
def test_settings_are_checked_with_name_and_unit(kwargs, message):
    with pytest.raises(InvalidInputError) as err:
        ExtractionMachine(1, **kwargs)
    assert str(err.value) == message


def test_a_slot_out_of_range_names_the_valid_range():
    with pytest.raises(InvalidInputError) as err:
        ExtractionMachine(3).order(3, "gentle", 0.0)
    assert str(err.value) == "Invalid value for 'slot': expected 0..2, got 3."


def test_fresh_state_of_a_slot():
    m = ExtractionMachine(2)
    assert m.phase.dtype == np.int8 and (m.phase == Phase.NONE).all()
    assert m.wake_at.dtype == np.float64 and np.isnan(m.wake_at).all()


def test_reasons_of_orders():
    m = ExtractionMachine(1, max_wait_s=300.0)
    out, _ = m.order(0, "gentle", 1.0)
    assert (out.requested, out.mode, out.outcome) == (ExtractionMode.GENTLE, ExtractionMode.GENTLE, "started")
    assert out.reason == "Gentle wake: waiting for light sleep, at most 300 s."
    same, _ = m.order(0, "gentle", 2.0)
    assert same.reason == "Already under a gentle extraction; the order is idempotent."
    up, actions = m.order(0, "immediate", 3.0)
    assert (up.requested, up.mode, up.outcome) == (ExtractionMode.IMMEDIATE, ExtractionMode.IMMEDIATE, "escalated")
    assert up.reason == "Immediate wake: the wake sound rises over 5 s."
    assert [(a.kind, a.reason) for a in actions] == [("wake", "Immediate wake.")]
    down, _ = m.order(0, "release", 4.0)
    assert (down.requested, down.mode, down.outcome) == (ExtractionMode.RELEASE, ExtractionMode.IMMEDIATE,
                                                         "unchanged")
    assert down.reason == "A immediate extraction is already in force and is safer than release; it is kept."
    end = m.advance(8.0)
    assert [(a.kind, a.reason) for a in end] == [("end", "The wake ramp is over: silence; the session ends.")]


def test_reasons_of_gentle_wakes():
    m = ExtractionMachine(2, max_wait_s=300.0)
    m.order(0, "gentle", 0.0)
    m.order(1, "gentle", 0.0)
    light = np.array([[0.5, 0.25, 0.0, 0.25, 0.0], *DEEP])  # bed 0 exactly at the 0.75 threshold
    m.light_p = 0.75
    woke = m.advance(10.0, light)
    assert [(a.slot, a.reason) for a in woke] == [(0, "Gentle wake: the sleeper is in light sleep.")]
    late = m.advance(300.0, light)
    wakes = [(a.slot, a.reason) for a in late if a.kind == "wake"]
    assert wakes == [(1, "Gentle wake: no light sleep within 300 s; waking anyway.")]
