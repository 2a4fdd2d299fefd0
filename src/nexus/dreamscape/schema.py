"""The dreamscape program schema (version 1): pydantic models, strict, with a JSON Schema export.

A program is what a client's night plays. It is declarative: *scenes* (soundscape layers with volume envelopes,
cues, closed-loop stimulation), *rules* (which scene plays in which stage), quiet rules (on arousal, on distress),
a smart-wake window and hard *limits*. Every level is in dBFS (decibels relative to the output's full scale,
so always negative); the facility calibrates dBFS to dB SPL per bed.

Structure (YAML or JSON)::

    dreamscape: 1
    name: Forest, deeper sleep
    lights_out: "23:00"
    client_goals: [fall_asleep_faster, deeper_sleep]
    scenes:
      settle:   {layers: [{sound: rain, level_db: -32, envelope: {fade_in_s: 30, fade_out_after_min: 30}}]}
      incubate: {cues: [{text: "Walk into the old forest.", level_db: -38, every_min: 4, max: 5}]}
      deep:     {clas: {target_phase_deg: 0, clicks: 2, click_ms: 50, level_db: -30, refractory_s: 2.5}}
    rules: {W: settle, N1: incubate, N2: silence, N3: deep, R: silence}
    on_arousal: {silence_for_s: 60}
    on_distress: {play: rain, level_db: -36, for_min: 5}
    wake: {window: ["06:30", "07:00"], ramp: {sound: birdsong, from_db: -50, to_db: -25, over_min: 10}}
    limits: {max_level_db: -20, max_stim_per_min: 20, max_night_h: 10}

Unknown keys are refused with a "did you mean" hint. Cross-field consistency (rules that point at missing
scenes, CLAS outside N3, levels above the limits, …) is checked by :mod:`nexus.dreamscape.check`.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from nexus.sinks.limiter import HARD_CEILING_DBFS

SCHEMA_VERSION = 1
"""The program schema version this code reads (the ``dreamscape:`` key)."""

SYSTEM_MAX_LEVEL_DB = HARD_CEILING_DBFS
"""The facility's absolute output ceiling in dBFS: no program may set a higher limit, no sink plays above it."""

SYSTEM_MAX_STIM_PER_MIN = 60.0
"""The facility's absolute ceiling on stimuli (clicks, cues) per minute."""

SYSTEM_MAX_NIGHT_H = 14.0
"""The longest night a program may run, in hours."""

SILENCE = "silence"
"""The built-in scene that plays nothing."""

SOUNDS: tuple[str, ...] = (
    "pink_noise", "brown_noise", "white_noise", "rain", "ocean", "wind", "forest", "soft_tones", "birdsong",
)
"""Soundscape layers the renderer can synthesise."""

PROTECTIVE_SOUNDS: tuple[str, ...] = ("pink_noise", "brown_noise", "rain", "ocean", "wind")
"""Steady, soothing sounds — the only ones a distress response may play."""

GOALS: tuple[str, ...] = ("fall_asleep_faster", "deeper_sleep", "dream_theme", "fewer_nightmares")
"""Client goals the curator understands."""

StageLabel = Literal["W", "N1", "N2", "N3", "R"]
SoundName = Literal[
    "pink_noise", "brown_noise", "white_noise", "rain", "ocean", "wind", "forest", "soft_tones", "birdsong"
]
DistressResponse = Literal["silence", "pink_noise", "brown_noise", "rain", "ocean", "wind"]
Level = Annotated[float, Field(le=0, ge=-90, description="Level in dBFS (0 = full scale).")]

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _clock_minutes(value: str) -> int:
    m = _CLOCK.match(value)
    if not m:
        raise ValueError(f"expected a clock time 'HH:MM' (24 h), got '{value}'")
    return int(m.group(1)) * 60 + int(m.group(2))


class _Strict(BaseModel):
    """Base of every program model: unknown keys are refused with a suggestion."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
            for key in data:
                if key not in known:
                    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
                    hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join(sorted(known))}."
                    raise PydanticCustomError("unknown_key", "Unknown key '{key}'.{hint}", {"key": key, "hint": hint})
        return data


class Envelope(_Strict):
    """Volume envelope of a layer, relative to its level."""

    fade_in_s: float = Field(10.0, ge=0, le=3600, description="Fade-in when the scene starts, in s.")
    fade_out_s: float = Field(10.0, ge=0, le=3600, description="Fade-out when the scene ends, in s.")
    fade_out_after_min: float | None = Field(
        None, gt=0, le=600, description="Fade the layer out this many minutes into the scene (a story that fades)."
    )
    swell_db: float = Field(0.0, ge=0, le=12, description="Depth of a slow swell of the level, in dB.")
    swell_period_s: float = Field(20.0, gt=1, le=600, description="Period of the swell, in s.")


class Layer(_Strict):
    """One soundscape layer."""

    sound: SoundName
    level_db: Level
    envelope: Envelope = Field(default_factory=Envelope)


class Cue(_Strict):
    """A spoken or recorded cue: dream incubation at sleep onset, or a memory cue in N2/N3."""

    kind: Literal["incubation", "memory"] = "incubation"
    file: str | None = Field(None, description="WAV file, relative to the program file.")
    text: str | None = Field(None, min_length=1, max_length=500, description="Text spoken through espeak-ng.")
    voice: Literal["espeak"] = "espeak"
    level_db: Level = -38.0
    every_min: float = Field(4.0, gt=0, le=240, description="Interval between repetitions, in minutes.")
    max: int = Field(5, ge=1, le=200, description="Most repetitions per night.")
    start_after_min: float = Field(0.0, ge=0, le=240, description="Delay after the scene starts, in minutes.")

    @model_validator(mode="after")
    def _one_source(self) -> Cue:
        if (self.file is None) == (self.text is None):
            raise ValueError("a cue needs exactly one of 'file' (a WAV file) or 'text' (spoken by espeak-ng)")
        return self


class Clas(_Strict):
    """Closed-loop auditory stimulation (after Ngo et al. 2013): pink-noise clicks phase-locked to slow waves."""

    target_phase_deg: float = Field(0.0, ge=-180, le=180, description="Target phase, 0 = up-state peak, in °.")
    clicks: int = Field(2, ge=1, le=5, description="Clicks per train, each on a successive up-state.")
    click_ms: float = Field(50.0, ge=5, le=200, description="Click length in ms.")
    level_db: Level = -30.0
    refractory_s: float = Field(2.5, ge=1.0, le=60, description="Pause after a train, in s.")
    max_per_night: int = Field(600, ge=1, le=5000, description="Most clicks per night.")
    min_amplitude_uv: float = Field(30.0, ge=5, le=500, description="Least predicted slow-wave envelope, µV.")
    max_amplitude_uv: float = Field(
        300.0, ge=50, le=1000,
        description="Most predicted slow-wave envelope, µV: above it the EEG is an artefact, not a slow wave "
        "(no click then, nor for 3 s after).",
    )
    min_down_state_uv: float = Field(
        35.0, ge=0, le=300,
        description="Least depth of the down-state (trough of the predicted 0.5–2 Hz wave) in the 1.5 s before "
        "the click, µV.",
    )
    relative_amplitude: float = Field(
        1.0, ge=0, le=5, description="Least envelope relative to its 60-s running mean (adapts to the sleeper)."
    )
    min_snr: float = Field(
        0.78, ge=0, le=2, description="Least share of the EEG the slow wave must explain (see PhaseTrack.snr)."
    )
    latency_ms: float = Field(50.0, ge=0, le=250, description="Expected sample-to-sound latency if not measured.")
    min_n3_prob: float = Field(0.6, ge=0, le=1, description="Least N3 probability of the live stager.")


class Scene(_Strict):
    """What plays in a stage: layers, cues and optional CLAS."""

    layers: list[Layer] = Field(default_factory=list)
    cues: list[Cue] = Field(default_factory=list)
    clas: Clas | None = None
    fade_out_after_min: float | None = Field(
        None, gt=0, le=600, description="Fade every layer out this many minutes into the scene."
    )


class OnArousal(_Strict):
    """Quiet rule on an arousal: silence at once, for a while."""

    silence_for_s: float = Field(60.0, ge=0, le=3600)


class OnDistress(_Strict):
    """Protective response to distress (nightmare, arousal storm): silence, or a soothing sound."""

    play: DistressResponse = "silence"
    level_db: Level = -40.0
    for_min: float = Field(5.0, gt=0, le=60)


class Ramp(_Strict):
    """The wake ramp: a sound rising over a few minutes."""

    sound: SoundName = "birdsong"
    from_db: Level = -50.0
    to_db: Level = -25.0
    over_min: float = Field(10.0, gt=0, le=60)


class Wake(_Strict):
    """Smart wake: the first light-sleep (W/N1/N2) moment inside the window, else the window's end."""

    window: tuple[str, str]
    ramp: Ramp = Field(default_factory=Ramp)

    @field_validator("window")
    @classmethod
    def _clock(cls, v: tuple[str, str]) -> tuple[str, str]:
        for x in v:
            _clock_minutes(x)
        return v


class Limits(_Strict):
    """Hard limits of the program (the facility's ceilings above them are absolute)."""

    max_level_db: Level = -20.0
    max_stim_per_min: float = Field(20.0, gt=0, le=1000)
    max_night_h: float = Field(10.0, gt=0, le=100)


class Program(_Strict):
    """A dreamscape program (schema version 1)."""

    dreamscape: Literal[1] = Field(description="Schema version; this code reads version 1.")
    name: str = Field(min_length=1, max_length=200)
    lights_out: str = Field("23:00", description="Clock time the night starts ('HH:MM').")
    client_goals: list[Literal["fall_asleep_faster", "deeper_sleep", "dream_theme", "fewer_nightmares"]] = Field(
        default_factory=list
    )
    scenes: dict[str, Scene] = Field(default_factory=dict)
    rules: dict[StageLabel, str] = Field(default_factory=dict, description="Stage → scene name (or 'silence').")
    on_arousal: OnArousal = Field(default_factory=OnArousal)
    on_distress: OnDistress = Field(default_factory=OnDistress)
    wake: Wake | None = None
    limits: Limits = Field(default_factory=Limits)

    @field_validator("lights_out")
    @classmethod
    def _lights_out(cls, v: str) -> str:
        _clock_minutes(v)
        return v

    def scene_for(self, stage_label: str) -> str:
        """Name of the scene that plays in a stage (``'silence'`` when no rule names one)."""
        return self.rules.get(stage_label, SILENCE)  # type: ignore[call-overload]

    def wake_window_s(self) -> tuple[float, float] | None:
        """The wake window in seconds after lights-out, or ``None`` when the program has no wake."""
        if self.wake is None:
            return None
        lo = _clock_minutes(self.lights_out)
        a, b = ((_clock_minutes(x) - lo) % (24 * 60) for x in self.wake.window)
        return a * 60.0, b * 60.0


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Program` (what ``nexus dreamscape schema`` prints)."""
    schema = Program.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://bedtime-nexus.org/schemas/dreamscape-1.json"
    return schema
