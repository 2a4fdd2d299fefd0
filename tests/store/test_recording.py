import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nexus.core.errors import NotFoundError
from nexus.formats.edf import read_edf
from nexus.store.recording import RecordingJournal, merge_journal, recover_journal

CH = ("EEG C4-M1", "EOG E1-M2")


def _journal(tmp_path):
    j = RecordingJournal(tmp_path / "j", sync_s=0.0)
    j.add_session("a", CH, 100.0)
    j.add_session("b", CH, 100.0)
    j.add_session("c", ("Acc X",), 10.0)
    return j


def test_round_trip_many_sessions_per_frame(tmp_path):
    j = _journal(tmp_path)
    rng = np.random.default_rng(0)
    blocks = [rng.normal(0, 30, (2, 2, 100)) for _ in range(3)]
    for k, b in enumerate(blocks):
        j.write_signals(["a", "b"], [k * 1.0, k * 1.0], b)
    j.write_signals(["c"], [0.0], np.ones((1, 1, 20)))
    j.write_record("a", "stage", 0.0, 30.0, stage=2)
    j.write_record("a", "event", 1.5, 0.8, description="spindle", channel="EEG C4-M1")
    j.write_record("b", "glitch", 2.0, description="flat_line")
    j.write_records([{"session": "b", "kind": "event", "description": "r_peak", "channel": "ECG",
                      "onset": [0.5, 1.4], "duration": [0.0, 0.0], "hr_bpm": [66.0, 67.0]}])
    j.flush()
    rec = recover_journal(tmp_path / "j")
    a = rec.samples("a")
    np.testing.assert_allclose(a, np.concatenate([b[0] for b in blocks], axis=1), rtol=1e-6)
    np.testing.assert_allclose(rec.samples("b")[1, 100:200], blocks[1][1, 1], rtol=1e-6)
    assert rec.samples("c").shape == (1, 20)
    assert len(rec.records) == 5  # the grouped record holds two heart beats
    beats = [r for r in rec.records if r.get("description") == "r_peak"]
    assert [(b["onset"], b["hr_bpm"], b["channel"]) for b in beats] == [(0.5, 66.0, "ECG"), (1.4, 67.0, "ECG")]
    paths = j.finalize(tmp_path / "edf")
    assert set(paths) == {"a", "b", "c"}
    edf = read_edf(paths["a"])
    assert edf.labels == list(CH)
    assert edf.signals[0].fs == 100.0
    np.testing.assert_allclose(edf.signals[0].data[:300], a[0], atol=0.05)
    texts = [x.text for x in edf.annotations]
    assert "Sleep stage N2" in texts
    assert "event: spindle" in texts
    assert "glitch: flat_line" in [x.text for x in read_edf(paths["b"]).annotations]


def test_frames_of_changing_session_sets_keep_each_sessions_samples(tmp_path):
    j = _journal(tmp_path)
    rng = np.random.default_rng(1)
    sent = {"a": [], "b": []}
    for k, order in enumerate((["a", "b"], ["b"], ["b", "a"], ["a", "b"], ["a"])):  # sets looked up once, reused
        x = rng.normal(0, 30, (len(order), 2, 50))
        j.write_signals(order, [k * 0.5] * len(order), x)
        for row, name in enumerate(order):
            sent[name].append((k, x[row]))
    j.flush()
    rec = recover_journal(tmp_path / "j")
    for name, parts in sent.items():
        got = rec.samples(name)
        for k, x in parts:
            np.testing.assert_allclose(got[:, k * 50 : k * 50 + 50], x, rtol=1e-6)
    j.close()


def test_gaps_late_and_duplicate_frames_land_at_their_time(tmp_path):
    j = _journal(tmp_path)
    one = np.ones((1, 2, 100))
    j.write_signals(["a"], [0.0], one)
    j.write_signals(["a"], [2.0], 3 * one)  # 1..2 s missing
    j.write_signals(["a"], [1.0], 2 * one)  # arrives late
    j.write_signals(["a"], [1.0], 2 * one)  # and twice
    j.flush()
    x = recover_journal(tmp_path / "j").samples("a")
    assert x.shape == (2, 300)
    np.testing.assert_array_equal(x[0, ::100], [1, 2, 3])
    j.write_signals(["a"], [4.0], one)
    paths = j.finalize()
    edf = read_edf(paths["a"])
    assert any(a.text.startswith("gap") and a.onset == pytest.approx(3.0) for a in edf.annotations)


def test_torn_last_frame_and_line_are_ignored(tmp_path):
    j = _journal(tmp_path)
    j.write_signals(["a"], [0.0], np.ones((1, 2, 100)))
    j.write_signals(["a"], [1.0], np.ones((1, 2, 100)))
    j.write_record("a", "stage", 0.0, 30.0, stage=1)
    j.close()
    seg = tmp_path / "j" / "signals-0.seg"
    with open(seg, "r+b") as f:
        f.truncate(seg.stat().st_size - 17)
    with open(tmp_path / "j" / "records.jsonl", "ab") as f:
        f.write(b'{"session": "a", "ki')
    rec = recover_journal(tmp_path / "j")
    assert rec.samples("a").shape == (2, 100)
    assert rec.torn_bytes > 0
    assert len(rec.records) == 1


def test_reopen_appends_to_the_same_journal(tmp_path):
    j = _journal(tmp_path)
    j.write_signals(["a"], [0.0], np.ones((1, 2, 100)))
    j.close()
    j2 = RecordingJournal(tmp_path / "j")
    j2.add_session("a", CH, 100.0)  # known: kept once
    j2.write_signals(["a"], [1.0], np.ones((1, 2, 100)))
    j2.close()
    rec = recover_journal(tmp_path / "j")
    assert len(rec.sessions) == 3
    assert rec.samples("a").shape == (2, 200)


def test_missing_journal(tmp_path):
    with pytest.raises(NotFoundError, match="No recording journal"):
        recover_journal(tmp_path)


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from nexus.store.recording import RecordingJournal

    j = RecordingJournal(sys.argv[1], sync_s=1.0)
    j.add_session("bed", ("EEG C4-M1",), 256.0)
    k = 0
    while True:
        x = np.full((1, 1, 256), float(k))
        j.write_signals(["bed"], [float(k)], x)
        j.write_record("bed", "stage", float(k), 1.0, stage=k % 5)
        j.flush()
        print(k, flush=True)  # acknowledged: written to the OS
        k += 1
    """
)


def test_sigkill_mid_recording_loses_nothing_acknowledged(tmp_path):
    folder = tmp_path / "crash"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)], stdout=subprocess.PIPE, text=True)
    acked = -1
    assert proc.stdout is not None
    while acked < 300:
        acked = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    rec = recover_journal(folder)
    x = rec.samples("bed")[0]
    n_sec = x.size // 256
    assert n_sec >= acked + 1  # every acknowledged second is there
    np.testing.assert_array_equal(x[: n_sec * 256 : 256], np.arange(n_sec))
    assert len(rec.records) >= acked + 1
    paths = merge_journal(folder)
    assert read_edf(paths["bed"]).duration >= acked + 1
    assert json.loads((folder / "sessions.jsonl").read_text().splitlines()[0])["session"] == "bed"
