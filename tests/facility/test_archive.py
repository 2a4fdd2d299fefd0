"""nexus stage-archive: a small archive through a local Ray with one worker.

Two real nights (the Sleep-EDF excerpt and a time-reversed copy of it, so that mixing up the results
of two files shows) and one corrupt file.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from nexus.cli.main import main
from nexus.facility import archive as A
from nexus.formats.edf import Signal, read_edf, write_edf
from nexus.formats.hypnogram import read_hypnogram
from nexus.staging.stats import sleep_statistics

PSG = Path(__file__).resolve().parents[1] / "data" / "sleep-edf" / "SC4001E0-PSG_first5min.edf"


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray for the module: 1 CPU, no dashboard, no usage report, bound to 127.0.0.1."""
    import ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(
        address="local",
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        _node_ip_address="127.0.0.1",
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def archive(tmp_path) -> Path:
    root = tmp_path / "archive"
    (root / "sub").mkdir(parents=True)
    shutil.copy(PSG, root / "a.edf")
    rec = read_edf(PSG)
    # same channels and rates, the signals time-reversed: a different night for the stager
    write_edf(root / "sub" / "b.EDF", [Signal(s.label, s.data[::-1].copy(), s.fs, s.unit) for s in rec.signals])
    (root / "sub" / "broken.edf").write_bytes(b"0       not an EDF header at all" * 40)
    (root / "notes.txt").write_text("not a recording")
    return root


def _stage_alone(path: Path, out: Path, *extra: str) -> bytes:
    assert main(["stage", str(path), "-o", str(out), *extra]) == 0
    return out.read_bytes()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_archive_stages_like_nexus_stage_reports_errors_and_resumes(local_ray, archive, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["stage-archive", str(archive), "--out", str(out), "--workers", "1", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 1  # one recording failed; the batch still finished
    assert "3 recordings: 2 staged, 0 skipped (done before), 1 failed" in captured.out
    assert "1 of 3 recordings could not be staged" in captured.err and "errors.csv" in captured.err

    # the corrupt file is in the error report, with the reader's reason; nothing else is
    errors = _rows(out / "errors.csv")
    assert [e["recording"] for e in errors] == [str(Path("sub") / "broken.edf")]
    assert "Cannot read" in errors[0]["error"] and "EDF" in errors[0]["error"]

    # one hypnogram per night, byte for byte what 'nexus stage -o' writes for that file
    manifest = A.read_manifest(out)
    by_night = {e["night"]: e for e in manifest.values()}
    assert set(by_night) == {"a.edf", str(Path("sub") / "b.EDF")}
    for night, entry in by_night.items():
        alone = _stage_alone(archive / night, tmp_path / "alone.tsv")
        assert (out / entry["hypnogram"]).read_bytes() == alone, night
        assert entry["sha256"] == A.content_hash(archive / night)
        assert entry["stager"] == "offline" and entry["epochs"] == 10
    hyp_a = read_hypnogram(out / by_night["a.edf"]["hypnogram"])
    hyp_b = read_hypnogram(out / by_night[str(Path("sub") / "b.EDF")]["hypnogram"])
    assert not np.array_equal(hyp_a.probabilities, hyp_b.probabilities)  # two different nights

    # the statistics table: one row per night, the same in CSV and Parquet, values from the hypnograms
    import pandas as pd

    csv_table = pd.read_csv(out / "stats.csv")
    parquet = pd.read_parquet(out / "stats.parquet")
    assert list(csv_table["night"]) == ["a.edf", str(Path("sub") / "b.EDF")]
    assert list(parquet["night"]) == list(csv_table["night"])
    for i, hyp in enumerate((hyp_a, hyp_b)):
        want = sleep_statistics(hyp.stages)
        for key in ("TIB", "TST", "WAKE", "N1", "N2", "N3", "REM"):
            assert csv_table.loc[i, key] == pytest.approx(want[key]), key
            assert parquet.loc[i, key] == pytest.approx(want[key]), key

    # second run: every finished night skipped by content hash (a renamed file too); the broken one is retried
    (archive / "a.edf").rename(archive / "renamed.edf")
    before = {p.name: p.stat().st_mtime_ns for p in (out / "hypnograms").iterdir()}
    summary = A.stage_archive(archive, out, workers=1, progress=False)
    assert (summary.found, summary.staged, summary.skipped, summary.nights) == (3, 0, 2, 2)
    assert [r for r, _ in summary.failed] == [str(Path("sub") / "broken.edf")]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "hypnograms").iterdir()} == before
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 2
    assert len(pd.read_csv(out / "stats.csv")) == 2

    # fixing the broken file (here: replacing it with a real night) stages just that one
    shutil.copy(PSG, archive / "sub" / "broken.edf")  # same content as renamed.edf: skipped, not staged twice
    (archive / "sub" / "b.EDF").unlink()
    write_edf(archive / "sub" / "c.edf", [Signal(s.label, -s.data, s.fs, s.unit) for s in read_edf(PSG).signals])
    summary = A.stage_archive(archive, out, workers=1, progress=False)
    assert (summary.staged, summary.skipped, summary.failed) == (1, 2, [])
    assert _rows(out / "errors.csv") == []
    assert len(pd.read_csv(out / "stats.csv")) == 3  # the table keeps the nights of earlier runs


def test_archive_live_stager_matches_nexus_stage_live(local_ray, archive, tmp_path):
    (archive / "sub" / "broken.edf").unlink()
    out = tmp_path / "live"
    summary = A.stage_archive(archive, out, live=True, progress=False)
    assert (summary.staged, summary.failed) == (2, [])
    for entry in A.read_manifest(out).values():
        assert entry["stager"] == "live" and entry["model"].endswith("(live)")
        alone = _stage_alone(archive / entry["night"], tmp_path / "alone.tsv", "--live")
        assert (out / entry["hypnogram"]).read_bytes() == alone
    # an output folder of one stager is not mixed with the other's nights
    assert main(["stage-archive", str(archive), "--out", str(out)]) == 2


def test_manifest_line_cut_by_a_crash_is_ignored(tmp_path, caplog):
    good = {"sha256": "ab" * 32, "night": "a.edf", "hypnogram": "hypnograms/a.tsv", "stager": "offline"}
    (tmp_path / "manifest.jsonl").write_text(json.dumps(good) + "\n" + '{"sha256": "cd", "nig')
    assert list(A.read_manifest(tmp_path)) == ["ab" * 32]
    assert "Ignoring line 2" in caplog.text


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--address", "127.0.0.1:1"], 78, "No Ray cluster answers at '127.0.0.1:1'"),
        (["--address", "nohost"], 2, "Invalid Ray address 'nohost': expected HOST:PORT"),
        (["--workers", "0"], 2, "Invalid value for --workers: expected >= 1, got 0."),
    ],
    ids=["address-not-answering", "address-malformed", "no-workers"],
)
def test_bad_input_is_one_line_and_starts_no_ray(archive, tmp_path, args, code, message):
    # a fresh process: the module's Ray must not hide a connection attempt
    cmd = [sys.executable, "-c", "import sys; from nexus.cli.main import main; sys.exit(main(sys.argv[1:]))"]
    res = subprocess.run(
        [*cmd, "stage-archive", str(archive), "--out", str(tmp_path / "o"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == code, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "o" / "manifest.jsonl").exists()


def test_missing_archive_folder(tmp_path, capsys):
    assert main(["stage-archive", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 3
    assert "The archive folder" in capsys.readouterr().err
