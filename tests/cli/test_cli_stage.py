import json
from pathlib import Path

import numpy as np

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
