"""A real pylsl outlet read through LslSource (a few seconds in all)."""

import time
import uuid

import numpy as np
import pytest

from nexus.core.clock import ManualClock
from nexus.core.errors import InvalidInputError, NotFoundError
from nexus.sources.lsl import LSL_CONFIG, LslSource, configure_lsl, resolve_streams

pylsl = pytest.importorskip("pylsl")


def _outlet(name, n_ch=3, fs=100.0, stype="EEG"):
    info = pylsl.StreamInfo(name, stype, n_ch, fs, "float32", f"{name}-src")
    chans = info.desc().append_child("channels")
    for i in range(n_ch):
        chans.append_child("channel").append_child_value("label", f"EEG {i}")
    return pylsl.StreamOutlet(info)


def _pull_until(src, n, timeout=3.0):
    got: list = []
    end = time.monotonic() + timeout
    while sum(c.n_samples for c in got) < n and time.monotonic() < end:
        c = src.read()
        if c is not None:
            got.append(c)
        else:
            time.sleep(0.01)  # waiting on a real network stream, not on our clock
    return got


def test_config_points_at_shipped_file():
    assert configure_lsl().name == "lsl_api.cfg"
    assert "PortRange = 512" in LSL_CONFIG.read_text()


def test_real_outlet_read_through_source():
    name = f"nexus-test-{uuid.uuid4().hex[:8]}"
    out = _outlet(name)
    clock = ManualClock()
    src = LslSource("bed1", name=name, expected_channels=3, timeout=3, clock=clock)
    src.open()
    try:
        assert src.channels == ("EEG 0", "EEG 1", "EEG 2")
        assert src.fs == 100.0
        time.sleep(0.3)  # let the inlet connect before pushing
        x = np.arange(300, dtype=np.float32).reshape(100, 3)
        t = pylsl.local_clock() - 3.0  # stamped in the past: a stamp ahead of the host clock is a clock jump
        out.push_chunk(x, [t + i / 100 for i in range(100)])
        chunks = _pull_until(src, 100)
        data = np.concatenate([c.data for c in chunks], axis=1)
        np.testing.assert_array_equal(data, x.T)
        assert chunks[0].t0 == pytest.approx(0.0)
        # a sample stamped in the past is kept in its place by count (LSL delivers each sample once) and
        # counted; a later one after a pause is held until its lead over the count has lasted settle_s,
        # then starts after the whole samples missing (a gap), not right after the last one. Its lead
        # (0.3 s) stays clear of jump_s (0.5 s): the stamps step 0.3 s while the host's clock moves a few
        # ms between the pushes, and a step that runs more than jump_s ahead of the host is a clock jump
        # (with a 0.5-s lead, a push landing within ~10 ms of the last read was one, now and then)
        out.push_chunk(x[:2], [t - 5.0, t + 1.3])
        more = _pull_until(src, 1)
        assert src.backwards == 1
        assert sum(c.n_samples for c in more) == 1 and more[0].t0 == pytest.approx(1.0, abs=1e-9)
        assert src.read() is None and src.gaps == 0  # held: a late push would be back on time soon
        clock.advance(src.settle_s)
        more = _pull_until(src, 1)
        assert sum(c.n_samples for c in more) == 1
        assert more[0].t0 == pytest.approx(1.3, abs=1e-9)
        assert src.gaps == 1 and not src.jumps
        # a sample stamped well ahead of the host's clock: the sender's clock jumped (re-anchored, no gap)
        tj = pylsl.local_clock() + 30.0
        out.push_chunk(x[:1], [tj])
        more = _pull_until(src, 1)
        assert more[0].t0 == pytest.approx(1.31, abs=1e-9)
        assert len(src.jumps) == 1 and src.jumps[0]["jump_s"] > 25 and src.new_jumps == src.jumps
        # a sample held (0.3 s ahead) when the source closes is handed out by flush(), after its gap
        out.push_chunk(x[:1], [tj + 0.3])
        held: list = []
        end = time.monotonic() + 3.0
        while not held and time.monotonic() < end:
            assert src.read() is None
            held = src.flush()
            time.sleep(0.01)
        assert [c.t0 for c in held] == [pytest.approx(1.61, abs=1e-9)] and src.gaps == 2
    finally:
        src.close()
        src.close()


def test_wrong_channel_count_refused_at_the_edge():
    name = f"nexus-test-{uuid.uuid4().hex[:8]}"
    _out = _outlet(name, n_ch=2)
    with pytest.raises(InvalidInputError, match="2 channels, expected 8"):
        LslSource("bed", name=name, expected_channels=8, timeout=3).open()


def test_missing_stream_is_not_found():
    with pytest.raises(NotFoundError, match="No LSL stream"):
        LslSource("bed", name="no-such-stream-xyz", timeout=0.3).open()


def test_more_than_30_outlets_on_one_host_are_all_found():
    stype = f"T{uuid.uuid4().hex[:6]}"
    outs = [_outlet(f"bed{i}", n_ch=1, stype=stype) for i in range(40)]
    found = resolve_streams(type=stype, timeout=3.0, minimum=len(outs))
    assert len({f.name() for f in found}) == 40
    del outs


def _stamped_outlet():
    """A 1-channel 100-Hz outlet stamped on its own sample clock, its source open on a manual clock."""
    name = f"nexus-test-{uuid.uuid4().hex[:8]}"
    out = _outlet(name, n_ch=1)
    clock = ManualClock()
    src = LslSource("bed", name=name, expected_channels=1, timeout=3, clock=clock)
    src.open()
    while not out.have_consumers():
        time.sleep(0.01)
    t = pylsl.local_clock() - 1.0
    x = np.arange(200, dtype=np.float32)[:, None]

    def push(i0: int, n: int, late: float = 0.0, held: bool = True) -> None:
        """Push samples i0 .. i0+n-1 (stamped ``late`` s late); with ``held``, wait until the source holds them."""
        before = src.held
        out.push_chunk(x[i0:i0 + n], [t + i / 100 + late for i in range(i0, i0 + n)])
        end = time.monotonic() + 3.0
        while held and src.held < before + n and time.monotonic() < end:
            assert src.read() is None  # held: ahead of their place by count
            time.sleep(0.005)
        assert not held or src.held == before + n

    push(0, 50, held=False)
    assert sum(c.n_samples for c in _pull_until(src, 50)) == 50
    return out, src, clock, x, push


def test_a_real_loss_is_placed_once_the_stream_goes_on_at_its_lead_not_after_settle_s():
    _out, src, clock, x, push = _stamped_outlet()  # the outlet lives as long as the test
    try:
        push(70, 5)  # samples 50..69 were lost
        push(75, 5)  # one more pull at the same lead (a late push is followed by one back on time)
        clock.advance(0.5)  # silence alone is no evidence
        assert src.read() is None and src.gaps == 0
        push(80, 5, held=False)  # the second: the stream goes on after a loss, 0.5 s after it resumed (not 1 s)
        got = _pull_until(src, 15)
        assert [c.t0 for c in got[:1]] == [pytest.approx(0.7, abs=1e-9)] and src.gaps == 1
        np.testing.assert_array_equal(np.concatenate([c.data for c in got], axis=1)[0], x[70:85, 0])
    finally:
        src.close()


def test_a_late_push_after_an_earlier_one_is_held_again_not_taken_for_a_loss():
    _out, src, clock, x, push = _stamped_outlet()  # the outlet lives as long as the test
    try:
        push(50, 5, late=0.1)  # a push 0.1 s late ...
        push(55, 5, held=False)  # ... and the next one on time: all follow on
        assert sum(c.n_samples for c in _pull_until(src, 10)) == 10 and src.gaps == 0
        clock.advance(5.0)
        push(60, 5, late=0.2)  # later, a push 0.2 s late: held anew (it was placed after a false 0.2-s gap)
        clock.advance(0.1)
        assert src.read() is None
        push(65, 5, held=False)
        got = _pull_until(src, 10)
        assert [c.t0 for c in got[:1]] == [pytest.approx(0.6, abs=1e-9)] and src.gaps == 0
        np.testing.assert_array_equal(np.concatenate([c.data for c in got], axis=1)[0], x[60:70, 0])
    finally:
        src.close()
