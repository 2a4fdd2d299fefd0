import os

import pytest

from nexus.cli.main import main
from nexus.formats.edf import read_edf
from nexus.formats.events import read_events
from nexus.formats.hypnogram import read_hypnogram


def test_synth_writes_edf_and_truth(tmp_path, capsys):
    out, tsv, evs = tmp_path / "night.edf", tmp_path / "truth.tsv", tmp_path / "events.tsv"
    rc = main(
        [
            "synth",
            "--hours",
            "0.5",
            "--seed",
            "3",
            "--faults",
            "line_noise,dropped_samples",
            "--distress",
            "0",
            "-o",
            str(out),
            "--truth",
            str(tsv),
            "--events",
            str(evs),
        ]
    )
    assert rc == 0
    assert "60 epochs" in capsys.readouterr().out
    rec = read_edf(out)
    assert rec.labels[:2] == ["EEG C4-M1", "EEG Fpz-Cz"] and len(rec.labels) == 10
    assert rec.duration == pytest.approx(1800)
    texts = {a.text.split(" ", 1)[0] for a in rec.annotations}
    assert {"Sleep", "fault:line_noise", "fault:dropped_samples"} <= texts
    hyp = read_hypnogram(tsv)
    assert len(hyp.stages) == 60
    assert tsv.read_text().splitlines()[0].split("\t")[:3] == ["onset", "duration", "stage"]
    ev = read_events(evs)
    assert {"spindle", "slow_oscillation", "arousal"} <= set(ev.description)
    assert (ev[ev.description == "spindle"].channel == "EEG C4-M1").all()


def test_same_seed_same_file(tmp_path):
    a, b = tmp_path / "a.edf", tmp_path / "b.edf"
    assert main(["synth", "--hours", "0.1", "--seed", "7", "--profile", "teen", "--fs", "128", "-o", str(a)]) == 0
    assert main(["synth", "--hours", "0.1", "--seed", "7", "--profile", "teen", "--fs", "128", "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--profile", "insomnaic"], 2, "Unknown profile 'insomnaic'. Did you mean 'insomniac'?"),
        (["--hours", "-2"], 2, "Invalid value for '--hours': expected > 0 h, got -2 h."),
        (["--fs", "50"], 2, "Invalid value for '--fs': expected >= 100 Hz, got 50 Hz."),
        (["--faults", "electrode_of"], 2, "Did you mean 'electrode_off'?"),
        (["-o", "missing/night.edf"], 2, "folder 'missing' does not exist"),
        (["--truth", "missing/t.tsv"], 2, "folder 'missing' does not exist"),
        (["--truth", "night.edf"], 2, "must be different files"),
    ],
    ids=["profile", "hours", "fs", "fault", "edf-folder", "truth-folder", "same-path"],
)
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys, args, code, message):
    os.chdir(tmp_path)
    base = ["synth", "--hours", "0.05", "-o", "night.edf"]
    rc = main(base + args)
    err = capsys.readouterr().err
    assert rc == code
    assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unwritable_folder(shared_dir, run_unprivileged):
    ro = shared_dir / "ro"
    ro.mkdir()
    ro.chmod(0o555)  # nobody may write, not even its owner (the run drops root's privileges; see conftest)
    out = run_unprivileged(["synth", "--hours", "0.05", "-o", str(ro / "n.edf")])
    assert out.returncode == 2, out.stderr
    assert "is not writable" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert list(ro.iterdir()) == []
