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


@pytest.mark.slow
def test_new_layout_joins_without_stalling_the_other_beds(tmp_path, data_dir):
    path = data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf"
    clock = RealClock()
    journal = RecordingJournal(tmp_path / "journal")
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
