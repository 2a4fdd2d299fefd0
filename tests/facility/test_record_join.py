"""A bed with a new channel layout joins a running facility: its lane is built off the loop thread.

Building a lane with analyzers warms up every numba kernel of its layout (seconds). Done inside a tick it
stalls every bed of the facility (``controller_late``, ``queue_backlog``); the supervisor builds it on a
background thread while the new bed records, and the bed joins its lane when it is ready.
"""

from __future__ import annotations

import numpy as np
import pytest

from nexus.core.clock import RealClock
from nexus.facility.analyzers import default_analyzers
from nexus.facility.supervisor import Supervisor
from nexus.formats.edf import read_edf
from nexus.sources.edf_replay import EdfReplaySource
from nexus.store.recording import RecordingJournal

SYSTEM = {"controller_late", "queue_backlog", "late"}

# these tests judge wall-clock tick latency: scripts/test.sh runs them alone, not beside another pytest worker
pytestmark = pytest.mark.serial


@pytest.mark.slow
def test_new_layout_joins_without_stalling_the_other_beds(tmp_path, data_dir):
    path = data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf"
    clock = RealClock()
    # fsync-ed on a helper thread, as in every live loop of the product (record, run, workers): a tick that waited for
    # the disk judged the disk, not the join (an fsync every second on this loop's thread)
    journal = RecordingJournal(tmp_path / "journal", background_sync=True)
    # capacity 3: lanes of (3 channels, 3 rows) and (1 channel, 3 rows), layouts no other test warms up
    sup = Supervisor(clock, journal=journal, analyzers=default_analyzers(dreamscape=False, block_s=0.1),
                     delay_s=0.2, lane_capacity=3)
    for k in range(2):
        sup.add_session(f"a{k}", EdfReplaySource(path, clock, f"a{k}",
                                                 channels=["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]))
    sup.settle()  # the layout known at start: warmed up before the first tick
    assert sorted(sup.sessions) == ["a0", "a1"] and not sup.joining
    joiner = EdfReplaySource(path, clock, "b", channels=["EEG Fpz-Cz"])
    t0 = clock.now()
    nxt = t0
    joined_at = None
    while nxt < t0 + 7.0:
        nxt += 0.1
        clock.sleep_until(nxt)
        if joined_at is None and nxt - t0 >= 1.0 and "b" not in sup.joining and "b" not in sup.sessions:
            sup.add_session("b", joiner)  # on the loop thread, as the record loop does when a device appears
            assert "b" in sup.joining  # returned at once; its lane is being built
            n_before = sup.ticks
        sup.step(due_at=nxt)
        if joined_at is None and "b" in sup.sessions:
            joined_at = sup.ticks
    assert joined_at is not None, "the new layout's bed never joined"
    assert joined_at > n_before + 1  # it did wait for its lane (the warm-up ran beside the loop)
    late = [g for g in sup.glitches if g.session in ("a0", "a1") and g.kind in SYSTEM]
    assert not late, [(g.session, g.kind, g.evidence) for g in late]
    assert max(sup.latencies[n_before:]) < 0.25  # no tick of the join was late (SystemWatch's limit)
    assert sup.sessions["b"].started and sup.session_counts("b")["received"] > 0  # analysed once joined
    handed = joiner._pos
    sup.close()
    paths = journal.finalize(tmp_path / "edf")
    got = read_edf(paths["b"]).channel("EEG Fpz-Cz").data
    want = read_edf(path).channel("EEG Fpz-Cz").data[:handed]
    assert handed > 5 * 100 and len(got) >= handed
    # every sample the device sent, from its first (sent while its lane was being built), at EDF resolution
    step = (got.max() - got.min()) / 65535  # the EDF's 16-bit resolution
    np.testing.assert_allclose(got[:handed], want, atol=step, rtol=0)
    assert not [a for a in read_edf(paths["b"]).annotations if a.text.startswith("gap")]


def test_tick_latency_is_in_wall_seconds_on_a_fast_clock(tmp_path, data_dir):
    """A replay at 50x: a tick 1 s (of its clock) late is 20 ms late in real time, not a controller_late."""
    from nexus.core.clock import ScaledClock

    clock = ScaledClock(50.0)
    sup = Supervisor(clock, analyzers=default_analyzers(dreamscape=False, events=False, block_s=5.0),
                     delay_s=0.0, buffer_s=60.0, lane_capacity=3)
    path = data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf"
    sup.add_session("r", EdfReplaySource(path, clock, "r", channels=["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]))
    sup.settle()
    clock.sleep_until(clock.now() + 2.0)
    sup.step()
    assert sup.sessions["r"].started
    rep = sup.step(due_at=clock.now() - 1.0)
    sup.close()
    assert 0.019 < rep.latency_s < 0.25
    assert not [g for g in sup.glitches if g.kind == "controller_late"]
    # and 0.5 s of real time late is late, whatever the speed
    clock2 = ScaledClock(50.0)
    sup2 = Supervisor(clock2, analyzers=[], lane_capacity=3)
    sup2.add_session("r", EdfReplaySource(path, clock2, "r", channels=["EEG Fpz-Cz"]))
    clock2.sleep_until(2.0)  # 40 ms of real time: the replay has samples, the bed starts
    sup2.step()
    assert sup2.sessions["r"].started
    assert sup2.step(due_at=clock2.now() - 25.0).latency_s >= 0.5
    assert [g.kind for g in sup2.glitches if g.kind == "controller_late"] == ["controller_late"]
    sup2.close()
