"""Extraction through the facility loop: silent before extract() returns, woken, ended, journaled."""

from __future__ import annotations

import numpy as np
import pytest

from nexus.core.clock import ManualClock
from nexus.core.errors import NotFoundError, StateError
from nexus.dreamscape.presets import default_clas_program
from nexus.dreamscape.schema import Program, Scene
from nexus.facility.analyzers import default_analyzers
from nexus.facility.benchmark import LoopedFleet, _signals_at
from nexus.facility.supervisor import Supervisor
from nexus.sinks.bedside import CountingSink

CH = ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG")
FS = 100.0


@pytest.fixture(scope="module")
def signals():
    return _signals_at(3, 40, 1.0, 200.0, FS, CH).astype(np.float64)


def _program() -> Program:
    p = default_clas_program()
    # a scene in every stage, so that the bed is hearing something when the order comes
    return p.model_copy(update={"scenes": {**p.scenes, "bed": Scene(layers=[{"sound": "rain", "level_db": -35}])},
                                "rules": {"W": "bed", "N1": "bed", "N2": "bed", "N3": "deep", "R": "bed"}})


class _Ears(CountingSink):
    """Counts what it hears after it went safe (must stay empty unless a wake is played)."""

    def __init__(self):
        super().__init__()
        self.silenced_at = []

    def _silence(self, t):
        self.silenced_at.append(t)


def _facility(signals, n=3, programs=None):
    sup = Supervisor(ManualClock(), analyzers=default_analyzers(block_s=0.1, events=False), step_s=0.25,
                     buffer_s=4.0)
    programs = programs or [_program()] * n
    sinks = [_Ears() if p is not None else None for p in programs]
    sup.add_fleet(LoopedFleet(signals[:n], FS, CH), [f"bed-{k}" for k in range(n)], programs=programs, sinks=sinks)
    decisions = []
    sup.listeners.append(lambda kind, recs: decisions.extend(r for r in recs if r.get("kind") == "decision"))
    sup.run(40.0, tick_s=1.0)
    return sup, sinks, decisions


def test_immediate_extraction_silences_before_returning_then_wakes_and_ends(signals):
    sup, sinks, decisions = _facility(signals)
    assert any(c.kind == "scene" for c in sinks[0].played)
    n_before = len(sinks[0].played)
    [rep] = sup.extract("bed-0", "immediate")
    assert sinks[0].silenced_at and sinks[0].safe is False  # silenced, then the wake sound started
    assert rep.outcome == "started" and rep.safe_wall is not None
    after = sinks[0].played[n_before:]
    assert [c.kind for c in after] == ["wake"]  # nothing of the program: no scene, cue or click
    sup.run(10.0, tick_s=1.0)
    assert sup.sessions["bed-0"].state == "ended" and rep.ended and rep.done_wall >= rep.safe_wall
    assert [c.kind for c in sinks[0].played[n_before:]] == ["wake"]
    assert sinks[0].safe  # silent again at the end
    # the other beds go on
    assert sup.sessions["bed-1"].state == "running" and len(sinks[1].played) > 0
    kinds = [d["description"] for d in decisions if d["session"] == "bed-0" and d["description"].startswith("ext")]
    assert kinds == ["extraction_order", "extraction_stop", "extraction_wake", "extraction_end"]
    sup.close()


def test_release_keeps_recording_and_plays_nothing(signals):
    sup, sinks, _ = _facility(signals)
    n_before = len(sinks[1].played)
    sup.extract("bed-1", "release")
    sup.run(60.0, tick_s=1.0)
    assert sinks[1].played[n_before:] == []
    assert sup.sessions["bed-1"].state == "running"  # record only: the night goes on
    assert sup.session_counts("bed-1")["received"] > 0
    sup.close()


def test_gentle_extraction_wakes_within_the_bounded_wait(signals):
    sup, sinks, _ = _facility(signals)
    loop = sup.lanes[0].analyzer("dreamscape")
    loop.extraction.max_wait_s, loop.extraction.max_ramp_s = 20.0, 10.0
    n_before = len(sinks[2].played)
    sup.extract("bed-2", "gentle")
    sup.run(40.0, tick_s=1.0)
    assert [c.kind for c in sinks[2].played[n_before:]] == ["wake"]
    assert sup.sessions["bed-2"].state == "ended"
    sup.close()


def test_extract_all_and_conflicting_orders_resolve_to_the_safest(signals):
    sup, sinks, _ = _facility(signals)
    sup.extract("bed-0", "gentle")
    reps = sup.extract(None, "release")
    by = {r.session: r for r in reps}
    assert by["bed-0"].outcome == "unchanged" and by["bed-0"].mode == "gentle"
    assert by["bed-1"].outcome == "started" and by["bed-1"].mode == "release"
    assert all(s.safe for s in sinks)  # every bed silent before extract() returned
    again = sup.extract(None, "release")
    assert {r.outcome for r in again} == {"unchanged"}
    sup.close()


def test_unknown_or_ended_sessions_are_refused_and_nothing_changes(signals):
    sup, _, _ = _facility(signals, n=2)
    with pytest.raises(NotFoundError, match="No session 'bed-9'"):
        sup.extract("bed-9", "gentle")
    sup.end_session("bed-1")
    with pytest.raises(StateError, match="already ended"):
        sup.extract("bed-1", "gentle")
    assert sup.extractions == {}
    sup.close()


def test_a_natural_night_is_extracted_too(signals):
    sup, _, _ = _facility(signals, n=2, programs=[None, _program()])
    [rep] = sup.extract("bed-0", "immediate")
    assert rep.outcome == "started"
    sup.run(10.0, tick_s=1.0)
    assert sup.sessions["bed-0"].state == "ended"
    sup.close()
