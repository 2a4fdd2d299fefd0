"""The watchdog's own rules, without a facility: its settings, its default hang bound, the beds after a hanging
sink, what it hands the sinks and logs, and its thread's start and stop."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.safety.watchdog import Watchdog
from nexus.sinks.bedside import CountingSink, SinkBank


class Wall:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Recording(CountingSink):
    def __init__(self):
        super().__init__()
        self.at: list = []

    def _silence(self, t):
        self.at.append(t)


def _bank(sinks):
    bank = SinkBank(len(sinks), lease_s=2.0)
    for k, s in enumerate(sinks):
        bank.attach(k, s)
    bank.renew(np.arange(len(sinks)), 0.0)
    return bank


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lease_s": 0}, "Invalid value for 'lease_s': expected > 0 s, got 0 s."),
        ({"period_s": 0}, "Invalid value for 'period_s': expected > 0 s, got 0 s."),
        ({"hang_s": 0}, "Invalid value for 'hang_s': expected > 0 s, got 0 s."),
    ],
    ids=["lease", "period", "hang"],
)
def test_settings_are_checked(kwargs, message):
    with pytest.raises(InvalidInputError) as err:
        Watchdog(**kwargs)
    assert str(err.value) == message


def test_sinks_get_an_undefined_time_and_every_bed_after_a_hanging_one_is_silenced():
    release = threading.Event()

    class Hangs(CountingSink):
        def _silence(self, t):
            release.wait(30.0)

    rec = [Recording() for _ in range(3)]
    bank = _bank([Hangs(), *rec])
    wall = Wall()
    dog = Watchdog(1.0, clock=wall)  # default hang bound: 0.2 s
    dog.watch(bank)
    wall.t += 1.0
    try:
        t0 = time.monotonic()
        assert dog.check() == 4
        assert time.monotonic() - t0 < 1.0  # moved on after about 0.2 s, not seconds
        for s in rec:  # the bed right after the hanging one too
            assert len(s.at) == 1 and np.isnan(s.at[0])
    finally:
        release.set()


def test_the_log_names_the_beds_and_the_silence(caplog):
    wall = Wall()
    bank = _bank([Recording() for _ in range(12)])
    dog = Watchdog(2.0, clock=wall)
    dog.watch(bank)
    wall.t += 1.0
    bank.renew(np.arange(2, 12), 0.0)  # beds 0 and 1 stop being renewed
    dog.check()
    wall.t += 1.5
    with caplog.at_level(logging.ERROR, logger="nexus"):
        assert dog.check() == 2
        wall.t += 5.0
        assert dog.check() == 10
    msgs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Watchdog:")]
    assert msgs[0] == ("Watchdog: 2 bed(s) of bank 0 (slots 0, 1) not renewed for 2.5 s: the loop has stopped; "
                       "safe state.")
    assert msgs[1].startswith("Watchdog: 10 bed(s) of bank 0 (slots 2, 3, 4, 5, 6, 7, 8, 9, 10, 11) not renewed")
    assert "…" not in msgs[1]
    wall.t += 1.0
    bank2 = _bank([Recording() for _ in range(11)])
    dog.watch(bank2)
    wall.t += 3.0
    with caplog.at_level(logging.ERROR, logger="nexus"):
        dog.check()
    assert any("(slots 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 …)" in r.getMessage() for r in caplog.records)


def test_the_thread_checks_on_its_own_and_can_be_started_again(caplog):
    wall = Wall()
    sinks = [Recording(), Recording()]
    bank = _bank(sinks)
    dog = Watchdog(1.0, period_s=0.01, clock=wall)
    dog.watch(bank)

    def wait_for(cond):
        end = time.monotonic() + 5.0
        while not cond() and time.monotonic() < end:
            time.sleep(0.01)
        return cond()

    with dog:
        assert any(t.name == "nexus-watchdog" for t in threading.enumerate())
        wall.t += 2.0
        assert wait_for(lambda: len(dog.silenced) == 2)
    assert dog._thread is None
    bank.renew(np.arange(2), 0.0)
    bank.lapsed[:] = False
    dog.check()  # the renewal is seen
    dog.start()
    try:
        wall.t += 2.0
        assert wait_for(lambda: len(dog.silenced) == 4), dog.silenced  # checked again after a restart
    finally:
        dog.stop()

    class Broken:
        @property
        def renewals(self):
            raise RuntimeError("bank gone")

    dog2 = Watchdog(1.0, period_s=0.01, clock=wall)
    dog2._watched.append(type("W", (), {"bank": Broken(), "seen": np.zeros(1), "since": np.zeros(1)})())
    with caplog.at_level(logging.ERROR, logger="nexus"), dog2:
        assert wait_for(lambda: any("Watchdog check failed: bank gone" in r.getMessage() for r in caplog.records))


def test_a_supervisors_lanes_with_a_dreamscape_loop_have_their_banks_watched():
    from types import SimpleNamespace

    from nexus.facility.closed_loop import dreamscape_loop
    from nexus.facility.pipeline import Lane

    with_loop = Lane(("EEG C4-M1",), 100.0, 2, analyzers=[dreamscape_loop()])
    without = Lane(("EMG Chin",), 100.0, 2, analyzers=[dreamscape_loop()])  # no EEG: no loop, no bank
    dog = Watchdog(1.0, clock=Wall())
    assert dog.watch_supervisor(SimpleNamespace(lanes=[with_loop, without])) == 1
    bank = with_loop.analyzer("dreamscape").bank
    sink = Recording()
    bank.attach(1, sink)
    bank.renew([1], 0.0)
    assert dog.check() == 0  # renewed: the wall-clock lease starts now
    dog.clock.t += 1.0
    assert dog.check() == 1 and sink.safe and bank.lapsed.tolist() == [False, True]


def test_each_silenced_bed_is_listed_with_its_time_bank_and_slot():
    wall = Wall()
    dog = Watchdog(1.0, clock=wall)
    dog.watch(_bank([Recording()]))
    dog.watch(_bank([Recording(), None, Recording()]))
    wall.t += 1.5
    assert dog.check() == 3
    assert sorted(dog.silenced) == [(101.5, 0, 0), (101.5, 1, 0), (101.5, 1, 2)]
