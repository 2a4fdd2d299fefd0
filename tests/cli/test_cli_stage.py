import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nexus.cli.main import main
from nexus.formats.hypnogram import read_hypnogram, write_hypnogram

DATA = Path(__file__).resolve().parents[1] / "data"
PSG = DATA / "sleep-edf" / "SC4001E0-PSG_first5min.edf"


def test_stage_writes_hypnodensity_tsv(tmp_path, capsys):
    out = tmp_path / "h.tsv"
    assert main(["stage", str(PSG), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "10 epochs staged (offline, clf_eeg+eog; EEG=EEG Fpz-Cz, EOG=EOG horizontal)" in printed
    header = out.read_text().splitlines()[0].split("\t")
    assert header == ["onset", "duration", "stage", "p_W", "p_N1", "p_N2", "p_N3", "p_R"]
    h = read_hypnogram(out)
    assert len(h) == 10 and (h.stages == 0).all()  # the expert scored all of it as wake
    np.testing.assert_allclose(h.probabilities.sum(axis=1), 1.0, atol=1e-3)


def test_stage_live_and_channel_choice(tmp_path, capsys):
    out = tmp_path / "h.txt"
    rc = main(["stage", str(PSG), "--live", "--eeg", "Pz-Oz", "--no-eog", "-o", str(out), "--format", "yasa-int"])
    assert rc == 0
    assert "live, clf_eeg (live); EEG=EEG Pz-Oz" in capsys.readouterr().out
    assert len(read_hypnogram(out).stages) == 10


def test_stage_errors(tmp_path, capsys):
    assert main(["stage", str(PSG), "--eeg", "C4-M1"]) == 2
    err = capsys.readouterr().err
    assert "No EEG channel 'C4-M1'" in err and "Channels found: EEG Fpz-Cz" in err
    assert main(["stage", str(tmp_path / "none.edf")]) == 3
    assert main(["stage", str(PSG), "--age", "40"]) == 2


def test_stats_json_and_table(tmp_path, capsys):
    hyp = write_hypnogram(tmp_path / "h.tsv", [0] * 20 + [2] * 40 + [0] * 10 + [4] * 20 + [0] * 10)
    assert main(["stats", str(hyp), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["TST"], s["SOL"], s["Lat_REM"], s["SE"]) == (30.0, 10.0, 35.0, 60.0)
    assert main(["stats", str(DATA / "sleep-edf" / "SC4001EC-Hypnogram.edf")]) == 0
    assert "UNS" in capsys.readouterr().out
    (tmp_path / "bad.txt").write_text("W\nX9\n")
    assert main(["stats", str(tmp_path / "bad.txt")]) == 65


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("h.tsv", "tsv"), ("h.csv", "csv"), ("h.edf", "edf"), ("h.xml", "nsrr-xml"), ("h.txt", "yasa-int")],
    ids=["tsv", "csv", "edf", "xml", "txt"],
)
def test_stage_output_format_follows_the_extension(tmp_path, capsys, name, fmt):
    out = tmp_path / name
    assert main(["stage", str(PSG), "-o", str(out)]) == 0
    assert f"({fmt})" in capsys.readouterr().out
    payload = out.read_bytes()
    if fmt == "edf":
        assert payload.startswith(b"0       ")  # an EDF header, not TSV text
    else:
        assert not payload.startswith(b"onset\t") or fmt == "tsv"
    h = read_hypnogram(out, fmt)
    assert len(h) == 10 and (h.stages == 0).all()


@pytest.mark.parametrize(
    ("args", "match"),
    [(["-o", "h.foo"], "Cannot tell the hypnogram format of 'h.foo'"),
     (["-o", "h.edf", "--format", "tsv"], "Format 'tsv' does not fit 'h.edf'"),
     (["-o", "-", "--format", "edf", "--tty"], "Not writing the EDF\\+ hypnogram \\(binary\\) to a terminal: "
                                               "redirect standard output \\(-o - > hypno.edf, or a pipe\\)")],
    ids=["unknown-extension", "format-against-extension", "edf-to-a-terminal"],
)
def test_stage_refuses_a_format_it_cannot_write_before_staging(tmp_path, monkeypatch, capsys, args, match):
    import re

    monkeypatch.chdir(tmp_path)
    if "--tty" in args:  # standard output is a terminal
        args = [a for a in args if a != "--tty"]
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["stage", str(PSG), *args]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [[], ["-o", "-"]], ids=["no-output", "dash"])
def test_stage_prints_the_hypnogram_to_stdout(tmp_path, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    assert main(["stage", str(PSG), *args]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert lines[0].split("\t")[:3] == ["onset", "duration", "stage"] and len(lines) == 11
    assert "10 epochs staged" in cap.err  # the summary does not corrupt the TSV
    assert list(tmp_path.iterdir()) == []  # no file named '-'


def test_stage_writes_an_edf_hypnogram_to_stdout_in_a_pipe(tmp_path, monkeypatch, capsysbinary):
    # standard output is not a terminal under pytest, as in 'nexus stage night.edf -o - --format edf | ...'
    monkeypatch.chdir(tmp_path)
    assert main(["stage", str(PSG), "-o", "-", "--format", "edf"]) == 0
    cap = capsysbinary.readouterr()
    assert b"10 epochs staged" in cap.err and list(tmp_path.iterdir()) == []  # no file named '-'
    assert main(["stage", str(PSG), "-o", "h.edf"]) == 0
    capsysbinary.readouterr()
    assert cap.out.startswith(b"0       ") and cap.out == (tmp_path / "h.edf").read_bytes()  # the same EDF+ bytes
