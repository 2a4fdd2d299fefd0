"""The curator: from a client's intake to a dreamscape program, with the reason for every choice.

The curator is deliberately conservative: it only adds what a goal asks for *and* the client consented to,
softens everything for sound-sensitive clients, and passes its result through the same checks as a program
written by hand (:func:`~nexus.dreamscape.check.check_text`), so a curated program is never played unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from nexus.core.checks import check_option
from nexus.core.errors import InvalidInputError, SafetyError
from nexus.dreamscape.check import check_text, espeak_available
from nexus.dreamscape.schema import GOALS, PROTECTIVE_SOUNDS, SOUNDS, Program

CONSENT_SCOPES: tuple[str, ...] = ("audio", "stimulation", "dream_incubation", "memory_cues", "smart_wake")
"""What a client may consent to: any sound at all, CLAS, dream-incubation prompts, memory cues, smart wake."""

SENSITIVITIES: tuple[str, ...] = ("sound_sensitive", "tinnitus", "nightmares", "light_sleeper")
"""Sensitivities the curator adapts to."""


@dataclass(frozen=True)
class Intake:
    """A client's intake.

    Attributes
    ----------
    client : str
        Client identifier.
    goals : list of str
        From :data:`~nexus.dreamscape.schema.GOALS`.
    consent : list of str
        Consent scopes from :data:`CONSENT_SCOPES`; without ``audio`` nothing is played.
    sensitivities : list of str
        From :data:`SENSITIVITIES`.
    dream_theme : str, optional
        What the client would like to dream about (for ``dream_theme``).
    dream_cue_file : str, optional
        A recorded incubation prompt (WAV), used when espeak-ng is not installed.
    preferred_sounds : list of str
        Soundscape layers the client likes, from :data:`~nexus.dreamscape.schema.SOUNDS`.
    lights_out : str
        Usual lights-out, ``HH:MM``.
    wake_window : (str, str), optional
        Wake window ``(HH:MM, HH:MM)`` for smart wake.
    """

    client: str
    goals: list[str] = field(default_factory=list)
    consent: list[str] = field(default_factory=lambda: ["audio"])
    sensitivities: list[str] = field(default_factory=list)
    dream_theme: str | None = None
    dream_cue_file: str | None = None
    preferred_sounds: list[str] = field(default_factory=list)
    lights_out: str = "23:00"
    wake_window: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        for g in self.goals:
            check_option("goal", g, GOALS)
        for c in self.consent:
            check_option("consent scope", c, CONSENT_SCOPES)
        for s in self.sensitivities:
            check_option("sensitivity", s, SENSITIVITIES)
        for s in self.preferred_sounds:
            check_option("sound", s, SOUNDS)


@dataclass(frozen=True)
class Reason:
    """One choice of the curator and why it was made (or not)."""

    choice: str
    why: str


@dataclass
class CuratedProgram:
    """A checked program with the curator's reasons."""

    program: Program
    reasons: list[Reason]

    def to_yaml(self) -> str:
        """The program as YAML, with the reasons as comments at the top."""
        head = "".join(f"# {r.choice}: {r.why}\n" for r in self.reasons)
        body = yaml.safe_dump(self.program.model_dump(mode="json", exclude_none=True), sort_keys=False,
                              allow_unicode=True)
        return head + body


def curate(intake: Intake) -> CuratedProgram:
    """Build a program from an intake; every choice comes with its reason.

    Raises
    ------
    SafetyError
        When the client did not consent to audio at all (a natural night needs no program).
    InvalidInputError
        When the result would not pass the program checks (e.g. a wake window outside the night).
    """
    if "audio" not in intake.consent:
        raise SafetyError(f"Client '{intake.client}' has not consented to audio: no dreamscape can be built. "
                          "Run a natural (record-only) night instead.")
    why: list[Reason] = []
    sensitive = bool({"sound_sensitive", "tinnitus"} & set(intake.sensitivities))
    soften = 8.0 if sensitive else 0.0
    max_level = -30.0 if sensitive else -20.0
    why.append(Reason("limits.max_level_db", f"{max_level:g} dBFS: "
                      + ("lowered for a sound-sensitive client." if sensitive else "the standard ceiling.")))
    scenes: dict[str, Any] = {}
    rules: dict[str, str] = {"W": "silence", "N1": "silence", "N2": "silence", "N3": "silence", "R": "silence"}

    # settling soundscape
    liked = [s for s in intake.preferred_sounds if s in PROTECTIVE_SOUNDS]
    bed = liked[0] if liked else ("rain" if "fall_asleep_faster" in intake.goals else "brown_noise")
    fade = 30 if "fall_asleep_faster" in intake.goals else 20
    scenes["settle"] = {"layers": [{"sound": bed, "level_db": -32.0 - soften,
                                    "envelope": {"fade_in_s": 30.0, "swell_db": 3.0, "swell_period_s": 30.0}}],
                        "fade_out_after_min": fade}
    rules["W"] = rules["N1"] = "settle"
    why.append(Reason("scenes.settle", f"{bed} at {-32 - soften:g} dBFS fading after {fade} min: "
                      + ("a steady masking sound shortens sleep onset" if "fall_asleep_faster" in intake.goals
                         else "a quiet bed while falling asleep")
                      + ("; chosen from the client's preferred sounds" if liked else "") + "."))

    # dream incubation at sleep onset
    if "dream_theme" in intake.goals:
        if "dream_incubation" not in intake.consent:
            why.append(Reason("dream incubation", "not added: the client did not consent to dream-incubation prompts."))
        elif not intake.dream_theme and not intake.dream_cue_file:
            why.append(Reason("dream incubation", "not added: no dream theme or recorded prompt given."))
        elif "nightmares" in intake.sensitivities:
            why.append(Reason("dream incubation", "not added: prompts at sleep onset are withheld from a "
                              "nightmare-prone client until a clinician reviews the theme."))
        else:
            cue: dict[str, Any] = {"kind": "incubation", "level_db": -38.0 - soften, "every_min": 4.0, "max": 5}
            if espeak_available() and intake.dream_theme:
                cue["text"] = f"Think of {intake.dream_theme}."
                src = "spoken by espeak-ng"
            elif intake.dream_cue_file:
                cue["file"] = intake.dream_cue_file
                src = "from the client's recorded prompt"
            else:
                cue = {}
                src = ""
            if cue:
                scenes["incubate"] = {"layers": [{"sound": bed, "level_db": -40.0 - soften}], "cues": [cue]}
                rules["N1"] = "incubate"
                why.append(Reason("scenes.incubate", f"prompt about '{intake.dream_theme}' in N1 ({src}), every "
                                  "4 min, at most 5: targeted dream incubation at sleep onset."))
            else:
                why.append(Reason("dream incubation", "not added: espeak-ng is not installed and no recorded prompt "
                                  "(dream_cue_file) was given."))

    # CLAS for deeper sleep
    if "deeper_sleep" in intake.goals:
        if "stimulation" not in intake.consent:
            why.append(Reason("CLAS", "not added: the client did not consent to closed-loop stimulation."))
        else:
            clas = {"target_phase_deg": 0.0, "clicks": 1 if sensitive else 2, "click_ms": 50.0,
                    "level_db": -30.0 - soften, "refractory_s": 4.0 if sensitive else 2.5, "max_per_night": 600}
            scenes["deep"] = {"clas": clas}
            rules["N3"] = "deep"
            why.append(Reason("scenes.deep.clas", f"{clas['clicks']} click(s) on the up-state in N3, refractory "
                              f"{clas['refractory_s']:g} s: closed-loop stimulation enlarges slow oscillations "
                              "(Ngo et al. 2013)" + ("; one softer click for a sound-sensitive client." if sensitive
                                                      else ".")))

    # nightmares: quiet REM, protective distress response
    distress: dict[str, Any] = {"play": "silence", "for_min": 5.0}
    arousal_s = 60.0
    if "fewer_nightmares" in intake.goals or "nightmares" in intake.sensitivities:
        distress = {"play": "silence" if sensitive else "brown_noise", "level_db": -42.0, "for_min": 5.0}
        arousal_s = 120.0
        why.append(Reason("on_distress", f"{distress['play']} for 5 min on distress, REM kept silent and 120 s of "
                          "quiet after arousals: protective only, nothing that could feed a nightmare."))
    else:
        why.append(Reason("on_distress", "silence for 5 min: the default protective response."))
    if "light_sleeper" in intake.sensitivities:
        arousal_s = max(arousal_s, 180.0)
        why.append(Reason("on_arousal", "180 s of quiet after an arousal for a light sleeper."))

    wake = None
    if intake.wake_window is not None:
        if "smart_wake" in intake.consent:
            wake = {"window": list(intake.wake_window),
                    "ramp": {"sound": "birdsong", "from_db": -50.0, "to_db": -25.0 - soften, "over_min": 10.0}}
            why.append(Reason("wake", f"smart wake in {intake.wake_window[0]}-{intake.wake_window[1]} at the first "
                              "light sleep, with a 10-min birdsong ramp."))
        else:
            why.append(Reason("wake", "not added: the client did not consent to smart wake."))

    data: dict[str, Any] = {
        "dreamscape": 1, "name": f"Curated for {intake.client}", "lights_out": intake.lights_out,
        "client_goals": list(intake.goals), "scenes": scenes, "rules": rules,
        "on_arousal": {"silence_for_s": arousal_s}, "on_distress": distress,
        "limits": {"max_level_db": max_level, "max_stim_per_min": 20.0 if sensitive else 40.0, "max_night_h": 10.0},
    }
    if wake:
        data["wake"] = wake
    report = check_text(yaml.safe_dump(data, sort_keys=False), source=f"curated program for {intake.client}")
    if not report.ok or report.program is None:
        raise InvalidInputError("The curated program fails its checks: " + "; ".join(str(e) for e in report.errors))
    return CuratedProgram(report.program, why)
