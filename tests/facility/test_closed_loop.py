"""The closed loop in the lane: each bed's dreamscape decided, played, leased and journaled."""

from __future__ import annotations

import numpy as np
import pytest

from nexus.core.clock import ManualClock
from nexus.dreamscape.presets import default_clas_program
from nexus.dreamscape.schema import Program, Scene
from nexus.facility.analyzers import default_analyzers
from nexus.facility.benchmark import LoopedFleet, _signals_at
from nexus.facility.supervisor import Supervisor
from nexus.sinks.bedside import BedSink, CountingSink, SinkBank

CH = ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG")
FS = 100.0
SECONDS = 240.0


@pytest.fixture(scope="module")
def signals():
    """Four minutes of three sleepers, cut 1 h into the night (asleep: scenes change, slow waves)."""
    return _signals_at(3, 40, 1.0, SECONDS + 5.0, FS, CH).astype(np.float64)


def _program() -> Program:
    p = default_clas_program()
    # a scene for every stage, so that the stage-driven rules issue commands too
    return p.model_copy(update={"scenes": {**p.scenes, "bed": Scene(layers=[{"sound": "rain", "level_db": -35}])},
                                "rules": {"W": "bed", "N1": "bed", "N2": "silence", "N3": "deep", "R": "silence"}})


def _run(data, programs, sinks=None, patch=None):
    sup = Supervisor(ManualClock(), analyzers=default_analyzers(block_s=0.1), step_s=0.25, buffer_s=4.0)
    names = [f"bed-{k}" for k in range(data.shape[0])]
    sinks = sinks if sinks is not None else [CountingSink() if p is not None else None for p in programs]
    sup.add_fleet(LoopedFleet(data, FS, CH), names, programs=programs, sinks=sinks)
    decisions = []
    sup.listeners.append(lambda kind, recs: decisions.extend(r for r in recs if r["kind"] == "decision"))
    loop = sup.lanes[0].analyzer("dreamscape")
    if patch is not None:
        patch(loop)
    sup.run(SECONDS, tick_s=1.0)
    bank_renewals = loop.bank.renewals.copy()
    sup.close()
    return sup, sinks, decisions, bank_renewals


def _key(c):
    return (c.kind, round(c.t, 6), tuple(sorted((k, str(v)) for k, v in c.params.items())))


def test_a_beds_commands_equal_what_the_controller_decides_for_it_alone(signals):
    prog = _program()
    _, sinks, decisions, _ = _run(signals, [prog, prog, prog])
    _, alone, _, _ = _run(signals[1:2], [prog])
    together = [_key(c) for c in sinks[1].played]
    assert together, "the bed heard nothing: the loop is not closed"
    assert together == [_key(c) for c in alone[0].played]
    kinds = {c.kind for s in sinks for c in s.played}
    assert {"scene", "click"} <= kinds
    # every played command was journaled as a decision with its inputs and reason
    journaled = [d for d in decisions if d["session"] == "bed-1" and d["command"] is not None]
    assert len(journaled) >= len(sinks[1].played)
    assert all(d["reason"] and isinstance(d["inputs"], dict) for d in journaled)


def test_natural_nights_hear_nothing_and_leases_are_renewed_every_step(signals):
    prog = _program()
    sup, sinks, decisions, renewals = _run(signals, [prog, None, prog])
    assert sinks[1] is None
    assert not [d for d in decisions if d["session"] == "bed-1"]
    steps = round(SECONDS / 0.25)
    # every step renews every running bed's lease (natural nights included: nothing to play, nothing lapses)
    assert renewals.tolist() == [steps, steps, steps]
    assert not [g for g in sup.glitches if g.kind == "lease_lapsed"]


class _BrokenSink(BedSink):
    def __init__(self):
        super().__init__()
        self.played = []

    def _play(self, command):
        if len(self.played) >= 1:
            raise OSError("audio device unplugged")
        self.played.append(command)


def test_a_failing_sink_puts_only_its_bed_in_the_safe_state(signals):
    prog = _program()
    _, ok_sinks, _, _ = _run(signals, [prog, prog, prog])
    broken = _BrokenSink()
    sinks = [CountingSink(), broken, CountingSink()]
    sup, sinks, _, _ = _run(signals, [prog, prog, prog], sinks=sinks)
    assert broken.safe and len(broken.played) == 1
    assert [g.kind for g in sup.glitches if g.session == "bed-1"] == ["sink_error"]
    for k in (0, 2):  # the other beds heard exactly what they hear when nothing fails
        assert [_key(c) for c in sinks[k].played] == [_key(c) for c in ok_sinks[k].played]


def test_a_failing_program_puts_only_its_bed_in_the_safe_state(signals):
    prog = _program()
    _, ok_sinks, _, _ = _run(signals, [prog, prog, prog])

    def break_bed_0(loop):
        real = loop.ctrl._set_scene

        def set_scene(s, name):
            if s == 0 and name not in ("silence", "\0"):
                raise KeyError(name)
            real(s, name)

        loop.ctrl._set_scene = set_scene

    sup, sinks, decisions, _ = _run(signals, [prog, prog, prog], patch=break_bed_0)
    assert [g.kind for g in sup.glitches if g.session == "bed-0"] == ["controller_error"]
    assert [d["description"] for d in decisions if d["session"] == "bed-0"][-1] == "controller_error"
    assert sinks[0].safe
    for k in (1, 2):
        assert [_key(c) for c in sinks[k].played] == [_key(c) for c in ok_sinks[k].played]


class _Cmd:
    def __init__(self, session, t, kind, params=None):
        self.session, self.t, self.kind, self.params = session, t, kind, params or {}


def test_a_lapsed_lease_silences_the_bed_and_refuses_commands():
    bank = SinkBank(2, lease_s=2.0)
    a, b = CountingSink(), CountingSink()
    bank.attach(0, a)
    bank.attach(1, b)
    bank.renew([0, 1], 0.0)
    rep = bank.deliver([_Cmd(0, 1.0, "scene", {"name": "x"}), _Cmd(1, 1.0, "scene", {"name": "x"})], 1.0)
    assert rep.played == 2 and not a.safe
    bank.renew([1], 1.5)  # the controller of bed 0 stopped renewing
    assert bank.expire(2.5).tolist() == [0]
    assert a.safe and not b.safe
    rep = bank.deliver([_Cmd(0, 2.6, "click", {"level_db": -30}), _Cmd(1, 2.6, "click", {"level_db": -30})], 2.5)
    assert (rep.played, rep.refused) == (1, 1)
    assert bank.expire(2.5).size == 0  # a lapsed bed is silenced once


def test_clicks_that_would_arrive_late_are_dropped_not_played_on_the_wrong_phase():
    bank = SinkBank(1)
    s = CountingSink()
    bank.attach(0, s)
    bank.renew([0], 10.0)
    rep = bank.deliver([_Cmd(0, 9.9, "click", {"level_db": -30}), _Cmd(0, 10.1, "click", {"level_db": -30})], 10.0)
    assert (rep.played, rep.late) == (1, 1)
    assert s.played[0].t == 10.1


def test_levels_never_exceed_the_sink_ceiling():
    s = CountingSink(ceiling_dbfs=-30.0)
    assert s.level_db(-10.0) == -30.0
    assert s.level_db(-45.0) == -45.0
    assert CountingSink(ceiling_dbfs=0.0).level_db(0.0) == -12.0  # the facility's hard ceiling


def test_a_program_edited_mid_night_is_checked_and_a_bad_edit_keeps_the_last_valid(signals):
    import yaml

    prog = _program()
    sup = Supervisor(ManualClock(), analyzers=default_analyzers(block_s=0.1, events=False), step_s=0.25)
    sinks = [CountingSink()]
    sup.add_fleet(LoopedFleet(signals[:1], FS, CH), ["bed-0"], programs=[prog], sinks=sinks)
    decisions = []
    sup.listeners.append(lambda kind, recs: decisions.extend(r for r in recs if r["kind"] == "decision"))
    sup.run(60.0, tick_s=1.0)
    bad = yaml.safe_dump({**prog.model_dump(mode="json", exclude_none=True), "limits": {"max_level_db": 6}})
    assert not sup.update_program("bed-0", bad).ok
    loop = sup.lanes[0].analyzer("dreamscape")
    assert loop.ctrl.programs[0] is prog
    quiet = prog.model_copy(update={"name": "quiet", "rules": {}, "scenes": {}})
    rep = sup.update_program("bed-0", yaml.safe_dump(quiet.model_dump(mode="json", exclude_none=True)))
    assert rep.ok and loop.ctrl.programs[0].name == "quiet"
    n_before = len(sinks[0].played)
    sup.run(60.0, tick_s=1.0)
    sup.close()
    kinds = [d["description"] for d in decisions]
    assert "program_rejected" in kinds and "program_updated" in kinds
    # the new program plays nothing: at most the silence that ends the old scene
    assert {c.kind for c in sinks[0].played[n_before:]} <= {"silence"}
