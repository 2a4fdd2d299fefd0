"""Re-running 'nexus simulate --out DIR' keeps the earlier run and writes the new one beside it (DIR-2, DIR-3, …)."""

import json

from nexus.cli.main import main
from nexus.facility.simulate import free_run_folder

ARGS = ["simulate", "--clients", "1", "--hours", "0.01", "--no-events", "--no-progress", "--json", "--workers", "1"]


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_run_goes_to_a_numbered_folder_and_the_first_is_untouched(tmp_path, capsys):
    out = tmp_path / "nights"
    assert main([*ARGS, "--out", str(out)]) == 0
    first = json.loads(capsys.readouterr().out)
    before = _files(out)
    assert "summary.json" in before and "journal/sessions.jsonl" in before

    assert main([*ARGS, "--seed", "1", "--out", str(out)]) == 0  # the same command again (old code: exit 2)
    cap = capsys.readouterr()
    second = json.loads(cap.out)
    assert f"'{out}' already holds a simulation (left as it is); this one goes to '{out}-2'" in cap.err
    assert _files(out) == before  # nothing of the first run is rewritten
    assert second["out"] == str(tmp_path / "nights-2")
    assert json.loads((tmp_path / "nights-2" / "summary.json").read_text())["beds"][0]["session"] == \
        second["beds"][0]["session"] != first["beds"][0]["session"]
    assert main(["sessions", "--json"]) == 0  # both nights are in the facility database
    listed = {r["session"] for r in json.loads(capsys.readouterr().out)}
    assert listed == {first["beds"][0]["session"], second["beds"][0]["session"]}


def test_the_next_free_folder_skips_runs_and_folders_with_other_files(tmp_path):
    out = tmp_path / "nights"
    assert free_run_folder(out) == out  # new: used as it is
    (out / "journal").mkdir(parents=True)
    assert free_run_folder(out) == out  # a folder without a simulation's journal: used as it is
    (out / "journal" / "sessions.jsonl").write_text("{}\n")
    (tmp_path / "nights-2" / "journal").mkdir(parents=True)
    (tmp_path / "nights-2" / "journal" / "sessions.jsonl").write_text("{}\n")  # an earlier re-run
    (tmp_path / "nights-3").mkdir()
    (tmp_path / "nights-3" / "notes.txt").write_text("mine")  # someone's folder: not written into
    (tmp_path / "nights-4").mkdir()  # empty: fine
    assert free_run_folder(out) == tmp_path / "nights-4"
    assert free_run_folder(str(out) + "/") == tmp_path / "nights-4"
