"""What a user finds in a merged night: strict JSON records, the client and the night's start in the EDF+
header, heartbeats in the events TSV rather than in the EDF+."""

import datetime as dt
import json
import math
from pathlib import Path

import edfio
import numpy as np
import pytest

from nexus.core.errors import StorageError
from nexus.formats.edf import read_edf
from nexus.formats.events import read_events
from nexus.store.recording import RecordingJournal, recover_journal


def _journal(tmp_path, **add):
    j = RecordingJournal(tmp_path / "j", sync_s=0.0)
    j.add_session("n1-0001", ("EEG C4-M1", "ECG"), 10.0, **add)
    j.write_signals(["n1-0001"], [0.0], np.ones((1, 2, 40)))
    return j


def test_records_are_strict_json_and_nan_reads_back(tmp_path):
    j = _journal(tmp_path)
    j.write_records([{"session": "n1-0001", "kind": "event", "description": "r_peak", "channel": "ECG",
                      "onset": [0.2, 1.2, 2.1], "duration": [0.0, 0.0, 0.0],
                      "rr_s": [float("nan"), 1.0, 0.9], "hr_bpm": np.array([np.nan, 60.0, np.inf])}])
    j.write_record("n1-0001", "glitch", 1.0, what="flat", level=float("inf"))
    j.close()
    text = (tmp_path / "j" / "records.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    for line in text.splitlines():
        json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # strict JSON
    recs = recover_journal(tmp_path / "j").records
    beats = [r for r in recs if r["kind"] == "event"]
    assert math.isnan(beats[0]["rr_s"]) and beats[1]["rr_s"] == 1.0
    assert math.isnan(beats[2]["hr_bpm"])
    assert [r["level"] for r in recs if r["kind"] == "glitch"] == [None]


def test_numpy_values_big_integers_and_non_ascii_text_read_back_as_written(tmp_path):
    j = _journal(tmp_path)
    j.write_records([{"session": "n1-0001", "kind": "decision", "onset": np.float32(1.5), "duration": 0.0,
                      "inputs": {"stage": np.int64(3), "flags": np.array([True, False]), 7: "int key"},
                      "reason": "Szene 'Wald': Grüße ✓"},
                     {"session": "n1-0001", "kind": "decision", "onset": 2.0, "duration": 0.0,
                      "inputs": {"counter": 2**70, 8: [np.nan]}, "reason": ""}])
    j.close()
    first, second = (r for r in recover_journal(tmp_path / "j").records if r["kind"] == "decision")
    assert first["onset"] == 1.5 and first["reason"] == "Szene 'Wald': Grüße ✓"
    assert first["inputs"] == {"stage": 3, "flags": [True, False], "7": "int key"}
    assert second["inputs"] == {"counter": 2**70, "8": [None]}


def test_records_are_written_as_compact_utf8_lines(tmp_path):
    """The line format the raw-line filters (line_may_hold) and readers rely on: compact JSON, UTF-8 text, numpy
    values as numbers, other objects as their text (the oracle is the standard library's compact form)."""
    j = _journal(tmp_path)
    j.write_record("n1-0001", "decision", np.float32(1.5), inputs={"stage": np.int64(3), "file": Path("a/b.yaml")},
                   reason="Grüße ✓")
    j.close()
    expected = {"session": "n1-0001", "kind": "decision", "onset": 1.5, "duration": 0.0,
                "inputs": {"stage": 3, "file": "a/b.yaml"}, "reason": "Grüße ✓"}
    line = (tmp_path / "j" / "records.jsonl").read_bytes()
    assert line == (json.dumps(expected, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def test_a_record_orjson_cannot_write_keeps_its_other_values(tmp_path):
    """A 70-bit integer goes the standard library's way: numbers, numpy values, arrays, lists and other objects
    in the same record still read back as written, NaN and infinities (alone, in lists, in arrays) as null."""
    j = _journal(tmp_path)
    j.write_record("n1-0001", "decision", 2.0, inputs={
        "counter": 2**70, "stage": np.int64(3), "p": np.float64(0.25), "x": 1.5, "inf": float("inf"),
        "xs": [1.5, float("nan"), np.float32(2.5)], "arr": np.array([0.5, np.nan]), "file": Path("a/b.yaml")})
    j.close()
    text = (tmp_path / "j" / "records.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    (rec,) = (r for r in recover_journal(tmp_path / "j").records if r["kind"] == "decision")
    assert rec["inputs"] == {"counter": 2**70, "stage": 3, "p": 0.25, "x": 1.5, "inf": None,
                             "xs": [1.5, None, 2.5], "arr": [0.5, None], "file": "a/b.yaml"}


def test_records_onto_a_full_disk_raise_one_storage_error(tmp_path):
    """A record write that finds the disk full (/dev/full answers ENOSPC) is the journal's one-line error."""
    j = _journal(tmp_path)
    j.flush(force=True)
    j._rec_file.close()
    j._rec_file = open("/dev/full", "wb", buffering=0)  # noqa: SIM115 (closed by the journal)
    with pytest.raises(StorageError, match=r"Cannot write the recording journal .*: the disk is full"):
        j.write_record("n1-0001", "glitch", 1.0, what="flat")
    with pytest.raises(StorageError):  # /dev/full cannot be synced either: close says so and still closes
        j.close()
    assert j.closed
    assert recover_journal(tmp_path / "j").samples("n1-0001").shape[-1] == 40  # what was written stays readable


def test_a_journal_from_before_strict_json_with_a_bare_nan_still_reads(tmp_path):
    j = _journal(tmp_path)
    j.close()
    with open(tmp_path / "j" / "records.jsonl", "ab") as f:
        f.write(b'{"session": "n1-0001", "kind": "glitch", "onset": 2.0, "duration": 0.0, "level": NaN}\n')
    recs = recover_journal(tmp_path / "j").records
    assert [math.isnan(r["level"]) for r in recs if r["kind"] == "glitch"] == [True]


def test_edf_header_has_the_client_and_the_nights_start(tmp_path):
    lights_out = dt.datetime(2026, 12, 5, 23, 0, 0)
    j = _journal(tmp_path, client="C-0042")
    paths = j.finalize(tmp_path / "out", start=lights_out)
    edf = edfio.read_edf(paths["n1-0001"])
    assert edf.patient.code == "C-0042"
    assert read_edf(paths["n1-0001"]).start == lights_out


def test_edf_patient_defaults_to_a_given_client_map_then_the_session_id(tmp_path):
    j = _journal(tmp_path)
    paths = j.finalize(tmp_path / "out", clients={"n1-0001": "C-7"})
    assert edfio.read_edf(paths["n1-0001"]).patient.code == "C-7"
    j2 = RecordingJournal(tmp_path / "j2")
    j2.add_session("n2-0001", ("EEG",), 10.0)
    j2.write_signals(["n2-0001"], [0.0], np.ones((1, 1, 10)))
    code = edfio.read_edf(j2.finalize(tmp_path / "out2")["n2-0001"]).patient.code
    assert code == "n2-0001"  # never 'X'


def test_heartbeats_go_to_the_events_tsv_not_the_edf(tmp_path):
    j = _journal(tmp_path)
    onsets = [0.5 + 0.8 * k for k in range(5)]
    j.write_records([{"session": "n1-0001", "kind": "event", "description": "r_peak", "channel": "ECG",
                      "onset": onsets, "duration": [0.0] * 5, "rr_s": [float("nan")] + [0.8] * 4}])
    j.write_record("n1-0001", "event", 1.0, 2.0, description="movement", channel="Acc")
    j.write_record("n1-0001", "stage", 0.0, 30.0, stage=2)
    j.write_record("n1-0001", "decision", 1.5, what="silence")
    paths = j.finalize(tmp_path / "out")
    texts = [a.text for a in read_edf(paths["n1-0001"]).annotations]
    assert not any("r_peak" in t for t in texts)
    assert "Sleep stage N2" in texts and "event: movement" in texts and "decision: silence" in texts
    ev = read_events(tmp_path / "out" / "n1-0001.events.tsv")
    assert sorted(ev["description"]) == ["movement"] + ["r_peak"] * 5
    np.testing.assert_allclose(ev.loc[ev["description"] == "r_peak", "onset"], onsets)


def test_raw_line_filter_knows_both_spellings_and_non_ascii_names(tmp_path):
    from nexus.store.recording import line_may_hold

    j = _journal(tmp_path)
    j.add_session("Zoë-7", ("EEG C4-M1",), 10.0)
    j.write_records([{"session": "Zoë-7", "kind": "decision", "onset": 1.0, "duration": 0.0, "description": "x"}])
    j.close()
    new = [ln for ln in (tmp_path / "j" / "records.jsonl").read_bytes().splitlines() if b"decision" in ln]
    old = json.dumps({"session": "Zoë-7", "kind": "decision", "onset": 1.0}).encode()  # before 2026-12
    for line in (*new, old):
        assert line_may_hold(line, kind="decision", session="Zoë-7")
        assert not line_may_hold(line, kind="event")
        assert not line_may_hold(line, session="Zoë")
