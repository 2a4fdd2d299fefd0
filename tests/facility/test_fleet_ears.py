"""A sink bank's delivery to synthetic sleepers: one play_many call per delivery, each outcome at its own bed, the
same outcomes as one play call per command; a batch that fails puts its beds in the safe state."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from nexus.facility.beds import SleeperSink
from nexus.sinks.bedside import CountingSink, SinkBank, TeeSink
from nexus.sources.synthetic import SyntheticFleet

N = 12


class _Counted(SyntheticFleet):
    """A fleet that counts its calls."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.calls = {"play": 0, "play_many": 0}

    def play(self, *a, **k):
        self.calls["play"] += 1
        return super().play(*a, **k)

    def play_many(self, *a, **k):
        self.calls["play_many"] += 1
        return super().play_many(*a, **k)


class _OneByOne:
    """A fleet seen without play_many: its sinks play each command at once."""

    def __init__(self, fleet):
        self.fleet = fleet

    def play(self, *a):
        return self.fleet.play(*a)


def _fleet(cls=SyntheticFleet):
    f = cls("typical_adult", seeds=range(N), hours=0.2, fs=100.0, channels=("EEG C4-M1", "EMG Chin"))
    f.next_chunk(1500)
    return f


PROGRAM = SimpleNamespace(limits=SimpleNamespace(max_level_db=0.0), scenes={})


def cmd(session, t, kind, **params):
    return SimpleNamespace(session=session, t=t, kind=kind, params=params)


def _commands():
    """One tick's commands: loud cues wake some beds, softer ones do not, one bed gets two, one a click."""
    rng = np.random.default_rng(1)
    out = [cmd(s, 15.2, "cue", level_db=float(rng.uniform(-35.0, -5.0))) for s in range(N)]
    return [*out, cmd(4, 15.3, "protect", level_db=-8.0), cmd(7, 15.4, "click", level_db=-30.0)]


def _bank(fleet, tee=False):
    bank = SinkBank(N)
    sinks = [SleeperSink(fleet, k, PROGRAM) for k in range(N)]
    for k, s in enumerate(sinks):
        bank.attach(k, TeeSink([s, CountingSink()]) if tee else s)
    bank.renew(np.arange(N), 15.0)
    return bank, sinks


def test_a_delivery_is_one_call_with_the_outcomes_of_one_call_per_command():
    ref_fleet = _fleet()
    ref_bank, ref_sinks = _bank(_OneByOne(ref_fleet))
    fleet = _fleet(_Counted)
    bank, sinks = _bank(fleet, tee=True)  # through a tee: the batch is the ears' of the sleeper behind it
    for rep in (ref_bank.deliver(_commands(), 15.0), bank.deliver(_commands(), 15.0)):
        assert rep.played == N + 2 and not rep.failed
    assert fleet.calls == {"play": 4, "play_many": 1}  # beds 4 and 7 hear twice: through play, in turn
    assert [s.outcomes for s in sinks] == [s.outcomes for s in ref_sinks]
    outcomes = {k for s in sinks for k in s.outcomes}
    assert {"prompt:awakening", "prompt:none"} <= outcomes  # both kinds of answers, each counted at its bed
    assert sum(sum(s.outcomes.values()) for s in sinks) == N + 2  # every command once
    assert fleet.responses == ref_fleet.responses
    np.testing.assert_array_equal(fleet.next_chunk(3000), ref_fleet.next_chunk(3000))
    # the next delivery plays only its own commands
    assert bank.deliver([cmd(2, 16.0, "cue", level_db=-5.0)], 16.0).played == 1
    assert fleet.calls == {"play": 4, "play_many": 2} and len(fleet.responses) == N + 3
    # outside a delivery a command is played at once
    sinks[3].play(cmd(3, 17.0, "cue", level_db=-5.0))
    assert fleet.calls == {"play": 5, "play_many": 2} and sum(sinks[3].outcomes.values()) == 2


def test_a_failing_batch_puts_the_beds_it_held_in_the_safe_state():
    class Broken(SyntheticFleet):
        def play_many(self, *a, **k):
            raise RuntimeError("sleepers gone")

    bank, sinks = _bank(_fleet(Broken))
    bank.lease_until[5] = 10.0  # bed 5's lease lapsed: refused, not failed
    rep = bank.deliver([cmd(1, 15.1, "cue", level_db=-20.0), cmd(5, 15.1, "cue", level_db=-20.0),
                        cmd(8, 15.1, "cue", level_db=-20.0)], 15.0)
    assert rep.refused == 1 and sorted(rep.failed) == [1, 8]
    assert sinks[1].safe and sinks[8].safe and bank.lapsed[[1, 8]].all() and not bank.lapsed[[0, 5]].any()
    assert all(s.outcomes == {} for s in sinks)
