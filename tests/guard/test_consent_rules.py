"""Consent rules pinned one by one: cue kinds as a controller names them, what a refused night allows, what
incubation needs, the night's mode and its audit form, and unknown intake items."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from nexus.core.errors import InvalidInputError
from nexus.dreamscape.schema import Program
from nexus.guard.consent import change_scopes, command_allowed, plan_night, restrict_program, scopes_from_intake

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes"
NO_STIM = ["recording", "audio", "dream_incubation"]
NO_INCUB = ["recording", "audio", "stimulation"]


@pytest.fixture
def forest():
    return Program.model_validate(yaml.safe_load((EXAMPLES / "forest.yaml").read_text()))


@pytest.mark.parametrize(
    ("params", "scopes", "allowed", "reason"),
    [
        ({"kind": "memory"}, NO_STIM, False, "memory cue without 'stimulation' consent"),
        ({"cue_kind": "memory"}, NO_STIM, False, "memory cue without 'stimulation' consent"),
        ({"kind": "memory"}, NO_INCUB, True, "'cue' is covered by the client's consent"),
        ({"kind": "incubation"}, NO_INCUB, False, "incubation cue without 'dream_incubation' consent"),
        ({"kind": "incubation"}, NO_STIM, True, "'cue' is covered by the client's consent"),
        ({}, NO_STIM, False, "unknown cue without 'stimulation' consent"),
    ],
    ids=["memory-kind", "memory-cue_kind", "memory-ok", "incubation-kind", "incubation-ok", "unknown"],
)
def test_cue_kind_from_the_command(params, scopes, allowed, reason):
    v = command_allowed(scopes, SimpleNamespace(kind="cue", params=params))
    assert (v.allowed, v.reason) == (allowed, reason)


def test_cue_kind_from_the_program_scene(forest):
    scene = next(name for name, sc in forest.scenes.items() if sc.cues)
    cmd = SimpleNamespace(kind="cue", params={"scene": scene, "index": 0})  # the forest's spoken incubation cue
    assert command_allowed(NO_STIM, cmd, forest).allowed
    v = command_allowed(NO_INCUB, cmd, forest)
    assert (v.allowed, v.reason) == (False, "incubation cue without 'dream_incubation' consent")
    nowhere = SimpleNamespace(kind="cue", params={"index": 0})  # no scene: not one of the program's cues
    assert command_allowed(NO_STIM, nowhere, forest).reason == "unknown cue without 'stimulation' consent"


def test_a_refused_night_allows_nothing():
    plan = plan_night(["audio", "stimulation"])  # no recording: audio and stimulation do not hold
    assert (plan.run, plan.mode, plan.audio, plan.clas, plan.incubation_cues, plan.memory_cues,
            plan.store_psyche) == (False, "refused", False, False, False, False, False)


def test_incubation_needs_audio_and_its_own_consent():
    assert not plan_night(["recording", "dream_incubation"]).incubation_cues  # no audio
    assert not plan_night(["recording", "audio"]).incubation_cues
    assert plan_night(["recording", "audio", "dream_incubation"]).incubation_cues


def test_modes_and_the_audit_form(forest):
    assert plan_night(["recording", "audio"]).mode == "stimulation"
    assert plan_night(["recording"]).mode == "record_only"
    # a program of CLAS alone, without stimulation consent, plays nothing: a natural night
    doc = forest.model_dump(mode="json", exclude_none=True)
    clas_only = {name: {**sc, "layers": [], "cues": []} for name, sc in doc["scenes"].items()}
    only = Program.model_validate({**{k: v for k, v in doc.items() if k != "wake"}, "scenes": clas_only})
    assert plan_night(["recording", "audio"], only).mode == "record_only"
    assert plan_night(["recording", "audio", "stimulation"], only).mode == "stimulation"
    d = plan_night(["recording", "psyche_monitoring"]).to_dict()
    assert d["store_psyche"] is True and set(d) == {"run", "mode", "audio", "clas", "incubation_cues",
                                                   "memory_cues", "store_psyche", "reasons"}


def test_record_only_program_silences_distress_and_keeps_its_other_settings(forest):
    doc = forest.model_dump(mode="json", exclude_none=True)
    assert "on_distress" in doc
    out = restrict_program(forest, plan_night(["recording"])).model_dump(mode="json", exclude_none=True)
    assert out["on_distress"]["play"] == "silence"
    for key, value in doc["on_distress"].items():
        if key != "play":
            assert out["on_distress"][key] == value


def test_unknown_intake_items_grant_nothing():
    assert scopes_from_intake(["audio", "telepathy"]) == ["recording", "audio"]


def _cue_program(*kinds):
    """A program whose only sounds are spoken cues of ``kinds`` in its N2 scene (no layers, no CLAS, no wake)."""
    cues = [{"kind": k, "text": f"{k} cue {i}", "every_min": 5} for i, k in enumerate(kinds)]
    return Program.model_validate({"dreamscape": 1, "name": "cues only", "scenes": {"n2": {"cues": cues}},
                                   "rules": {"N2": "n2"}})


def test_a_program_of_memory_cues_only_is_a_stimulation_night_with_stimulation_consent():
    prog = _cue_program("memory")
    assert plan_night(NO_INCUB, prog).mode == "stimulation"  # its memory cues may play
    plan = plan_night(NO_STIM, prog)
    assert plan.mode == "record_only" and not plan.memory_cues  # nothing it has may play
    assert "no 'stimulation' consent: memory cues removed" in plan.reasons
    assert plan_night(NO_STIM, _cue_program("incubation")).mode == "stimulation"


def test_restriction_keeps_the_cues_of_the_consented_kind_only():
    prog = _cue_program("memory", "incubation", "memory")
    kept = {tuple(scopes): [c.kind for c in restrict_program(prog, plan_night(scopes, prog)).scenes["n2"].cues]
            for scopes in (NO_INCUB, NO_STIM, ["recording", "audio"], ["recording", "audio", "stimulation",
                                                                        "dream_incubation"])}
    assert list(kept.values()) == [["memory", "memory"], ["incubation"], [], ["memory", "incubation", "memory"]]


def test_a_grant_without_its_needs_is_refused_with_the_grant_that_works():
    with pytest.raises(InvalidInputError, match=r"^Consent 'stimulation' needs 'audio' too: grant them together "
                                                r"\(--grant audio,stimulation\)\.$"):
        change_scopes(["recording"], grant=["stimulation"])


def test_a_program_whose_only_sound_is_its_wake_is_a_sound_night_with_audio():
    doc = {"dreamscape": 1, "name": "wake only", "scenes": {}, "rules": {},
           "wake": {"window": ["06:30", "07:00"], "ramp": {"sound": "birdsong", "from_db": -50, "to_db": -25}}}
    prog = Program.model_validate(doc)
    assert plan_night(["recording", "audio"], prog).mode == "stimulation"
    plan = plan_night(["recording"], prog)
    assert plan.mode == "record_only" and plan.reasons[0] == "no 'audio' consent: record-only night, no sound at all"
    assert restrict_program(prog, plan).wake is None
    rain = {"s": {"layers": [{"sound": "rain", "level_db": -35}]}}
    no_wake = Program.model_validate({**doc, "wake": None, "scenes": rain, "rules": {"W": "s"}})
    assert restrict_program(no_wake, plan_night(["recording"], no_wake)).scenes["s"].layers == []  # nothing to drop


def test_a_cue_command_is_judged_by_the_kind_of_the_cue_it_names():
    prog = _cue_program("memory", "incubation")
    first, second = ({"kind": "cue", "params": {"scene": "n2", "index": i}} for i in (0, 1))
    assert command_allowed(NO_STIM, first, prog).reason == "memory cue without 'stimulation' consent"
    assert command_allowed(NO_STIM, second, prog).allowed
    assert command_allowed(NO_INCUB, first, prog).allowed
    assert not command_allowed(NO_INCUB, second, prog).allowed


@pytest.mark.parametrize(
    ("scopes", "command", "reason"),
    [
        (NO_STIM, {"kind": "click", "level_db": -30}, "CLAS click without 'stimulation' consent"),
        (["recording", "audio"], {"kind": "cue"}, "unknown cue without 'stimulation, dream_incubation' consent"),
        (["recording", "stimulation"], {"kind": "click"}, "'click' plays sound and the client has no 'audio' consent"),
        ([*NO_INCUB, "dream_incubation"], {"kind": "strobe"},
         "unknown command kind 'strobe': refused until the guard knows it"),
    ],
    ids=["click-no-stimulation", "cue-missing-two-scopes", "click-no-audio", "unknown-kind"],
)
def test_each_refusal_is_false_and_names_what_is_missing(scopes, command, reason):
    """A refusal is ``allowed is False`` (the verdict is a bool: a None is refused by today's callers, which test its
    truth, but not by one that compares or serialises it) and its reason names the missing consent or the kind."""
    v = command_allowed(scopes, command)
    assert v.allowed is False
    assert v.reason == reason
