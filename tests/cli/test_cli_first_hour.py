"""What a new user meets in the first hour: names listed in --help, examples that work, '-' as stdout."""

import sys
from pathlib import Path

import pytest

from nexus.cli.main import main
from nexus.formats.hypnogram import FORMATS
from nexus.sources.synthetic import FAULT_KINDS
from nexus.sources.synthetic.profile import PRESETS

ROOT = Path(__file__).resolve().parents[2]


def _help(capsys, *cmd: str) -> str:
    assert main([*cmd, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())  # click wraps lines


@pytest.mark.parametrize(
    ("cmd", "names"),
    [(("synth",), [*PRESETS, *FAULT_KINDS]), (("simulate",), [*PRESETS, *FAULT_KINDS]),
     (("dreamscape", "try"), list(PRESETS)), (("stage",), list(FORMATS)), (("stats",), list(FORMATS))],
    ids=["synth", "simulate", "dreamscape-try", "stage", "stats"],
)
def test_help_lists_the_names_a_user_would_otherwise_guess(capsys, cmd, names):
    text = _help(capsys, *cmd)
    missing = [n for n in names if n not in text]
    assert not missing, f"'nexus {' '.join(cmd)} --help' does not list {missing}"


def test_curate_help_points_to_the_example_and_explains_audio_consent(capsys):
    text = _help(capsys, "dreamscape", "curate")
    assert "examples/intakes/deeper-sleep.yaml" in text and "'audio' is needed" in text


@pytest.mark.parametrize("intake", sorted((ROOT / "examples" / "intakes").glob("*.yaml")), ids=lambda p: p.name)
def test_example_intakes_curate_to_programs_that_pass_check(tmp_path, capsys, intake):
    out = tmp_path / "program.yaml"
    assert main(["dreamscape", "curate", str(intake), "-o", str(out)]) == 0
    assert main(["dreamscape", "check", str(out)]) == 0
    assert "OK" in capsys.readouterr().out


def test_setup_installs_espeak_for_the_example_with_a_spoken_prompt():
    # forest.yaml's text cue needs espeak-ng: the README's first command (run.sh/test.sh → setup.sh) installs it
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "apt-get install -y -qq espeak-ng" in setup and 'command -v espeak-ng' in setup
    assert "text:" in (ROOT / "examples" / "dreamscapes" / "forest.yaml").read_text()


def test_synth_truth_to_stdout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["synth", "--hours", "0.1", "--fs", "100", "-o", "n.edf", "--truth", "-"]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert lines[0] == "onset\tduration\tstage" and len(lines) == 1 + 12
    assert "n.edf: 0.1 h" in cap.err  # the summary does not corrupt the TSV
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.edf"]


def test_synth_edf_to_stdout_in_a_pipe_not_a_terminal_and_one_stdout(tmp_path, monkeypatch, capsysbinary):
    monkeypatch.chdir(tmp_path)
    # standard output is not a terminal under pytest, as in 'nexus synth -o - | ...'
    assert main(["synth", "--hours", "0.1", "--fs", "100", "-o", "-", "--truth", "h.tsv"]) == 0
    cap = capsysbinary.readouterr()
    assert b"EDF+ on standard output: 0.1 h" in cap.err and sorted(p.name for p in tmp_path.iterdir()) == ["h.tsv"]
    assert main(["synth", "--hours", "0.1", "--fs", "100", "-o", "n.edf"]) == 0
    capsysbinary.readouterr()
    assert cap.out.startswith(b"0       ") and cap.out == (tmp_path / "n.edf").read_bytes()  # the same EDF+ bytes
    for p in tmp_path.iterdir():
        p.unlink()
    with monkeypatch.context() as m:  # a terminal: refused before the night is generated
        m.setattr(sys.stdout, "isatty", lambda: True)
        assert main(["synth", "--hours", "0.1", "-o", "-"]) == 2
    assert capsysbinary.readouterr().err.decode().strip() == (
        "Error: Not writing the EDF file (binary) to a terminal: redirect standard output (-o - > night.edf, or a "
        "pipe), or give a file name (-o night.edf).")
    assert main(["synth", "--hours", "0.1", "-o", "n.edf", "--truth", "-", "--events", "-"]) == 2
    assert b"Only one of --truth and --events can go to standard output ('-'); give the other a file name." in \
        capsysbinary.readouterr().err
    assert main(["synth", "--hours", "0.1", "-o", "-", "--truth", "-", "--events", "-"]) == 2
    assert b"Only one of -o, --truth and --events" in capsysbinary.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_synth_summary_says_one_not_ones(tmp_path, capsys):
    assert main(["synth", "--hours", "1", "--fs", "100", "--distress", "1", "--faults", "line_noise",
                 "-o", str(tmp_path / "n.edf")]) == 0
    out = capsys.readouterr().out
    assert "1 distress episode," in out and "1 fault" in out and "1 faults" not in out


def test_events_to_stdout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["synth", "--hours", "0.1", "--fs", "100", "--distress", "0", "-o", "n.edf"]) == 0
    capsys.readouterr()
    assert main(["events", "n.edf", "--only", "heart_rate", "-o", "-"]) == 0
    cap = capsys.readouterr()
    assert cap.out.splitlines()[0].split("\t")[:4] == ["onset", "duration", "description", "channel"]
    assert "→ standard output" in cap.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.edf"]
