import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.core.errors import DataFormatError, NotFoundError
from nexus.dreamscape import check as check_mod
from nexus.dreamscape.check import check_file, check_text, load_program
from nexus.dreamscape.schema import Program, json_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes"
BASE = (EXAMPLES / "deep-sleep.yaml").read_text(encoding="utf-8")


def _errors(text, **kw):
    rep = check_text(text, **kw)
    assert not rep.ok
    return [str(e) for e in rep.errors]


def test_example_program_passes():
    rep = check_file(EXAMPLES / "deep-sleep.yaml")
    assert rep.ok, rep.summary()
    assert rep.program.scene_for("N3") == "deep"
    assert rep.program.wake_window_s() == (7.5 * 3600, 8 * 3600)
    assert isinstance(load_program(EXAMPLES / "deep-sleep.yaml"), Program)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("level_db: -32", "levle_db: -32",
         r"scenes\.settle\.layers\[0\]\.levle_db \(line 10\): Unknown key 'levle_db'\. Did you mean 'level_db'\?"),
        ("N3: deep", "N3: dep", r"rules\.N3 .*'dep', which is not defined\. Did you mean 'deep'\?"),
        ("level_db: -30,", "level_db: -15,", r"scenes\.deep\.clas\.level_db .*exceeds the limit -20 dBFS"),
        ("{W: settle, N1: settle", "{W: deep, N1: settle", r"CLAS runs only in N3, but scene 'deep' is used in W"),
        ("refractory_s: 2.5", "refractory_s: 1.0, clicks: 5", r"up to 100\.0 clicks/min"),
        ("max_night_h: 10", "max_night_h: 7", r"wake\.window .*beyond limits\.max_night_h 7 h"),
        ("max_level_db: -20", "max_level_db: -3", r"above the facility ceiling"),
        ("{play: rain", "{play: birdsong", r"on_distress\.play .*Unknown value 'birdsong'\. Expected one of: silence"),
        ('["06:30", "07:00"]', '["07:00", "06:30"]', r"wake window ends before it starts"),
        ("dreamscape: 1", "dreamscape: 2", r"Unsupported or missing schema version 2"),
        ("scenes:", "scenes: [", r"line 9.*Malformed YAML"),
        ("name: Rain, deeper sleep\n", "", r"name .*Missing required key"),
    ],
    ids=["unknown-key", "unknown-scene", "level", "clas-outside-n3", "rate", "night", "ceiling", "distress-sound",
         "window-order", "version", "malformed", "missing"],
)
def test_bad_programs_are_refused_with_location(old, new, expected):
    assert old in BASE
    errs = _errors(BASE.replace(old, new, 1))
    assert any(re.search(expected, e) for e in errs), errs


def test_memory_and_incubation_cues_must_match_their_stages(tmp_path):
    cue = tmp_path / "cue.wav"
    with wave.open(str(cue), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(1600)) * 3000).astype("<i2").tobytes())
    prog = yaml.safe_load(BASE)
    prog["scenes"]["settle"]["cues"] = [{"file": "cue.wav", "kind": "memory"}]
    errs = _errors(yaml.safe_dump(prog), base_dir=tmp_path)
    assert any("Memory cues play only in N2/N3" in e for e in errs)
    prog["scenes"]["settle"]["cues"] = [{"file": "cue.wav", "kind": "incubation"}]
    assert check_text(yaml.safe_dump(prog), base_dir=tmp_path).ok


@pytest.mark.parametrize("content", [None, b"not a wav file"], ids=["missing", "unreadable"])
def test_cue_files_must_exist_and_be_wav(tmp_path, content):
    if content is not None:
        (tmp_path / "cue.wav").write_bytes(content)
    prog = yaml.safe_load(BASE)
    prog["scenes"]["settle"]["cues"] = [{"file": "cue.wav"}]
    errs = _errors(yaml.safe_dump(prog), base_dir=tmp_path)
    assert any("cues[0].file" in e and ("does not exist" in e or "not a readable WAV" in e) for e in errs)


def test_text_cues_need_espeak(monkeypatch):
    prog = yaml.safe_load(BASE)
    prog["scenes"]["settle"]["cues"] = [{"text": "Walk into the old forest."}]
    monkeypatch.setattr(check_mod, "espeak_available", lambda: None)
    errs = _errors(yaml.safe_dump(prog))
    assert any("needs espeak-ng, which is not installed" in e for e in errs)
    monkeypatch.setattr(check_mod, "espeak_available", lambda: "/usr/bin/espeak-ng")
    assert check_text(yaml.safe_dump(prog)).ok


def test_a_cue_needs_exactly_one_source():
    prog = yaml.safe_load(BASE)
    prog["scenes"]["settle"]["cues"] = [{"level_db": -40}]
    assert any("exactly one of 'file'" in e for e in _errors(yaml.safe_dump(prog)))


def test_json_programs_and_json_errors(tmp_path):
    data = yaml.safe_load(BASE)
    p = tmp_path / "p.json"
    p.write_text(json.dumps(data, indent=1))
    assert check_file(p).ok
    p.write_text(json.dumps(data, indent=1)[:-3])
    rep = check_file(p)
    assert not rep.ok and "Malformed JSON" in rep.errors[0].message
    with pytest.raises(DataFormatError, match="refused"):
        load_program(p)
    with pytest.raises(NotFoundError):
        check_file(tmp_path / "nope.yaml")


def test_json_schema_is_strict():
    s = json_schema()
    assert s["additionalProperties"] is False
    assert s["$defs"]["Layer"]["additionalProperties"] is False
    assert set(s["required"]) >= {"dreamscape", "name"}


@settings(max_examples=40, deadline=None)
@given(st.floats(-90, 0, allow_nan=False))
def test_no_level_above_the_limit_is_accepted(level):
    text = BASE.replace("level_db: -32", f"level_db: {level!r}", 1)
    rep = check_text(text)
    assert rep.ok == (level <= -20.0)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_checker(text):
    rep = check_text(text)
    assert rep.ok is False or rep.program is not None
