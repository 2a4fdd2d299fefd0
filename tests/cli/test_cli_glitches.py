"""``nexus glitches``: TSV and JSON output of the monitor run over a recording."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from nexus.cli.main import main
from nexus.formats.edf import Signal, write_edf


def _recording(path):
    rng = np.random.default_rng(0)
    fs = 256.0
    n = int(90 * fs)
    eeg = rng.normal(0, 15, (2, n))
    eeg[1, int(30 * fs) : int(60 * fs)] = 0.02 * rng.normal(0, 1, int(30 * fs))  # electrode off for 30 s
    write_edf(
        path, [Signal("EEG C4-M1", eeg[0], fs), Signal("EEG Fpz-Cz", eeg[1], fs), Signal("Temp", np.ones(90), 1.0)]
    )
    return path


def test_glitches_writes_tsv_and_prints_a_summary(tmp_path, capsys):
    rec = _recording(tmp_path / "night.edf")
    rc = main(["glitches", str(rec), "-o", str(tmp_path / "g.tsv")])
    assert rc == 0
    out = capsys.readouterr()
    assert "1 electrode_off" in out.out and "not monitored" in out.err and "Temp" in out.err
    df = pd.read_csv(tmp_path / "g.tsv", sep="\t")
    assert list(df.columns) == ["onset", "duration", "kind", "category", "priority", "channel", "evidence"]
    assert df.shape[0] == 1
    row = df.iloc[0]
    assert (row.kind, row.category, row.priority, row.channel) == ("electrode_off", "technical", "medium", "EEG Fpz-Cz")
    assert abs(row.onset - 30.0) <= 1.5 and abs(row.duration - 30.0) <= 2.5
    assert json.loads(row.evidence)["std_uv"] < 0.2


def test_glitches_json_lists_the_same_fields(tmp_path, capsys):
    rec = _recording(tmp_path / "night.edf")
    assert main(["glitches", str(rec), "--json", "--block", "0.1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1
    assert set(rows[0]) == {"onset", "duration", "kind", "category", "priority", "channel", "evidence"}
    assert rows[0]["kind"] == "electrode_off" and isinstance(rows[0]["evidence"], dict)


def test_glitches_missing_file_is_one_clear_line(tmp_path, capsys):
    assert main(["glitches", str(tmp_path / "nope.edf")]) != 0
    err = capsys.readouterr().err
    assert "nope.edf" in err and "Traceback" not in err


def test_glitches_tsv_to_standard_output(tmp_path, capsys, monkeypatch):
    rec = _recording(tmp_path / "night.edf")
    monkeypatch.chdir(tmp_path)
    assert main(["glitches", str(rec), "-o", "-"]) == 0
    out = capsys.readouterr()
    assert not (tmp_path / "-").exists()  # no file called '-'
    lines = out.out.splitlines()
    assert lines[0].split("\t") == ["onset", "duration", "kind", "category", "priority", "channel", "evidence"]
    assert len(lines) == 2 and "\telectrode_off\t" in lines[1]
    assert "1 electrode_off" in out.err and "written to" not in out.err
    assert main(["glitches", str(rec), "-o", "-", "--json"]) == 2
    assert "--json and -o - would both write to standard output" in capsys.readouterr().err
