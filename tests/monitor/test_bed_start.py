"""A bed that starts, or is taken over mid-night, raises no ``dropped_samples`` for the stretch before its first chunk.

A bed that joins a running lane is placed so that its newest sample ends ``delay_s`` ahead of the lane; what the lane
still processes before its first sample exists nowhere and is filled with zeros. When the loop ran late (its last tick
a second ago) and the bed's source had little to give yet, that stretch is a second of exact zeros: the monitor must
not take it for samples lost by the device. A device that sends zeros from its start is still reported.
"""

from __future__ import annotations

import pytest

from nexus.facility.monitoring import glitch_watch
from nexus.facility.supervisor import Supervisor
from nexus.sources.synthetic.stream import SyntheticSource

CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG", "Acc Z")
FS = 100.0


class SteppedClock:
    """A clock the supervisor takes for real time (it is no ManualClock), moved by hand."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)


class SessionClock:
    """The session's own time: it was ``at_s`` into its night when the facility clock read ``t_join``."""

    def __init__(self, clock: SteppedClock, at_s: float, t_join: float) -> None:
        self.clock, self.off = clock, at_s - t_join

    def now(self) -> float:
        return self.clock.now() + self.off

    def sleep_until(self, t: float) -> None:
        self.clock.sleep_until(t - self.off)


def _source(clock: SteppedClock, name: str, at_s: float, *, zeros: bool = False) -> SyntheticSource:
    src = SyntheticSource(name, SessionClock(clock, at_s, clock.now()), "typical_adult", 7, hours=0.25, fs=FS,
                          channels=CHANNELS, max_chunk_s=2.0)
    while src.fleet.n_done < round(at_s * FS):  # the sleeper slept on until now
        src.fleet.next_chunk(min(round(at_s * FS) - src.fleet.n_done, round(60 * FS)))
    if zeros:  # a device that sends exact zeros
        read = src.read

        def read_zeros():  # type: ignore[no-untyped-def]
            c = read()
            if c is not None:
                c.data[...] = 0.0
            return c

        src.read = read_zeros  # type: ignore[method-assign]
    return src


def _night(at_s: float, *, zeros: bool = False) -> tuple[list[str], Supervisor]:
    clock = SteppedClock(100.0)
    sup = Supervisor(clock, analyzers=[glitch_watch], delay_s=0.1, step_s=0.1, lane_capacity=2)
    sup.background_lanes = False  # the lane is built at once (no thread)
    sup.add_session("running", _source(clock, "running", 0.0))
    for _ in range(10):
        clock.t += 0.25
        sup.step()
    clock.t += 0.95  # the loop is late: its last tick was almost a second ago, when the new bed joins
    sup.add_session("new", _source(clock, "new", at_s, zeros=zeros))
    for _ in range(40):
        clock.t += 0.05 if _ == 0 else 0.25  # the bed's source has 50 ms to give at the first tick
        sup.step()
    assert sup.sessions["new"].started
    return [g.kind for g in sup.glitches if g.session == "new"], sup


@pytest.mark.parametrize("at_s", [0.0, 600.0], ids=["starts", "taken-over"])
def test_no_dropped_samples_before_a_joining_beds_first_chunk(at_s: float) -> None:
    kinds, sup = _night(at_s)
    assert "dropped_samples" not in kinds, [g for g in sup.glitches if g.session == "new"]
    assert not [g for g in sup.glitches if g.session == "running" and g.kind == "dropped_samples"]


def test_a_device_sending_zeros_from_its_start_is_still_reported() -> None:
    kinds, _ = _night(600.0, zeros=True)
    assert "dropped_samples" in kinds
