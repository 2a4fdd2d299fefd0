"""Dead-man's switch: a stalled loop silences every bed within lease_s, with no help from the loop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from nexus.core.clock import ManualClock
from nexus.dreamscape.presets import default_clas_program
from nexus.dreamscape.schema import Scene
from nexus.facility.analyzers import default_analyzers
from nexus.facility.benchmark import LoopedFleet, _signals_at
from nexus.facility.supervisor import Supervisor
from nexus.safety.watchdog import Watchdog
from nexus.sinks.bedside import CountingSink, SinkBank
from nexus.sinks.fake import FakeSink

CH = ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG")
FS = 100.0


class FakeWall:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class _Cmd:
    def __init__(self, session, kind="scene"):
        self.session, self.t, self.kind, self.params = session, 0.0, kind, {"name": "x"}


def _bank(n=4):
    bank = SinkBank(n, lease_s=2.0)
    sinks = [CountingSink() for _ in range(n)]
    for k, s in enumerate(sinks):
        bank.attach(k, s)
    bank.renew(np.arange(n), 0.0)
    bank.deliver([_Cmd(k) for k in range(n)], 0.0)
    return bank, sinks


def test_a_stalled_loop_silences_every_bed_within_lease_s():
    wall = FakeWall()
    bank, sinks = _bank()
    dog = Watchdog(2.0, clock=wall)
    dog.watch(bank)
    assert not any(s.safe for s in sinks)
    for _ in range(5):  # the loop runs: it renews every 0.5 s, nobody is silenced
        wall.t += 0.5
        bank.renew(np.arange(4), 0.0)
        assert dog.check() == 0
    wall.t += 1.9  # the loop stalls (its own clock stops too: lease_until never passes)
    assert dog.check() == 0 and not any(s.safe for s in sinks)
    wall.t += 0.1
    assert dog.check() == 4
    assert all(s.safe for s in sinks) and bank.lapsed.all()
    rep = bank.deliver([_Cmd(k) for k in range(4)], 0.0)  # commands after the lapse are refused
    assert rep.refused == 4 and rep.played == 0
    assert dog.check() == 0  # silenced once, not again and again


def test_only_the_beds_that_stopped_being_renewed_are_silenced():
    wall = FakeWall()
    bank, sinks = _bank()
    dog = Watchdog(2.0, clock=wall)
    dog.watch(bank)
    for _ in range(6):
        wall.t += 0.5
        bank.renew([0, 1], 0.0)  # beds 2 and 3 are no longer renewed
        dog.check()
    assert [s.safe for s in sinks] == [False, False, True, True]


def test_watchdog_thread_silences_a_real_stalled_facility():
    sup = Supervisor(ManualClock(), analyzers=default_analyzers(block_s=0.1, events=False), step_s=0.25)
    p = default_clas_program()
    prog = p.model_copy(update={"scenes": {**p.scenes, "bed": Scene(layers=[{"sound": "rain", "level_db": -35}])},
                                "rules": {"W": "bed", "N1": "bed", "N2": "bed", "N3": "bed", "R": "bed"}})
    data = _signals_at(3, 40, 1.0, 90.0, FS, CH).astype(np.float64)
    sinks = [CountingSink() for _ in range(3)]
    sup.add_fleet(LoopedFleet(data, FS, CH), ["a", "b", "c"], programs=[prog] * 3, sinks=sinks)
    sup.run(60.0, tick_s=1.0)  # scenes play once the first epochs are staged
    assert not any(s.safe for s in sinks)
    dog = Watchdog(0.5, period_s=0.02)
    assert dog.watch_supervisor(sup) == 1
    with dog:
        # the loop has stopped (no more step()); wait for the watchdog thread, bounded
        deadline = time.monotonic() + 10.0
        while not all(s.safe for s in sinks) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert all(s.safe for s in sinks)
    assert sorted(s for _, _, s in dog.silenced) == [0, 1, 2]
    sup.close()


def test_a_sink_that_hangs_or_raises_while_going_silent_does_not_keep_the_others_playing():
    wall = FakeWall()
    bank, sinks = _bank(3)
    release = threading.Event()

    class Hangs(CountingSink):
        def _silence(self, t):
            release.wait(30.0)

    class Raises(CountingSink):
        def _silence(self, t):
            raise RuntimeError("device gone")

    bank.attach(0, Hangs())
    bank.attach(1, Raises())
    bank.renew(np.arange(3), 0.0)
    dog = Watchdog(1.0, clock=wall, hang_s=0.05)
    dog.watch(bank)
    wall.t += 2.0
    try:
        assert dog.check() == 3
        assert sinks[2].safe and bank.lapsed.all()
        assert bank.sinks[1].safe  # a sink that raises is still marked safe
    finally:
        release.set()


@pytest.mark.parametrize("renew_now", [0.0, None], ids=["renewed-with-time", "renewed-without-time"])
def test_a_block_without_a_time_cannot_bypass_the_lease(renew_now):
    s = FakeSink(-20.0)
    s.write(np.full(480, 0.01), now=0.0)
    s.renew_lease(0.05, now=renew_now)  # a 50-ms lease
    time.sleep(0.06)  # let it lapse on the wall clock (a condition, not a timing assertion)
    s.write(np.full(480, 0.01))  # no time: checked on the wall clock
    assert np.all(s.audio[480:] == 0)


def test_a_block_without_a_time_plays_while_the_lease_holds():
    s = FakeSink(-20.0)
    s.renew_lease(3600.0, now=0.0)
    s.write(np.full(480, 0.01))
    assert np.allclose(s.audio, 0.01, atol=1e-6)


def test_a_sink_that_hangs_in_the_loop_stalls_it_and_the_watchdog_silences_the_other_beds():
    sup = Supervisor(ManualClock(), analyzers=default_analyzers(block_s=0.1, events=False), step_s=0.25)
    p = default_clas_program()
    prog = p.model_copy(update={"scenes": {**p.scenes, "bed": Scene(layers=[{"sound": "rain", "level_db": -35}])},
                                "rules": {"W": "bed", "N1": "bed", "N2": "bed", "N3": "bed", "R": "bed"}})
    data = _signals_at(3, 40, 1.0, 90.0, FS, CH).astype(np.float64)
    release, hung = threading.Event(), threading.Event()
    playing_when_hung = []

    class HangsOnPlay(CountingSink):
        def _play(self, command):
            playing_when_hung.extend(not s.safe for s in sinks[:2])
            hung.set()
            release.wait(120.0)

    sinks = [CountingSink(), CountingSink(), HangsOnPlay()]  # the last bed's sink hangs at its first command
    sup.add_fleet(LoopedFleet(data, FS, CH), ["a", "b", "c"], programs=[prog] * 3, sinks=sinks)
    dog = Watchdog(2.0, period_s=0.05)
    dog.watch_supervisor(sup)
    worker = threading.Thread(target=lambda: sup.run(60.0, tick_s=1.0), daemon=True)
    try:
        with dog:
            worker.start()
            assert hung.wait(240.0), "the hanging sink was never reached"
            assert playing_when_hung == [True, True]  # beds a and b were hearing their scene
            deadline = time.monotonic() + 20.0
            while not (sinks[0].safe and sinks[1].safe) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert sinks[0].safe and sinks[1].safe  # silent while the loop hangs
            assert sup.lanes[0].analyzer("dreamscape").bank.lapsed[[0, 1]].all()
    finally:
        release.set()
        worker.join(120.0)
    sup.close()
