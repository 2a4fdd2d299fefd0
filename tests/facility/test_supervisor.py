"""The supervisor driven tick by tick on a ManualClock (never sleeps)."""

import time

import numpy as np
import pytest

from nexus.core.clock import ManualClock, RealClock
from nexus.core.errors import StateError
from nexus.core.types import Chunk
from nexus.facility.supervisor import Supervisor
from nexus.sources.base import Source
from nexus.store.recording import recover_journal

FS = 100.0
CH = ("EEG C4-M1", "EOG E1-M2")


class Device(Source):
    """A test double of a device: one 100-ms chunk per read once its time has come, with scripted faults."""

    def __init__(self, session, clock, script=None):
        self.session, self.clock, self.fs, self.channels = session, clock, FS, CH
        self.script = dict(script or {})  # chunk number -> fault
        self.k = 0  # chunks produced
        self.seq = 0
        self.held = []  # (deliver_at, chunk) for late chunks
        self.prev = None
        self.opened = 0

    def open(self):
        self.opened += 1

    def _make(self, k):
        t = np.arange(k * 10, k * 10 + 10) / FS
        x = np.vstack([30 * np.sin(2 * np.pi * 1.0 * t), 10 * np.cos(2 * np.pi * 0.5 * t)]) + k
        return x, k * 0.1

    def read(self):
        for i, (at, c) in enumerate(self.held):
            if self.clock.now() >= at:
                del self.held[i]
                return c
        if self.clock.now() < (self.k + 1) * 0.1 - 1e-9:
            return None
        k, fault = self.k, self.script.get(self.k)
        self.k += 1
        if fault == "raise":
            raise OSError("USB device disconnected")
        if fault == "silent":
            return None  # these samples never come
        x, t0 = self._make(k)
        if fault == "nan":
            x[0, 3:6] = np.nan
            x[1, 4] = np.inf
        if fault == "channels":
            x = np.vstack([x, x[:1]])
        if fault == "backwards":
            t0 -= 0.05
        c = Chunk(self.session, t0, 50.0 if fault == "fs" else FS, x, () if fault == "channels" else CH, self.seq)
        self.seq += 1
        if fault == "duplicate":
            self.held.append((self.clock.now(), c))
        if fault == "late":
            self.held.append((self.clock.now() + 1.0, c))
            return None
        return c


def _run(faults, seconds=6.0, **kw):
    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[], **kw)
    good, bad = Device("good", clock), Device("bad", clock, faults)
    sup.add_session("good", good)
    sup.add_session("bad", bad)
    sup.run(seconds, tick_s=0.1)
    return sup


def _kinds(sup, session):
    return [g.kind for g in sup.glitches if g.session == session]


@pytest.mark.parametrize(
    ("fault", "glitch", "counter"),
    [
        ("nan", "bad_samples", "bad"),
        ("channels", "wrong_channels", "rejected"),
        ("fs", "fs_mismatch", "rejected"),
        ("backwards", "clock_skew", "duplicate"),
        ("duplicate", "duplicate", "duplicate"),
        ("late", "late", "late"),
    ],
    ids=str,
)
def test_bad_chunk_is_caught_for_its_session_only(fault, glitch, counter):
    sup = _run({20: fault})
    good = sup.session_counts("good")
    assert good["received"] == 600
    assert good["missing"] == good["late"] == good["bad"] == good["dropped"] == 0
    assert _kinds(sup, "good") == []
    bad = sup.session_counts("bad")
    assert bad[counter] > 0
    if glitch != "late":  # lateness is counted, not alarmed on every chunk
        assert glitch in _kinds(sup, "bad")
    assert sup.lag_s() == 0.0


def test_vanishing_stream_raises_dropout_then_returns():
    sup = _run({k: "silent" for k in range(10, 40)}, seconds=8.0)
    kinds = _kinds(sup, "bad")
    assert kinds.index("dropout") < kinds.index("stream_returned")
    assert sup.session_counts("bad")["missing"] == 300
    assert sup.session_counts("good")["missing"] == 0
    drop = next(g for g in sup.glitches if g.kind == "dropout")
    assert drop.onset_s == pytest.approx(1.0, abs=0.11)


def test_failing_source_is_retried_and_others_go_on():
    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[], retry_s=1.0)
    bad = Device("bad", clock, {15: "raise"})
    sup.add_session("good", Device("good", clock))
    sup.add_session("bad", bad)
    sup.run(5.0, tick_s=0.1)
    assert "source_error" in _kinds(sup, "bad")
    assert bad.opened >= 2  # reopened after the error
    assert sup.session_counts("good")["received"] == 500
    assert sup.session_counts("bad")["received"] > 300  # data flows again after the retry


def test_recording_keeps_raw_signals_and_glitches(tmp_path):
    from nexus.store.recording import RecordingJournal

    clock = ManualClock()
    journal = RecordingJournal(tmp_path / "night", sync_s=0.0)
    sup = Supervisor(clock, analyzers=[], journal=journal)
    dev = Device("bed1", clock, {5: "nan", 12: "late"})
    sup.add_session("bed1", dev)
    sup.run(3.0, tick_s=0.1)
    sup.close()
    rec = recover_journal(tmp_path / "night")
    x = rec.samples("bed1")
    assert x.shape == (2, 300)
    # the late chunk is recorded at its own time, even though the pipeline had passed it
    ref, _ = Device("ref", clock)._make(12)
    np.testing.assert_allclose(x[:, 120:130], ref, rtol=1e-6)
    assert np.isnan(x[0, 53:56]).all()
    assert any(r["kind"] == "glitch" and r["description"] == "bad_samples" for r in rec.records)
    paths = journal.finalize()
    assert paths["bed1"].exists()


def test_duplicate_session_id_refused():
    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[])
    sup.add_session("a", Device("a", clock))
    with pytest.raises(StateError, match="already running"):
        sup.add_session("a", Device("a", clock))


def test_backpressure_drops_what_runs_too_far_ahead():
    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[], buffer_s=1.0)
    dev = Device("a", clock)
    sup.add_session("a", dev)
    sup.step()
    clock.advance(0.1)
    sup.step()  # started
    far = Chunk("a", 30.0, FS, np.ones((2, 10)), CH, 999)
    sup._accept(sup.sessions["a"], far)
    assert sup.session_counts("a")["dropped"] == 10


class Flat(Device):
    def _make(self, k):
        x, t0 = super()._make(k)
        x[1] = 3.0  # a dead EOG lead
        return x, t0


def test_preflight_gates_the_start():
    from nexus.facility.preflight import preflight

    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[])
    good = Device("good", clock)
    ok = preflight(good, clock, seconds=3.0)
    assert ok.ready, ok.summary()
    sup.add_session("good", good, preparation=ok)
    flat = Flat("flat", clock)
    rep = preflight(flat, clock, seconds=3.0)
    assert not rep.ready
    with pytest.raises(StateError, match="EOG E1-M2: flat"):
        sup.add_session("flat", flat, preparation=rep)
    sup.add_session("flat", flat, preparation=rep, override=True)
    assert "flat" in sup.sessions


def test_preflight_of_a_silent_device_times_out():
    from nexus.core.errors import NotFoundError
    from nexus.facility.preflight import preflight

    clock = ManualClock()
    dead = Device("dead", clock, {k: "silent" for k in range(1000)})
    with pytest.raises(NotFoundError, match=r"only 0\.0 s of signal"):
        preflight(dead, clock, seconds=3.0, timeout_s=2.0)


def test_lanes_fill_up_and_slots_are_reused():
    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[], lane_capacity=2)
    for name in ("a", "b", "c"):
        sup.add_session(name, Device(name, clock))
    assert len(sup.lanes) == 2
    sup.run(1.0, tick_s=0.1)
    sup.end_session("a")
    sup.add_session("d", Device("d", clock))
    assert len(sup.lanes) == 2
    assert sup.sessions["d"].lane is sup.sessions["b"].lane
    sup.run(1.0, tick_s=0.1)
    assert sup.session_counts("d")["received"] == 200  # the device double also sends its first second late
    assert sup.session_counts("c")["received"] == 200
    assert sup.counts["received"] == 100 + 200 + 200 + 200  # ended sessions keep their counts


# -- system kinds from the loop's measurements (nexus.monitor.system) ----------------------------
def test_samples_dropped_for_running_ahead_raise_queue_backlog_for_that_session_only():
    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[], buffer_s=1.0)
    sup.add_session("a", Device("a", clock))
    sup.add_session("b", Device("b", clock))
    for _ in range(3):
        clock.advance(0.1)
        sup.step()
    sup._accept(sup.sessions["a"], Chunk("a", 30.0, FS, np.ones((2, 10)), CH, 999))
    clock.advance(0.1)
    sup.step()
    g = [g for g in sup.glitches if g.kind == "queue_backlog"]
    assert [x.session for x in g] == ["a"] and g[0].evidence["samples"] == 10
    assert g[0].category == "system" and g[0].priority == "medium"
    assert _kinds(sup, "b") == []


def test_samples_arriving_after_their_time_raise_late():
    sup = _run({20: "late"})
    assert "late" in _kinds(sup, "bad") and _kinds(sup, "good") == []


def test_a_slow_loop_on_a_real_clock_raises_controller_late():
    sup = Supervisor(RealClock(), analyzers=[])
    sup.add_session("a", Device("a", sup.clock))
    sup.between_steps.append(lambda: time.sleep(0.35))  # a lane step that takes 0.35 s
    sup.run(0.3, tick_s=0.1)
    late = [g for g in sup.glitches if g.kind == "controller_late"]
    assert late and late[0].session == "a" and late[0].evidence["latency_s"] > 0.25


def test_fast_forward_has_no_deadline():
    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[])
    sup.add_session("a", Device("a", clock))
    sup.between_steps.append(lambda: time.sleep(0.3))
    sup.run(0.5, tick_s=0.1)
    assert "controller_late" not in _kinds(sup, "a")
