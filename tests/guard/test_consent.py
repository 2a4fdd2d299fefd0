"""Consent scopes: grants and revocations, what a night may do, and commands refused within one step."""

from pathlib import Path

import pytest
import yaml

from nexus.core.errors import InvalidInputError
from nexus.dreamscape.schema import Program
from nexus.guard.consent import (
    change_scopes,
    command_allowed,
    filter_commands,
    may_store_glitch,
    parse_scopes,
    plan_night,
    restrict_program,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes"
FULL = ["recording", "audio", "stimulation", "dream_incubation", "psyche_monitoring"]


@pytest.fixture
def forest():
    return Program.model_validate(yaml.safe_load((EXAMPLES / "forest.yaml").read_text()))


def test_grant_needs_its_prerequisites_and_revoke_cascades():
    with pytest.raises(InvalidInputError, match="'stimulation' needs 'audio' too"):
        change_scopes(["recording"], grant=["stimulation"])
    ch = change_scopes(["recording"], grant=["audio", "stimulation"])
    assert ch.after == ["recording", "audio", "stimulation"] and ch.granted == ["audio", "stimulation"]
    ch = change_scopes(FULL, revoke=["audio"])
    assert ch.after == ["recording", "psyche_monitoring"]
    assert ch.revoked == ["audio", "stimulation", "dream_incubation"]
    assert any("'stimulation' revoked too" in n for n in ch.notes)
    with pytest.raises(InvalidInputError, match="both granted and revoked"):
        change_scopes([], grant=["recording"], revoke=["recording"])
    with pytest.raises(InvalidInputError, match="Did you mean 'stimulation'"):
        parse_scopes(["stimulaton"])


def test_full_consent_keeps_the_program(forest):
    plan = plan_night(FULL, forest)
    assert plan.run and plan.mode == "stimulation" and plan.clas and plan.incubation_cues
    assert restrict_program(forest, plan) == forest
    assert plan.reasons == []


def test_no_stimulation_removes_clas_but_keeps_sound(forest):
    plan = plan_night(["recording", "audio", "dream_incubation"], forest)
    assert plan.audio and not plan.clas
    assert "no 'stimulation' consent: CLAS clicks removed" in plan.reasons
    p = restrict_program(forest, plan)
    assert all(sc.clas is None for sc in p.scenes.values())
    assert p.scenes["incubate"].cues == forest.scenes["incubate"].cues
    assert p.scenes["settle"].layers == forest.scenes["settle"].layers


def test_no_audio_is_a_record_only_night(forest):
    plan = plan_night(["recording", "stimulation"], forest)  # stimulation without audio means nothing
    assert plan.run and plan.mode == "record_only" and not plan.audio and not plan.clas
    p = restrict_program(forest, plan)
    assert set(p.rules.values()) == {"silence"}
    assert p.wake is None and p.on_distress.play == "silence"
    assert all(not sc.layers and not sc.cues and sc.clas is None for sc in p.scenes.values())


def test_no_recording_refuses_the_night(forest):
    plan = plan_night(["audio", "stimulation"], forest)
    assert not plan.run and plan.mode == "refused" and "recording" in plan.reasons[0]


def test_psyche_glitches_stored_only_with_consent():
    assert not may_store_glitch(["recording"], "psyche")
    assert may_store_glitch(["recording"], "technical")
    assert may_store_glitch(["recording", "psyche_monitoring"], "psyche")


def test_consent_revoked_mid_night_stops_clas_at_the_next_step(forest):
    """Drive steps of commands; revoke 'stimulation' between steps 2 and 3: step 3 has no click left."""
    steps = [
        [{"kind": "scene", "name": "deep"}, {"kind": "click", "level_db": -30}],
        [{"kind": "click", "level_db": -30}],
        [{"kind": "click", "level_db": -30}, {"kind": "cue", "scene": "incubate", "index": 0}],
        [{"kind": "silence"}, {"kind": "click", "level_db": -30}],
    ]
    scopes = list(FULL)
    played = []
    for i, cmds in enumerate(steps):
        if i == 2:
            scopes = change_scopes(scopes, revoke=["stimulation"]).after
        ok, refused = filter_commands(scopes, cmds, forest)
        played.append([c["kind"] for c in ok])
        if i >= 2:
            assert [r for _, r in refused] == ["CLAS click without 'stimulation' consent"]
    assert played == [["scene", "click"], ["click"], ["cue"], ["silence"]]


@pytest.mark.parametrize(
    ("scopes", "command", "allowed"),
    [
        (FULL, {"kind": "cue", "scene": "incubate", "index": 0}, True),
        (["recording", "audio", "stimulation"], {"kind": "cue", "scene": "incubate", "index": 0}, False),
        (["recording", "audio", "dream_incubation"], {"kind": "cue", "cue_kind": "memory"}, False),
        (["recording", "audio"], {"kind": "cue"}, False),
        (["recording"], {"kind": "protect", "sound": "rain", "level_db": -40}, False),
        (["recording"], {"kind": "silence"}, True),
        ([], {"kind": "silence"}, True),
        (["recording", "audio"], {"kind": "wake"}, True),
        (FULL, {"kind": "strobe"}, False),
    ],
    ids=["incubation-ok", "incubation-no-scope", "memory-no-stim", "unknown-cue", "protect-no-audio",
         "silence", "silence-no-consent", "wake", "unknown-kind"],
)
def test_command_table(forest, scopes, command, allowed):
    assert command_allowed(scopes, command, forest).allowed is allowed
