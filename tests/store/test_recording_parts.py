"""A session recorded in parts by several journals (a bed that changed workers) merged into one EDF+: samples placed
by their session times, the earlier part kept where parts overlap, unrecorded time a gap at 0 µV, every part's
records, a part on an unreachable disk a gap, and no file for a session no part holds."""

import logging

import numpy as np

from nexus.formats.edf import read_edf
from nexus.formats.events import read_events
from nexus.store.recording import RecordingJournal, merge_session_parts

FS = 10.0
CH = ("EEG C4-M1",)


def _part(folder, t0, seconds, value, **record):
    j = RecordingJournal(folder, sync_s=0.0)
    j.add_session("bed-1", CH, FS)
    j.add_session("other", CH, FS)
    j.write_signals(["bed-1", "other"], [t0, t0], np.full((2, 1, round(seconds * FS)), value))
    if record:
        j.write_record("bed-1", **record)
    j.close()
    return folder


def test_parts_are_placed_by_session_time_and_the_earlier_part_wins_an_overlap(tmp_path, caplog):
    a = _part(tmp_path / "w1", 0.0, 3.0, 10.0, kind="stage", onset=0.0, duration=30.0, stage=2)
    b = _part(tmp_path / "w2", 2.0, 3.0, 20.0, kind="event", onset=4.0, duration=0.5, description="spindle")
    c = _part(tmp_path / "w3", 6.0, 1.0, 30.0, kind="glitch", onset=6.5, duration=0.0, what="flat_line")
    with caplog.at_level(logging.WARNING, logger="nexus"):
        path = merge_session_parts([a, tmp_path / "elsewhere", b, c], "bed-1", tmp_path / "out")
    assert "journal part" in caplog.text and "elsewhere" in caplog.text
    assert path is not None
    rec = read_edf(path)
    (sig,) = rec.signals
    expected = np.r_[np.full(30, 10.0), np.full(20, 20.0), np.zeros(10), np.full(10, 30.0)]  # 5-6 s: no part
    np.testing.assert_allclose(sig.data, expected, atol=0.01)
    texts = sorted((round(an.onset, 3), round(an.duration, 3), an.text) for an in rec.annotations)
    assert (5.0, 1.0, "gap: no signal recorded") in texts
    assert (4.0, 0.5, "event: spindle") in texts and (6.5, 0.0, "glitch: flat_line") in texts
    assert [d for _, _, d in texts].count("gap: no signal recorded") == 1
    assert any(d.startswith("Sleep stage") for _, _, d in texts)
    ev = read_events(tmp_path / "out" / "bed-1.events.tsv")
    assert list(ev.onset) == [4.0]


def test_a_session_no_part_holds_gives_no_file(tmp_path):
    a = _part(tmp_path / "w1", 0.0, 1.0, 1.0)
    assert merge_session_parts([a], "bed-9", tmp_path / "out") is None
    assert not (tmp_path / "out").exists()
