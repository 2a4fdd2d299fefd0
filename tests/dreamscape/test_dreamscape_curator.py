import pytest

from nexus.core.errors import InvalidInputError, SafetyError
from nexus.dreamscape import curator as cur
from nexus.dreamscape.check import check_text
from nexus.dreamscape.curator import Intake, curate

ALL = ["audio", "stimulation", "dream_incubation", "memory_cues", "smart_wake"]


def test_full_intake_builds_a_checked_program_with_reasons(monkeypatch):
    monkeypatch.setattr(cur, "espeak_available", lambda: "/usr/bin/espeak-ng")
    monkeypatch.setattr("nexus.dreamscape.check.espeak_available", lambda: "/usr/bin/espeak-ng")
    c = curate(Intake("c1", goals=["fall_asleep_faster", "deeper_sleep", "dream_theme"], consent=ALL,
                      dream_theme="a quiet forest", wake_window=("06:30", "07:00")))
    p = c.program
    assert p.rules == {"W": "settle", "N1": "incubate", "N2": "silence", "N3": "deep", "R": "silence"}
    assert p.scenes["deep"].clas.clicks == 2
    assert "quiet forest" in p.scenes["incubate"].cues[0].text
    assert p.wake is not None
    choices = {r.choice for r in c.reasons}
    assert {"scenes.settle", "scenes.incubate", "scenes.deep.clas", "wake"} <= choices
    assert check_text(c.to_yaml()).ok  # the YAML it writes is itself a valid program


def test_consent_is_respected():
    with pytest.raises(SafetyError, match="not consented to audio"):
        curate(Intake("c2", goals=["deeper_sleep"], consent=[]))
    c = curate(Intake("c3", goals=["deeper_sleep", "dream_theme"], consent=["audio"], dream_theme="sea",
                      wake_window=("06:30", "07:00")))
    assert "deep" not in c.program.scenes and "incubate" not in c.program.scenes and c.program.wake is None
    why = " ".join(r.why for r in c.reasons)
    assert "did not consent to closed-loop stimulation" in why
    assert "did not consent to dream-incubation" in why
    assert "did not consent to smart wake" in why


def test_sensitive_and_nightmare_prone_clients_get_gentler_programs():
    base = curate(Intake("a", goals=["deeper_sleep", "fewer_nightmares"], consent=ALL))
    soft = curate(Intake("b", goals=["deeper_sleep", "fewer_nightmares"], consent=ALL,
                         sensitivities=["sound_sensitive", "nightmares"], dream_theme="x"))
    assert soft.program.limits.max_level_db < base.program.limits.max_level_db
    assert soft.program.scenes["settle"].layers[0].level_db < base.program.scenes["settle"].layers[0].level_db
    assert soft.program.scenes["deep"].clas.clicks == 1
    assert soft.program.on_distress.play == "silence"
    assert base.program.on_distress.play == "brown_noise"
    assert base.program.on_arousal.silence_for_s == 120


def test_unknown_intake_values_are_refused():
    with pytest.raises(InvalidInputError, match="Did you mean 'deeper_sleep'"):
        Intake("c", goals=["deper_sleep"])
    with pytest.raises(InvalidInputError, match="wake window ends"):
        curate(Intake("c", consent=["audio", "smart_wake"], wake_window=("07:00", "06:00")))
