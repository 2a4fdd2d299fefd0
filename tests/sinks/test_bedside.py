"""Bed sinks and the sink bank's rules, without a facility: the level ceiling, the safe state, tee outputs, leases
(renewal, lapse, the dead-man's switch), delivery (refused, late and failing commands) and closing."""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.sinks.bedside import COMMAND_KINDS, CountingSink, Delivery, SinkBank, TeeSink
from nexus.sinks.limiter import HARD_CEILING_DBFS


def cmd(session, t, kind="cue", **params):
    return SimpleNamespace(session=session, t=t, kind=kind, params=params)


class Probe(CountingSink):
    """A sink that records when it was silenced and closed, and can be told to fail."""

    def __init__(self, ceiling_dbfs=HARD_CEILING_DBFS, fail_on=(), fail_silence=False, fail_close=False, batch=None):
        super().__init__(ceiling_dbfs)
        self.silenced: list[float] = []
        self.closed = 0
        self.fail_on, self.fail_silence, self.fail_close = set(fail_on), fail_silence, fail_close
        self.batch = batch

    def _play(self, command):
        if command.kind in self.fail_on:
            raise RuntimeError(f"device gone during {command.kind}")
        super()._play(command)

    def _silence(self, t):
        self.silenced.append(t)
        if self.fail_silence:
            raise OSError("stuck buffer")

    def close(self):
        self.closed += 1
        if self.fail_close:
            raise OSError("cannot close")

    def batches(self):
        return () if self.batch is None else (self.batch,)


class Gather:
    """A batch that counts its begins and flushes, and can be told to fail at its flush."""

    def __init__(self, fail=False):
        self.begun = self.flushed = 0
        self.fail = fail

    def begin(self):
        self.begun += 1

    def flush(self):
        self.flushed += 1
        if self.fail:
            raise OSError("ears gone")


def _bank(n, lease_s=2.0, now=0.0, **probe):
    bank = SinkBank(n, lease_s=lease_s)
    sinks = [Probe(**probe) for _ in range(n)]
    for k, s in enumerate(sinks):
        bank.attach(k, s)
    bank.renew(np.arange(n), now)
    return bank, sinks


# -- one bed's sink -------------------------------------------------------------------------------------------------
def test_level_never_exceeds_the_sink_ceiling_nor_the_facility_ceiling():
    s = CountingSink(-30.0)
    assert s.level_db(-40.0) == -40.0 and s.level_db(-30.0) == -30.0 and s.level_db(-20.0) == -30.0
    assert isinstance(s.level_db(np.float32(-50.0)), float)
    loud = CountingSink(0.0)  # a sink cannot ask for more than the facility's hard ceiling
    assert loud.level_db(-3.0) == HARD_CEILING_DBFS and loud.level_db(-20.0) == -20.0


def test_a_sink_is_safe_until_it_plays_and_again_after_silence():
    s = CountingSink()
    assert s.safe and s.played == []
    for kind in ("scene", "click", "cue", "protect", "wake"):
        s.play(cmd(0, 1.0, kind))
        assert not s.safe, kind
    s.play(cmd(0, 2.0, "silence"))
    assert s.safe
    assert [c.kind for c in s.played] == ["scene", "click", "cue", "protect", "wake", "silence"]
    assert set(COMMAND_KINDS) == {"scene", "silence", "click", "cue", "protect", "wake"}


def test_an_unknown_command_is_refused_by_name_and_changes_nothing():
    s = CountingSink()
    s.play(cmd(0, 1.0, "scene"))
    with pytest.raises(ValueError, match=r"Unknown command kind 'boom' \(known: scene, silence, click, cue, protect, "
                                         r"wake\)\."):
        s.play(cmd(0, 2.0, "boom"))
    assert len(s.played) == 1 and not s.safe  # still playing its scene, nothing recorded for the bad command


def test_going_safe_silences_at_the_given_time_and_never_raises(caplog):
    ok, broken = Probe(), Probe(fail_silence=True)
    for s in (ok, broken):
        s.play(cmd(0, 1.0, "scene"))
    ok.go_safe(3.5)
    assert ok.safe and ok.silenced == [3.5]
    with caplog.at_level(logging.ERROR, logger="nexus"):
        broken.go_safe(4.0)  # a sink that fails while going silent is still marked safe; the error is logged
    assert broken.safe and broken.silenced == [4.0]
    assert [r.getMessage() for r in caplog.records] == ["Sink failed while going silent: stuck buffer"]
    CountingSink().go_safe(1.0)  # the default hook: nothing to stop
    CountingSink().close()


def test_a_tee_plays_silences_and_closes_every_output_under_the_lowest_ceiling():
    a, b = Probe(-20.0), Probe(-35.0)
    tee = TeeSink([a, b])
    assert tee.limiter.ceiling_dbfs == -35.0 and tee.level_db(-25.0) == -35.0
    assert TeeSink([Probe(-20.0), Probe(-14.0)]).limiter.ceiling_dbfs == -20.0
    tee.play(cmd(0, 1.0, "scene"))
    tee.play(cmd(0, 2.0, "click"))
    assert [c.kind for c in a.played] == [c.kind for c in b.played] == ["scene", "click"]
    assert not (tee.safe or a.safe or b.safe)
    tee.go_safe(5.0)
    assert tee.safe and a.safe and b.safe and a.silenced == b.silenced == [5.0]
    tee.close()
    assert a.closed == b.closed == 1


def test_a_new_delivery_is_empty_and_delivery_lists_are_not_shared():
    d, e = Delivery(), Delivery()
    assert (d.played, d.refused, d.late, d.failed, d.by_kind) == (0, 0, 0, [], {})
    d.failed.append(1)
    d.by_kind["click"] = 1
    assert e.failed == [] and e.by_kind == {}


# -- the bank and its leases ----------------------------------------------------------------------------------------
def test_bank_settings_are_checked():
    with pytest.raises(InvalidInputError, match=r"^Invalid value for 'capacity': expected >= 1, got 0\.$"):
        SinkBank(0)
    with pytest.raises(InvalidInputError, match=r"^Invalid value for 'lease_s': expected > 0 s, got 0 s\.$"):
        SinkBank(2, lease_s=0.0)
    bank = SinkBank(3)
    assert bank.capacity == 3 and bank.lease_s == 2.0 and bank.sinks == [None, None, None]
    assert np.all(bank.lease_until == -np.inf) and not bank.lapsed.any() and not bank.renewals.any()
    assert bank.renewals.dtype.kind == "i"  # counts (journaled as whole numbers)
    assert SinkBank(1).capacity == 1


def test_an_attached_bed_hears_nothing_until_its_lease_is_renewed():
    bank = SinkBank(2, lease_s=1.5)
    sink = Probe()
    bank.attach(1, sink)
    assert bank.sinks[1] is sink and bank.lease_until[1] == -np.inf
    rep = bank.deliver([cmd(1, 0.5, "scene")], 0.0)
    assert (rep.played, rep.refused) == (0, 1) and sink.played == []
    bank.renew([1], 10.0)
    assert bank.lease_until[1] == 11.5 and bank.renewals.tolist() == [0, 1] and bank.lease_until[0] == -np.inf
    bank.renew(np.array([1]), 10.5)
    assert bank.lease_until[1] == 12.0 and bank.renewals.tolist() == [0, 2]
    assert bank.deliver([cmd(1, 10.6, "scene")], 10.6).played == 1
    bank.renew([], 11.0)  # a step with no running bed renews nothing
    bank.renew(np.array([], dtype=np.int64), 11.0)
    assert bank.renewals.tolist() == [0, 2] and bank.lease_until[1] == 12.0


def test_a_lease_holds_up_to_its_end_and_lapses_after_it():
    bank, (s0, s1, s2) = _bank(3, lease_s=2.0, now=0.0)
    bank.renew([2], 1.0)  # bed 2's lease runs until 3 s, the others' until 2 s
    assert bank.expire(2.0).tolist() == []  # exactly at the end: still held
    assert bank.deliver([cmd(0, 2.0), cmd(1, 2.0), cmd(2, 2.0)], 2.0).played == 3
    gone = bank.expire(2.25)
    assert gone.tolist() == [0, 1] and gone.dtype.kind == "i"
    assert s0.safe and s1.safe and s0.silenced == s1.silenced == [2.25] and not s2.safe and s2.silenced == []
    assert bank.lapsed.tolist() == [True, True, False]
    assert bank.expire(2.5).tolist() == []  # each lapse once
    assert s0.silenced == [2.25]
    rep = bank.deliver([cmd(0, 2.5), cmd(1, 2.5), cmd(2, 2.5)], 2.5)
    assert (rep.played, rep.refused) == (1, 2) and len(s0.played) == 1 and len(s2.played) == 2
    bank.renew([0], 2.6)  # a renewed lease lifts the lapse
    assert bank.lapsed.tolist() == [False, True, False]
    assert bank.deliver([cmd(0, 2.7)], 2.7).played == 1


def test_a_lapsed_flag_refuses_commands_even_within_the_lease_time():
    bank, (s0,) = _bank(1, lease_s=5.0, now=0.0)
    bank.lapsed[0] = True  # e.g. the watchdog put the bed in the safe state
    rep = bank.deliver([cmd(0, 1.0)], 1.0)
    assert (rep.played, rep.refused) == (0, 1) and s0.played == []


def test_an_expired_bed_without_a_speaker_is_marked_lapsed_and_logged_beds_are_named(caplog):
    bank = SinkBank(3, lease_s=1.0)
    bank.attach(0, None)
    bank.attach(2, Probe())
    bank.renew([0, 2], 0.0)
    with caplog.at_level(logging.WARNING, logger="nexus"):
        assert bank.expire(1.5).tolist() == [0, 2]  # slot 1 never had a lease: nothing to expire
    assert bank.lapsed.tolist() == [True, False, True]
    assert [r.getMessage() for r in caplog.records] == ["Slot 2: lease lapsed at 1.000 s (now 1.500 s): safe state."]


def test_a_detached_bed_is_silenced_and_its_slot_free():
    bank, (_, s1) = _bank(2, now=0.0)
    assert bank.detach(1, 3.0) is s1
    assert s1.silenced == [3.0] and bank.sinks[1] is None and bank.lease_until[1] == -np.inf
    assert bank.detach(1, 4.0) is None  # nothing there any more
    assert bank.expire(100.0).tolist() == [0]  # the free slot never lapses
    fresh = Probe()
    bank.renew([0], 100.0)
    bank.lapsed[0] = True
    bank.renewals[0] = 7
    bank.attach(0, fresh)  # a new session starts with no lease, no renewals, not lapsed
    assert bank.lease_until[0] == -np.inf and bank.renewals[0] == 0 and not bank.lapsed[0]


# -- delivery -------------------------------------------------------------------------------------------------------
def test_delivery_counts_what_each_bed_played_by_kind_and_skips_beds_without_a_speaker():
    bank = SinkBank(3)
    sinks = [Probe(), None, Probe()]
    for k, s in enumerate(sinks):
        bank.attach(k, s)
    bank.renew([0, 1, 2], 0.0)
    rep = bank.deliver([cmd(0, 0.1, "scene"), cmd(1, 0.1, "scene"), cmd(2, 0.2, "click"), cmd(0, 0.3, "click"),
                        cmd(2, 0.4, "cue")], 0.1)
    assert (rep.played, rep.refused, rep.late, rep.failed) == (4, 0, 0, [])
    assert rep.by_kind == {"scene": 1, "click": 2, "cue": 1}
    assert [c.kind for c in sinks[0].played] == ["scene", "click"]
    assert [c.kind for c in sinks[2].played] == ["click", "cue"]


def test_clicks_whose_onset_has_passed_are_dropped_other_commands_are_not():
    bank, (s0,) = _bank(1, now=10.0)
    rep = bank.deliver([cmd(0, 9.9, "click"), cmd(0, 10.0, "click"), cmd(0, 9.5, "cue"), cmd(0, 9.95, "click"),
                        cmd(0, 10.2, "click")], 10.0)
    assert (rep.played, rep.late) == (3, 2) and rep.by_kind == {"click": 2, "cue": 1}
    assert [c.t for c in s0.played] == [10.0, 9.5, 10.2]
    # a fast-forward lane: clicks inside the block just processed are still due from late_before on
    rep = bank.deliver([cmd(0, 10.5, "click"), cmd(0, 10.3, "click")], 11.0, late_before=10.4)
    assert (rep.played, rep.late) == (1, 1) and s0.played[-1].t == 10.5


def test_a_sink_that_raises_goes_safe_and_the_other_beds_play_on(caplog):
    bank, sinks = _bank(3, now=0.0)
    sinks[1].fail_on = {"cue"}
    with caplog.at_level(logging.ERROR, logger="nexus"):
        rep = bank.deliver([cmd(0, 0.5), cmd(1, 0.5, "scene"), cmd(1, 0.6), cmd(1, 0.7, "scene"), cmd(2, 0.8)], 0.5)
    assert rep.failed == [1] and (rep.played, rep.refused) == (3, 1) and rep.by_kind == {"cue": 2, "scene": 1}
    assert sinks[1].safe and sinks[1].silenced == [0.5] and bank.lapsed.tolist() == [False, True, False]
    assert bank.lease_until[1] == -np.inf
    assert [r.getMessage() for r in caplog.records] == [
        "Slot 1: the sink failed on a 'cue' command (device gone during cue); safe state."]
    assert bank.expire(100.0).tolist() == [0, 2]  # the failed bed is not lapsed a second time
    assert sinks[1].silenced == [0.5]


def test_a_batch_that_fails_at_its_flush_silences_the_beds_it_played_at_the_delivery_time(caplog):
    broken, ok = Gather(fail=True), Gather()
    sinks = [Probe(batch=broken), Probe(batch=broken, fail_on={"cue"}), Probe(batch=ok), Probe(batch=broken)]
    bank = SinkBank(4)
    for k, s in enumerate(sinks):
        bank.attach(k, s)
    bank.renew(np.arange(4), 6.0)
    with caplog.at_level(logging.ERROR, logger="nexus"):
        rep = bank.deliver([cmd(0, 7.5), cmd(1, 7.5), cmd(2, 7.5)], 7.0)
    assert (broken.begun, broken.flushed, ok.begun, ok.flushed) == (1, 1, 1, 1)
    # bed 0 played into the broken batch: silenced at the delivery's time, lapsed; bed 1 had already failed on its
    # own (silenced once); bed 2's batch played; bed 3 of the broken batch had no command: left as it was
    assert rep.failed == [1, 0] and rep.played == 2
    assert [s.silenced for s in sinks] == [[7.0], [7.0], [], []]
    assert bank.lapsed.tolist() == [True, True, False, False] and bank.lease_until[0] == -np.inf
    assert [r.getMessage() for r in caplog.records] == [
        "Slot 1: the sink failed on a 'cue' command (device gone during cue); safe state.",
        "Slot 0: the sink's batch failed (ears gone); safe state."]
    assert bank.deliver([cmd(0, 7.6)], 7.1).refused == 1


def test_closing_the_bank_silences_and_closes_every_sink_even_after_one_fails(caplog):
    bank = SinkBank(3)
    sinks = [Probe(fail_close=True), None, Probe()]
    for k, s in enumerate(sinks):
        bank.attach(k, s)
    with caplog.at_level(logging.ERROR, logger="nexus"):
        bank.close()
    for s in (sinks[0], sinks[2]):
        assert s.closed == 1 and s.safe and len(s.silenced) == 1 and math.isnan(s.silenced[0])
    assert [r.getMessage() for r in caplog.records] == ["Closing the sink of slot 0 failed: cannot close"]
