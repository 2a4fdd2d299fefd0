import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nexus.cli.main import main
from nexus.formats.edf import Signal, write_edf
from nexus.formats.events import read_events
from nexus.formats.hypnogram import write_hypnogram
from nexus.sinks.wav import read_wav

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes"
PROGRAM = str(EXAMPLES / "deep-sleep.yaml")


def test_check_ok_and_refused(capsys, tmp_path):
    assert main(["dreamscape", "check", PROGRAM]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(PROGRAM).read_text().replace("sound: rain", "sond: rain"))
    assert main(["dreamscape", "check", str(bad)]) == 65
    out = capsys.readouterr()
    assert "Unknown key 'sond'. Did you mean 'sound'?" in out.out and "(line 10)" in out.out
    assert out.err.startswith("Error: Program") and out.err.count("\n") == 1
    assert main(["dreamscape", "check", str(tmp_path / "none.yaml")]) == 3


def test_schema(capsys, tmp_path):
    assert main(["dreamscape", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["properties"]["dreamscape"]
    assert main(["dreamscape", "schema", "-o", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["additionalProperties"] is False


def test_render_a_short_night(capsys, tmp_path):
    hyp = tmp_path / "h.tsv"
    write_hypnogram(hyp, np.array([0, 0, 1, 2], dtype=np.int8))
    out = tmp_path / "night.wav"
    assert main(["dreamscape", "render", PROGRAM, "--hypno", str(hyp), "-o", str(out)]) == 0
    assert "CLAS clicks need --edf" in capsys.readouterr().out
    audio, fs = read_wav(out)
    assert fs == 48000 and audio.size == 120 * 48000
    assert np.max(np.abs(audio)) <= 10 ** (-20 / 20) + 1e-4
    assert main(["dreamscape", "render", PROGRAM, "--hypno", str(hyp), "-o", str(out), "--start-min", "9"]) == 2


def test_render_to_stdout_in_a_pipe_and_not_to_a_terminal(capsysbinary, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_hypnogram("h.tsv", np.array([0, 0, 1, 2], dtype=np.int8))
    args = ["dreamscape", "render", PROGRAM, "--hypno", "h.tsv", "--minutes", "0.5"]
    assert main([*args, "-o", "night.wav"]) == 0
    capsysbinary.readouterr()
    assert main([*args, "-o", "-"]) == 0  # standard output is not a terminal under pytest, as in a pipe
    cap = capsysbinary.readouterr()
    assert cap.out.startswith(b"RIFF") and cap.out == (tmp_path / "night.wav").read_bytes()
    assert b"Wrote standard output: 0.5 min at 48 kHz" in cap.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.tsv", "night.wav"]  # no file named '-'
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main([*args, "-o", "-"]) == 2
    assert b"Not writing the WAV file (binary) to a terminal" in capsysbinary.readouterr().err


@pytest.fixture
def n3_edf(tmp_path, data_dir):
    x = np.loadtxt(data_dir / "yasa-samples" / "data_N3_no-spindles_30sec_100Hz.txt")
    path = tmp_path / "n3.edf"
    write_edf(path, [Signal("EEG Fpz-Cz", np.tile(x, 2), 100.0)])
    return path


def test_clas_replay_writes_pulses(capsys, tmp_path, n3_edf):
    out = tmp_path / "pulses.tsv"
    assert main(["dreamscape", "clas-replay", str(n3_edf), "--stage", "N3", "-o", str(out)]) == 0
    assert "pulses over 1.0 min of EEG Fpz-Cz" in capsys.readouterr().out
    ev = read_events(out)
    assert len(ev) >= 6  # two copies of a 30-s excerpt, through the loop (decided at each live tick's end)
    assert set(ev["description"]) == {"clas_click"}
    assert np.all(np.diff(ev["onset"].to_numpy()) >= 0.5)
    assert main(["dreamscape", "clas-replay", str(n3_edf), "--channel", "EEG C3", "--stage", "N3",
                 "-o", str(out)]) == 2
    assert "Did you mean" in capsys.readouterr().err


def test_try_prints_a_summary(capsys):
    assert main(["dreamscape", "try", PROGRAM, "--clients", "2", "--hours", "0.2", "--stager", "oracle"]) == 0
    out = capsys.readouterr().out
    assert "2 synthetic sleepers x 0.2 h" in out and "minutes per scene per client: settle" in out
    assert main(["dreamscape", "try", PROGRAM, "--clients", "2", "--hours", "0.2", "--stager", "oracle",
                 "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["clients"] == 2 and s["minutes_per_scene_per_client"]["settle"] > 0 and "arousals_caused" in s
    assert len(s["sessions"]) == 2


def test_curate_writes_a_program_that_passes_check(capsys, tmp_path):
    intake = tmp_path / "intake.yaml"
    intake.write_text("client: c7\ngoals: [fall_asleep_faster, deeper_sleep]\nconsent: [audio, stimulation]\n"
                      "sensitivities: [sound_sensitive]\n")
    out = tmp_path / "program.yaml"
    assert main(["dreamscape", "curate", str(intake), "-o", str(out)]) == 0
    assert "scenes.deep.clas" in capsys.readouterr().out
    assert main(["dreamscape", "check", str(out)]) == 0
    intake.write_text("client: c7\ngoals: [deeper_sleep]\nconsnet: [audio]\n")
    assert main(["dreamscape", "curate", str(intake), "-o", str(out)]) == 65
    assert "Did you mean 'consent'?" in capsys.readouterr().err


def test_check_refuses_a_program_that_exploits_the_sleeper(capsys, tmp_path):
    """The anti-exploitation policy is part of 'dreamscape check' and of every command that loads a program."""
    import yaml

    doc = yaml.safe_load(Path(PROGRAM).read_text())
    doc["scenes"]["settle"] = {"layers": [{"sound": "rain", "level_db": -40}],
                               "cues": [{"text": "Renew your premium subscription: you can't sleep without us.",
                                         "level_db": -40, "kind": "incubation"}]}
    doc["rules"]["W"] = "settle"
    doc["on_distress"] = {"play": "rain", "level_db": -20, "for_min": 5}
    bad = tmp_path / "sell.yaml"
    bad.write_text(yaml.safe_dump(doc))
    assert main(["dreamscape", "check", str(bad)]) == 65
    out = capsys.readouterr().out
    for code in ("cue_advertises", "cue_builds_dependence", "distress_too_loud"):
        assert f"anti-exploitation policy ({code})" in out
    assert main(["dreamscape", "try", str(bad), "--clients", "1", "--hours", "0.05"]) == 65
    assert "cue_advertises" in capsys.readouterr().err


def test_clas_replay_flags_a_hypnogram_that_does_not_cover_the_recording(capsys, tmp_path, n3_edf, data_dir):
    hyp, out = tmp_path / "h.tsv", tmp_path / "pulses.tsv"
    write_hypnogram(hyp, np.full(2, 3, dtype=np.int8))  # the recording's length: nothing to say
    assert main(["dreamscape", "clas-replay", str(n3_edf), "--hypno", str(hyp), "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    want = read_events(out)
    assert len(want) >= 1
    write_hypnogram(hyp, np.full(10, 3, dtype=np.int8))  # 5 min of N3 for a 1-min recording
    assert main(["dreamscape", "clas-replay", str(n3_edf), "--hypno", str(hyp), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert ("warning: The hypnogram 'h.tsv' (10 epochs, 5 min) is longer than the recording 'n3.edf' (1 min): "
            "its last 8 epochs have no signal and are ignored.") in err
    assert read_events(out).equals(want)  # replayed all the same: the extra epochs are ignored
    write_hypnogram(hyp, np.full(2, 3, dtype=np.int8))
    x = np.loadtxt(data_dir / "yasa-samples" / "data_N3_no-spindles_30sec_100Hz.txt")
    long_edf = write_edf(tmp_path / "long.edf", [Signal("EEG Fpz-Cz", np.tile(x, 6), 100.0)])  # 3 min
    out.unlink()
    assert main(["dreamscape", "clas-replay", str(long_edf), "--hypno", str(hyp), "-o", str(out)]) == 2
    assert ("The hypnogram 'h.tsv' (2 epochs, 1 min) is shorter than the recording 'long.edf' (3 min): the last "
            "2 min are not staged.") in capsys.readouterr().err
    assert not out.exists()
