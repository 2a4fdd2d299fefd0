"""The journal's on-disk format, damaged frames, fractional timestamps and the EDF+ merge, pinned exactly.

Byte counts are worked out from the frame layout in the module docstring: a 20-byte header (magic, three u32
sizes, crc32) and a body of session numbers (i32), first-sample times (f64) and samples (f32). One session
with 2 channels of 100 samples makes a frame of 20 + 4 + 8 + 2*100*4 = 832 bytes.
"""

import datetime as dt
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError, StorageError
from nexus.formats.edf import read_edf
from nexus.store import recording
from nexus.store.recording import RecordingJournal, merge_journal, recover_journal

CH = ("EEG C4-M1", "EOG E1-M2")
FRAME = 20 + 4 + 8 + 2 * 100 * 4


def _three_frames(tmp_path: Path) -> Path:
    """A journal of session 'a' (2 channels, 100 Hz) with three 1-s frames of the values 1, 2, 3."""
    j = RecordingJournal(tmp_path / "j", sync_s=0.0)
    j.add_session("a", CH, 100.0)
    for k in range(3):
        j.write_signals(["a"], [float(k)], np.full((1, 2, 100), k + 1.0))
    j.close()
    seg = tmp_path / "j" / "signals-0.seg"
    assert seg.stat().st_size == 3 * FRAME
    return seg


def _poke(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_frame_bytes_follow_the_documented_layout(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", CH, 100.0)
    j.add_session("b", CH, 100.0)
    x = np.arange(2 * 2 * 3, dtype=np.float64).reshape(2, 2, 3) - 5.5
    j.write_signals(["b", "a"], [1.25, -0.5], x)
    j.close()
    raw = (tmp_path / "j" / "signals-0.seg").read_bytes()
    magic, ns, nc, n, crc = struct.unpack("<4sIIII", raw[:20])
    assert (magic, ns, nc, n) == (b"NXF1", 2, 2, 3)
    body = raw[20:]
    assert len(body) == 2 * 4 + 2 * 8 + 2 * 2 * 3 * 4
    assert crc == zlib.crc32(body)
    assert struct.unpack("<2i", body[:8]) == (1, 0)  # session numbers in the order given
    assert struct.unpack("<2d", body[8:24]) == (1.25, -0.5)
    np.testing.assert_array_equal(np.frombuffer(body[24:], "<f4").reshape(2, 2, 3), x.astype(np.float32))


def test_corrupt_frame_in_the_middle_is_skipped_and_later_frames_kept(tmp_path):
    seg = _three_frames(tmp_path)
    _poke(seg, FRAME + 20 + 12 + 40, b"\x7f\x7f\x7f\x7f")  # one sample of the second frame: its CRC fails
    rec = recover_journal(tmp_path / "j")
    x = rec.samples("a")
    assert x.shape == (2, 300)
    np.testing.assert_array_equal(x[:, :100], 1.0)
    assert np.isnan(x[:, 100:200]).all()  # the damaged second is a gap, not a wrong value
    np.testing.assert_array_equal(x[:, 200:], 3.0)
    assert (rec.corrupt_bytes, rec.torn_bytes) == (FRAME, 0)


def test_frame_with_a_damaged_header_is_skipped(tmp_path):
    seg = _three_frames(tmp_path)
    _poke(seg, FRAME, b"XXXX")  # magic of the second frame
    rec = recover_journal(tmp_path / "j")
    np.testing.assert_array_equal(rec.samples("a")[0, ::100], [1.0, np.nan, 3.0])
    assert rec.corrupt_bytes == FRAME

    seg = _three_frames(tmp_path / "2")
    _poke(seg, FRAME + 12, struct.pack("<I", 99))  # sample count of the second frame: its length is wrong
    rec = recover_journal(tmp_path / "2" / "j")
    np.testing.assert_array_equal(rec.samples("a")[0, ::100], [1.0, np.nan, 3.0])
    assert rec.corrupt_bytes == FRAME and rec.torn_bytes == 0


def test_corrupt_last_frame_of_full_length_is_ignored(tmp_path):
    seg = _three_frames(tmp_path)
    _poke(seg, 2 * FRAME + 20 + 12, b"\x00\x00\x80\x7f")  # an f32 infinity where the last frame had 3.0
    rec = recover_journal(tmp_path / "j")
    assert rec.samples("a").shape == (2, 200)
    assert (rec.torn_bytes, rec.corrupt_bytes) == (FRAME, 0)


@pytest.mark.parametrize(("cut", "torn"), [(17, FRAME - 17), (FRAME - 10, 10), (FRAME, 0)],
                         ids=["inside-body", "inside-header", "frame-boundary"])
def test_torn_tail_counts_exactly_its_bytes(tmp_path, cut, torn):
    seg = _three_frames(tmp_path)
    with open(seg, "r+b") as f:
        f.truncate(3 * FRAME - cut)
    rec = recover_journal(tmp_path / "j")
    assert rec.torn_bytes == torn and rec.corrupt_bytes == 0
    assert rec.samples("a").shape == (2, 200)


def test_fractional_timestamps_round_to_the_nearest_sample(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", ("EEG",), 100.0)
    j.write_signals(["a"], [0.0], np.full((1, 1, 100), 1.0))
    j.write_signals(["a"], [0.996], np.full((1, 1, 100), 2.0))  # 99.6 samples: starts at 100 (not 99)
    j.write_signals(["a"], [2.004], np.full((1, 1, 100), 3.0))  # 200.4 samples: starts at 200 (not 201)
    j.write_signals(["a"], [3.006], np.full((1, 1, 50), 4.0))  # 300.6 samples: starts at 301 (not 300)
    j.close()
    x = recover_journal(tmp_path / "j").samples("a")[0]
    assert x.shape == (351,)
    np.testing.assert_array_equal(x[[0, 99, 100, 199, 200, 299]], [1, 1, 2, 2, 3, 3])
    assert np.isnan(x[300]) and x[301] == 4 and x[350] == 4


def test_samples_before_the_session_start_extend_the_signal_to_the_left(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", ("EEG",), 10.0)
    j.write_signals(["a"], [0.0], np.full((1, 1, 10), 1.0))
    j.write_signals(["a"], [-0.5], np.full((1, 1, 5), 2.0))
    j.close()
    x = recover_journal(tmp_path / "j").samples("a")[0]
    np.testing.assert_array_equal(x, [2] * 5 + [1] * 10)


def test_session_without_samples_has_none_and_gets_no_file(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", CH, 100.0)
    j.add_session("quiet", CH, 100.0)
    j.write_signals(["a"], [0.0], np.zeros((1, 2, 100)))
    assert recover_journal(tmp_path / "j").samples("quiet").shape == (2, 0)
    assert set(j.finalize()) == {"a"}
    assert set(merge_journal(tmp_path / "j", sessions=["quiet", "a"])) == {"a"}  # an empty one does not stop it


def test_sessions_layouts_and_units(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    a = j.add_session("a", ("Acc X", "Resp nasal", "EEG Fz"), 10.0)
    b = j.add_session("b", ("EEG",), 100.0, units=("mV",))
    c = j.add_session("c", ("EEG",), 100.0)
    assert j.add_session("a", ("other",), 1.0) is a  # registered twice: kept once
    assert (a.number, b.number, c.number) == (0, 1, 2)
    assert a.units == ("mg", "au", "uV") and b.units == ("mV",) and c.units == ("uV",)
    assert (a.layout, b.layout, c.layout) == (0, 1, 1)  # a layout's file is named after its first session
    j.write_signals(["b", "c"], [0.0, 0.0], np.ones((2, 1, 10)))
    j.close()
    assert sorted(p.name for p in (tmp_path / "j").glob("*.seg")) == ["signals-0.seg", "signals-1.seg"]
    lines = [json.loads(s) for s in (tmp_path / "j" / "sessions.jsonl").read_text().splitlines()]
    assert [d["session"] for d in lines] == ["a", "b", "c"]
    assert lines[1] == {"number": 1, "session": "b", "channels": ["EEG"], "fs": 100.0, "units": ["mV"],
                        "start": lines[1]["start"], "layout": 1}
    rec = recover_journal(tmp_path / "j")
    assert rec.sessions["c"].channels == ("EEG",) and rec.sessions["c"].layout == 1
    assert rec.files["b"].name == "signals-1.seg"


def test_write_signals_checks_its_input(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", CH, 100.0)
    j.add_session("b", ("EEG",), 100.0)
    with pytest.raises(InvalidInputError, match=r"needs \(sessions, channels, samples\), got \(2, 100\)"):
        j.write_signals(["a"], [0.0], np.zeros((2, 100)))
    with pytest.raises(InvalidInputError, match="got"):
        j.write_signals(["a", "a"], [0.0], np.zeros((1, 2, 100)))
    with pytest.raises(InvalidInputError, match=r"^write_signals got sessions of different channel layouts in one"):
        j.write_signals(["a", "b"], [0.0, 0.0], np.zeros((2, 2, 10)))
    with pytest.raises(InvalidInputError, match="different channel layouts"):
        j.write_signals(["a"], [0.0], np.zeros((1, 3, 10)))
    j.write_signals(["a"], [0.0], np.zeros((1, 2, 0)))  # nothing to write
    j.write_signals([], [], np.zeros((0, 2, 10)))
    j.close()
    assert (tmp_path / "j" / "signals-0.seg").stat().st_size == 0


def test_flush_syncs_only_when_dirty_and_sync_s_has_passed(tmp_path, monkeypatch):
    now = [100.0]
    synced: list[int] = []
    monkeypatch.setattr(recording.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(recording.os, "fsync", synced.append)
    j = RecordingJournal(tmp_path / "j", sync_s=1.0)
    j.add_session("a", CH, 100.0, sync=False)
    assert synced == []
    j.add_session("b", CH, 100.0)
    assert len(synced) == 1  # the sessions file, at once
    synced.clear()
    j.write_record("a", "stage", 0.0, 30.0, stage=2)
    now[0] = 100.9
    j.flush()
    assert synced == []  # dirty, but less than sync_s since the last sync
    now[0] = 101.0
    j.flush()
    assert len(synced) == 3  # sessions, records and the one signal file
    synced.clear()
    now[0] = 105.0
    j.flush()
    assert synced == []  # nothing new
    j.flush(force=True)
    assert len(synced) == 3
    j.close()
    j.close()
    j.flush(force=True)  # closed: nothing happens
    assert j.closed


def test_unusable_folder_is_a_storage_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="Cannot create the recording folder"):
        RecordingJournal(tmp_path / "file" / "j")


def test_records_expand_groups_and_skip_torn_lines(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", CH, 100.0)
    j.write_record("a", "event", 3, description="k")
    j.write_records([{"session": "a", "kind": "event", "onset": [1.0, 2.0], "duration": [0.1, 0.2],
                      "tags": ["x", "y", "z"], "n": np.int64(7), "arr": np.array([1, 2])}])
    j.write_records([])
    j.close()
    with open(tmp_path / "j" / "records.jsonl", "ab") as f:
        f.write(b'{"torn\n{"session": "a", "kind": "stage", "onset": 9.0, "duration": 30.0, "stage": 3}\n\n')
    recs = recover_journal(tmp_path / "j").records
    assert recs[0] == {"session": "a", "kind": "event", "onset": 3.0, "duration": 0.0, "description": "k"}
    assert recs[1:3] == [
        {"session": "a", "kind": "event", "onset": 1.0, "duration": 0.1, "tags": ["x", "y", "z"], "n": 7, "arr": 1},
        {"session": "a", "kind": "event", "onset": 2.0, "duration": 0.2, "tags": ["x", "y", "z"], "n": 7, "arr": 2},
    ]
    assert recs[3]["stage"] == 3 and len(recs) == 4


def test_json_default_for_numpy_and_other_objects():
    assert recording._json_default(np.float32(0.5)) == 0.5
    assert isinstance(recording._json_default(np.int64(3)), int)
    assert recording._json_default(np.array([[1, 2]])) == [[1, 2]]
    assert recording._json_default(Path("x") / "y") == str(Path("x") / "y")


def test_annotations_text_and_order():
    anns = recording._annotations([
        {"kind": "stage", "onset": 30, "duration": 30, "stage": 4},
        {"kind": "stage", "onset": 0, "duration": 30, "stage": 0},
        {"kind": "stage", "onset": 60, "duration": 30, "stage": -1},
        {"kind": "stage", "onset": 90, "duration": 30, "stage": 9},
        {"kind": "stage", "onset": 95},
        {"kind": "glitch", "onset": 5, "what": "electrode_off"},
        {"kind": "event", "onset": 6, "description": "spindle", "what": "ignored"},
        {"kind": "decision", "onset": 7},
        {"onset": 8, "description": "odd"},
        {"kind": "glitch", "onset": 9, "what": "EMG MAX"},
    ])
    assert [(a.onset, a.duration, a.text) for a in anns] == [
        (0.0, 30.0, "Sleep stage W"), (5.0, 0.0, "glitch: electrode_off"), (6.0, 0.0, "event: spindle"),
        (7.0, 0.0, "decision"), (8.0, 0.0, "odd"), (9.0, 0.0, "glitch: EMG MAX"),
        (30.0, 30.0, "Sleep stage R"), (60.0, 30.0, "Sleep stage ?"),
        (90.0, 30.0, "Sleep stage ?"), (95.0, 0.0, "Sleep stage ?"),
    ]
    assert [recording.STAGE_TEXT[k] for k in (1, 2, 3)] == ["Sleep stage N1", "Sleep stage N2", "Sleep stage N3"]


def test_merge_pads_to_whole_seconds_marks_gaps_and_keeps_the_start(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    start = dt.datetime(2026, 3, 1, 22, 30, 15, 654321, tzinfo=dt.UTC)
    j.add_session("bed 1/x", ("EEG",), 10.0, start=start)
    j.add_session("b", ("EEG",), 10.0)
    x = np.arange(25, dtype=float)
    x[12] = np.inf  # a faulty device's infinity is a gap too
    j.write_signals(["bed 1/x"], [0.0], x[None, None, :])
    j.write_signals(["b"], [0.0], np.ones((1, 1, 10)))
    j.write_record("bed 1/x", "stage", 0.0, 30.0, stage=2)
    j.close()
    paths = merge_journal(tmp_path / "j", tmp_path / "out" / "new", sessions=["bed 1/x"])
    assert list(paths) == ["bed 1/x"] and paths["bed 1/x"] == tmp_path / "out" / "new" / "bed_1_x.edf"
    edf = read_edf(paths["bed 1/x"])
    y = edf.signals[0].data
    assert y.size == 30  # 2.5 s padded to whole 1-s records
    np.testing.assert_allclose(y[:12], x[:12], atol=0.01)
    assert abs(y[12]) < 0.01 and np.allclose(y[25:], 0, atol=0.01)
    gaps = [(a.onset, a.duration) for a in edf.annotations if a.text == "gap: no signal recorded"]
    assert gaps == [(pytest.approx(1.2), pytest.approx(0.1))]  # the padding is not a gap
    assert "Sleep stage N2" in [a.text for a in edf.annotations]
    assert edf.start == dt.datetime(2026, 3, 1, 22, 30, 15)
    assert set(merge_journal(tmp_path / "j")) == {"bed 1/x", "b"}  # default: all, into the journal folder
    assert (tmp_path / "j" / "b.edf").exists()


def test_gap_annotations_by_hand():
    m = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    anns = recording._gap_annotations(m, 2.0)
    assert [(a.onset, a.duration) for a in anns] == [(0.0, 1.0), (2.0, 0.5), (3.0, 1.5)]
    assert recording._gap_annotations(np.zeros(5, dtype=bool), 2.0) == []


def test_merge_fills_the_database_rows_it_finds(tmp_path, caplog):
    class Row:
        recording_path = None

    rows = {"a": Row()}

    class Session:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def get(self, model, name):
            assert model.__name__ == "NightSession"
            return rows.get(name)

    class Store:
        def session(self):
            return Session()

    j = RecordingJournal(tmp_path / "j")
    j.add_session("ghost", ("EEG",), 10.0)  # first: a missing row must not stop the others
    j.add_session("a", ("EEG",), 10.0, units=("mV",))
    j.write_signals(["ghost", "a"], [0.0, 0.0], np.ones((2, 1, 10)))
    paths = j.finalize(tmp_path / "out", store=Store())
    assert paths["a"].parent == tmp_path / "out"
    assert rows["a"].recording_path == str(paths["a"])
    assert [r.getMessage() for r in caplog.records] == [
        f"No database row for session ghost; its recording is at {paths['ghost']}."]
    units = []
    read_edf(paths["a"], keep=lambda label, unit: units.append(unit) or True)
    assert units == ["mV"]  # the unit the journal was given (read_edf itself returns potentials in µV)


def test_reopened_journal_knows_its_sessions_and_numbers_on(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", CH, 100.0)
    j.add_session("b", ("EEG",), 10.0)
    j.close()
    j2 = RecordingJournal(tmp_path / "j")
    assert list(j2.sessions) == ["a", "b"]
    assert j2.sessions["b"].channels == ("EEG",) and j2.sessions["b"].fs == 10.0
    assert j2.add_session("c", CH, 100.0).number == 2
    assert j2.add_session("c", CH, 100.0).layout == 0  # same channels and rate as a: a's file
    j2.close()


def test_start_defaults_to_now_in_utc(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    info = j.add_session("a", CH, 100.0)
    start = dt.datetime.fromisoformat(info.start)
    assert start.tzinfo is not None and start.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - start).total_seconds()) < 3600
    j.close()


def test_integer_times_are_stored_as_float64(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", ("EEG",), 10.0)
    j.add_session("b", ("EEG",), 10.0)
    j.write_signals(["a", "b"], np.array([0, 2]), np.ones((2, 1, 10)))
    j.close()
    rec = recover_journal(tmp_path / "j")
    assert rec.index["a"].t0 == [0.0] and rec.index["b"].t0 == [2.0]
    assert rec.samples("b").shape == (1, 30)


def test_signal_starting_after_zero_keeps_its_time(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", ("EEG",), 10.0)
    j.write_signals(["a"], [1.0], np.full((1, 1, 10), 7.0))
    j.close()
    x = recover_journal(tmp_path / "j").samples("a")[0]
    assert x.shape == (20,) and np.isnan(x[:10]).all() and (x[10:] == 7).all()


def test_several_records_in_one_call(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", CH, 100.0)
    j.write_records([{"session": "a", "kind": "stage", "onset": k * 30.0, "duration": 30.0, "stage": k}
                     for k in range(3)])
    j.close()
    assert [r["stage"] for r in recover_journal(tmp_path / "j").records] == [0, 1, 2]


def test_sync_timing_of_signals_and_close(tmp_path, monkeypatch):
    now = [0.0]
    synced: list[int] = []
    monkeypatch.setattr(recording.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(recording.os, "fsync", synced.append)
    j = RecordingJournal(tmp_path / "j")  # sync_s defaults to 1 s
    now[0] = 5.0
    j.flush()
    assert synced == []  # nothing written yet: nothing to sync
    j.add_session("a", CH, 100.0, sync=False)
    j.write_signals(["a"], [0.0], np.ones((1, 2, 10)))
    now[0] = 5.5
    j.flush(force=True)
    assert len(synced) == 3
    synced.clear()
    j.write_signals(["a"], [0.1], np.ones((1, 2, 10)))
    now[0] = 6.49
    j.flush()
    assert synced == []  # 0.99 s since the forced sync
    now[0] = 6.5
    j.flush()
    assert len(synced) == 3
    synced.clear()
    j.close()  # closing syncs even when nothing is due
    assert len(synced) == 3


def test_find_magic_across_chunks():
    import io

    data = b"0123456789NXF1abcdefNXF1" + b"z" * 20 + b"NXF1"
    f = io.BytesIO(data)
    size = len(data)
    assert recording._find_magic(f, 0, size, chunk=4) == 10  # straddles a chunk boundary
    assert recording._find_magic(f, 10, size, chunk=4) == 10  # at the start position itself
    assert recording._find_magic(f, 11, size, chunk=4) == 20
    assert recording._find_magic(f, 0, size, chunk=64) == 10  # the first of several in one chunk
    assert recording._find_magic(f, 21, size, chunk=5) == 44  # several chunks on
    for chunk in (1, 2, 3, 7, 11, 12, 13):
        assert recording._find_magic(f, 1, size, chunk=chunk) == 10, chunk
    assert recording._find_magic(f, 45, size, chunk=4) is None
    assert recording._find_magic(io.BytesIO(b"xxNXF"), 0, 5, chunk=2) is None


def test_damage_is_counted_over_frames_and_files_and_logged(tmp_path, caplog):
    j = RecordingJournal(tmp_path / "j", sync_s=0.0)
    j.add_session("a", CH, 100.0)
    j.add_session("e", ("EEG",), 100.0)
    for k in range(4):
        j.write_signals(["a"], [float(k)], np.full((1, 2, 100), k + 1.0))
    j.write_signals(["e"], [0.0], np.ones((1, 1, 100)))
    j.write_signals(["e"], [1.0], np.ones((1, 1, 100)))
    j.close()
    seg0, seg1 = tmp_path / "j" / "signals-0.seg", tmp_path / "j" / "signals-1.seg"
    _poke(seg0, 20 + 12, b"\x7f\x7f\x7f\x7f")  # first and third frame of a: damaged
    _poke(seg0, 2 * FRAME + 20 + 12, b"\x7f\x7f\x7f\x7f")
    _poke(seg0, 3 * FRAME + 20 + 12, b"\x7f\x7f\x7f\x7f")  # ... and the last: a torn tail
    e_frame = 20 + 4 + 8 + 100 * 4
    with open(seg1, "r+b") as f:
        f.truncate(2 * e_frame - 7)  # e's second frame torn
    rec = recover_journal(tmp_path / "j")
    assert rec.corrupt_bytes == 2 * FRAME
    assert rec.torn_bytes == FRAME + e_frame - 7
    np.testing.assert_array_equal(rec.samples("a")[0, ::100], [np.nan, 2.0])  # only the second second is left
    assert [r.getMessage() for r in caplog.records] == [
        f"Journal {tmp_path / 'j'}: {FRAME + e_frame - 7} bytes of a torn last frame ignored (crash during a write).",
        f"Journal {tmp_path / 'j'}: {2 * FRAME} bytes of damaged frames skipped (CRC or header mismatch).",
    ]


def test_a_stray_byte_before_a_frame_costs_only_that_byte(tmp_path):
    seg = _three_frames(tmp_path)
    raw = seg.read_bytes()
    seg.write_bytes(raw[:FRAME] + b"x" + raw[FRAME:])
    rec = recover_journal(tmp_path / "j")
    assert rec.corrupt_bytes == 1 and rec.torn_bytes == 0
    np.testing.assert_array_equal(rec.samples("a")[0, ::100], [1.0, 2.0, 3.0])


def test_rows_of_an_unknown_session_are_skipped_not_the_rest(tmp_path):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", CH, 100.0)
    j.add_session("b", CH, 100.0)
    j.write_signals(["b", "a"], [0.0, 0.0], np.stack([np.full((2, 100), 2.0), np.full((2, 100), 1.0)]))
    j.close()
    sessions = tmp_path / "j" / "sessions.jsonl"
    sessions.write_text(sessions.read_text().splitlines()[0] + "\n")  # b's line lost in a crash
    rec = recover_journal(tmp_path / "j")
    assert list(rec.sessions) == ["a"]
    np.testing.assert_array_equal(rec.samples("a"), 1.0)


def test_blank_and_torn_lines_in_the_middle_are_skipped_and_logged(tmp_path, caplog):
    j = RecordingJournal(tmp_path / "j")
    j.add_session("a", CH, 100.0)
    j.close()
    path = tmp_path / "j" / "records.jsonl"
    path.write_bytes(b'{"session": "a", "kind": "stage", "onset": 0, "stage": 1}\n\n  \n{"torn\n'
                     b'{"session": "a", "kind": "stage", "onset": 30, "stage": 2}\n')
    recs = recover_journal(tmp_path / "j").records
    assert [r["stage"] for r in recs] == [1, 2]
    assert [r.getMessage() for r in caplog.records] == [
        f"Skipping a torn line at the end of {path} (written during a crash)."]


def test_background_sync_runs_off_the_callers_thread_and_reports_its_failure(tmp_path, monkeypatch):
    import threading

    now = [100.0]
    synced: list[str] = []
    release = threading.Event()
    fail = [False]

    def fake_fsync(fd):
        release.wait(5)  # a slow disk: the caller must not wait for it
        if fail[0]:
            raise OSError(5, "Input/output error")
        synced.append(threading.current_thread().name)

    monkeypatch.setattr(recording.time, "monotonic", lambda: now[0])
    j = RecordingJournal(tmp_path / "j", sync_s=1.0, background_sync=True)
    j.add_session("a", CH, 100.0, sync=False)
    monkeypatch.setattr(recording.os, "fsync", fake_fsync)
    j.write_record("a", "stage", 0.0, 30.0, stage=2)
    now[0] = 101.5
    j.flush()  # returns although the fsync is blocked
    assert synced == []
    release.set()
    j._sync_job.result(timeout=5)
    assert len(synced) == 3 and all(name.startswith("nexus-journal-sync") for name in synced)
    fail[0] = True
    j.write_record("a", "stage", 30.0, 30.0, stage=2)
    now[0] = 103.0
    j.flush()  # the failing fsync runs in the background ...
    j._sync_job.exception(timeout=5)
    with pytest.raises(StorageError, match="Input/output error"):
        j.flush()  # ... and the next flush says so
    fail[0] = False
    j.close()
    assert j.closed and (tmp_path / "j" / "records.jsonl").read_text().count("\n") == 2


def test_without_background_sync_flush_syncs_on_the_callers_thread_before_it_returns(tmp_path, monkeypatch):
    import threading

    now = [100.0]
    synced: list[str] = []
    monkeypatch.setattr(recording.time, "monotonic", lambda: now[0])
    j = RecordingJournal(tmp_path / "j", sync_s=1.0)  # the default: no helper thread
    j.add_session("a", CH, 100.0, sync=False)
    monkeypatch.setattr(recording.os, "fsync", lambda fd: synced.append(threading.current_thread().name))
    j.write_record("a", "stage", 0.0, 30.0, stage=2)
    now[0] = 101.5
    j.flush()
    assert synced == [threading.current_thread().name] * 3  # sessions, records, the signal layout: done at once
    j.close()
