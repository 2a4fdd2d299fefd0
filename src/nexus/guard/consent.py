"""Consent scopes per client, and what a night may do with them — pure functions, no database.

Scopes (revocable at any time; a revocation takes effect from the next step of a running session):

================== ==================================================================== ===========
scope              allows                                                               needs
================== ==================================================================== ===========
recording          live signals are read and the night is recorded (no night without)   —
audio              any sound: soundscapes, the wake ramp, a soothing distress response   recording
stimulation        closed-loop auditory stimulation (CLAS clicks) and memory cues       audio
dream_incubation   dream-incubation cues at sleep onset                                 audio
psyche_monitoring  distress / nightmare glitches are stored and shown to staff          recording
research           research use and research exports of the night                       recording
clinician_sharing  a clinician may see the nights and the journal, through the client   —
================== ==================================================================== ===========

``opt_out_natural_nights`` is a preference kept with the scopes: the client asks not to be given a natural
(record-only) night every seventh night.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

from nexus.core.checks import did_you_mean
from nexus.core.errors import InvalidInputError
from nexus.dreamscape.schema import SILENCE, Program


class Scope(StrEnum):
    """A consent scope (or the one preference kept with them)."""

    RECORDING = "recording"
    AUDIO = "audio"
    STIMULATION = "stimulation"
    DREAM_INCUBATION = "dream_incubation"
    PSYCHE_MONITORING = "psyche_monitoring"
    RESEARCH = "research"
    CLINICIAN_SHARING = "clinician_sharing"
    OPT_OUT_NATURAL_NIGHTS = "opt_out_natural_nights"


NEEDS: dict[Scope, tuple[Scope, ...]] = {
    Scope.AUDIO: (Scope.RECORDING,),
    Scope.STIMULATION: (Scope.AUDIO,),
    Scope.DREAM_INCUBATION: (Scope.AUDIO,),
    Scope.PSYCHE_MONITORING: (Scope.RECORDING,),
    Scope.RESEARCH: (Scope.RECORDING,),
}
"""Scopes that only make sense with others (granting one without them is refused)."""


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Scopes from names (comma lists allowed), with a suggestion for a typo."""
    out: list[Scope] = []
    names = [s.value for s in Scope]
    for raw in values:
        for v in str(raw).split(","):
            v = v.strip().replace("-", "_")
            if not v:
                continue
            try:
                sc = Scope(v)
            except ValueError:
                raise InvalidInputError(
                    f"Unknown consent scope '{v}'.{did_you_mean(v, names)} Scopes: {', '.join(names)}."
                ) from None
            if sc not in out:
                out.append(sc)
    return out


def _closure_down(scopes: set[Scope]) -> set[Scope]:
    """Drop scopes whose needs are missing, until stable (revoking audio drops stimulation too)."""
    out = set(scopes)
    changed = True
    while changed:
        changed = False
        for sc in list(out):
            if any(n not in out for n in NEEDS.get(sc, ())):
                out.discard(sc)
                changed = True
    return out


INTAKE_SCOPES: dict[str, tuple[Scope, ...]] = {
    "audio": (Scope.AUDIO,),
    "stimulation": (Scope.STIMULATION,),
    "memory_cues": (Scope.STIMULATION,),
    "dream_incubation": (Scope.DREAM_INCUBATION,),
    "smart_wake": (Scope.AUDIO,),
}
"""What each consent item of a dreamscape intake (:data:`nexus.dreamscape.curator.CONSENT_SCOPES`) grants."""


def scopes_from_intake(consent: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """Consent scopes of a client enrolled from an intake, in the order of :class:`Scope`.

    ``recording`` (a night needs it), what the intake's consent items grant, and ``extra`` scopes.
    """
    got = {Scope.RECORDING, *parse_scopes(extra)}
    for c in consent:
        got.update(INTAKE_SCOPES.get(str(c), ()))
    return [s.value for s in Scope if s in _closure_down(got)]


@dataclass(frozen=True)
class ConsentChange:
    """Result of :func:`change_scopes`: the new scopes and what changed, with notes."""

    before: list[str]
    after: list[str]
    granted: list[str]
    revoked: list[str]
    notes: list[str]


def change_scopes(current: Iterable[str], grant: Iterable[str] = (), revoke: Iterable[str] = ()) -> ConsentChange:
    """Apply grants and revocations; a grant whose needs are missing is refused, a revocation cascades.

    Raises
    ------
    InvalidInputError
        A scope is unknown, granted and revoked at once, or granted without what it needs.
    """
    before = set(parse_scopes(current))
    g, r = set(parse_scopes(grant)), set(parse_scopes(revoke))
    both = g & r
    if both:
        raise InvalidInputError(f"Scope(s) {', '.join(sorted(both))} both granted and revoked: give each once.")
    after = (before | g) - r
    for sc in sorted(g):
        missing = [n.value for n in NEEDS.get(sc, ()) if n not in after]
        if missing:
            raise InvalidInputError(
                f"Consent '{sc.value}' needs '{', '.join(missing)}' too: grant them together "
                f"(--grant {','.join([*missing, sc.value])})."
            )
    kept = _closure_down(after)
    notes = [f"'{sc.value}' revoked too: it needs a scope that was revoked" for sc in sorted(after - kept)]
    order = [s for s in Scope]
    return ConsentChange(
        before=[s.value for s in order if s in before],
        after=[s.value for s in order if s in kept],
        granted=[s.value for s in order if s in kept - before],
        revoked=[s.value for s in order if s in before - kept],
        notes=notes,
    )


@dataclass(frozen=True)
class NightPlan:
    """What a night may do under a client's consent, and why.

    Attributes
    ----------
    run : bool
        Whether a session may run at all (needs ``recording``).
    mode : str
        ``"stimulation"`` (the program as written, less what consent removes), ``"record_only"`` (a natural
        night: no sound at all) or ``"refused"``.
    audio, clas, incubation_cues, memory_cues, store_psyche : bool
        What is allowed.
    reasons : list of str
        One line per thing removed (and why), for the client's view and the audit log.
    """

    run: bool
    mode: str
    audio: bool
    clas: bool
    incubation_cues: bool
    memory_cues: bool
    store_psyche: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (goes into the audit log as the night's consent basis)."""
        return {"run": self.run, "mode": self.mode, "audio": self.audio, "clas": self.clas,
                "incubation_cues": self.incubation_cues, "memory_cues": self.memory_cues,
                "store_psyche": self.store_psyche, "reasons": list(self.reasons)}


def plan_night(scopes: Iterable[str], program: Program | None = None) -> NightPlan:
    """Say what tonight may do, given the client's consent scopes and (optionally) their program.

    No ``recording``: nothing runs. No ``audio``: a record-only night. No ``stimulation``: no CLAS clicks and
    no memory cues. No ``dream_incubation``: no incubation cues. No ``psyche_monitoring``: distress is still
    acted on at once for safety (silence), but not stored or shown as psyche data.
    """
    have = _closure_down(set(parse_scopes(scopes)))
    reasons: list[str] = []
    if Scope.RECORDING not in have:
        return NightPlan(False, "refused", False, False, False, False, False,
                         ["no 'recording' consent: a night needs live signals, so none may run"])
    audio = Scope.AUDIO in have
    clas = audio and Scope.STIMULATION in have
    memory = clas
    incub = audio and Scope.DREAM_INCUBATION in have
    psyche = Scope.PSYCHE_MONITORING in have
    uses = _program_uses(program) if program is not None else {"audio", "clas", "incubation", "memory"}
    if not audio and uses:
        reasons.append("no 'audio' consent: record-only night, no sound at all")
    if audio and not clas and "clas" in uses:
        reasons.append("no 'stimulation' consent: CLAS clicks removed")
    if audio and not memory and "memory" in uses:
        reasons.append("no 'stimulation' consent: memory cues removed")
    if audio and not incub and "incubation" in uses:
        reasons.append("no 'dream_incubation' consent: incubation cues removed")
    if not psyche:
        reasons.append("no 'psyche_monitoring' consent: distress is silenced at once but not stored")
    if program is None:
        mode = "stimulation" if audio else "record_only"
    else:
        plays = ("audio" in uses) or (clas and "clas" in uses) or (memory and "memory" in uses) or (
            incub and "incubation" in uses)
        mode = "stimulation" if audio and plays else "record_only"
    return NightPlan(True, mode, audio, clas, incub, memory, psyche, reasons)


def _program_uses(program: Program) -> set[str]:
    uses: set[str] = set()
    for sc in program.scenes.values():
        if sc.layers:
            uses.add("audio")
        if sc.clas is not None:
            uses.add("clas")
        for c in sc.cues:
            uses.add("memory" if c.kind == "memory" else "incubation")
    if program.wake is not None:
        uses.add("audio")
    return uses


def restrict_program(program: Program, plan: NightPlan) -> Program:
    """The program with everything the plan forbids taken out (a record-only program when there is no audio)."""
    doc = program.model_dump(mode="json", exclude_none=True)
    for sc in doc.get("scenes", {}).values():
        if not plan.audio:
            sc["layers"] = []
        if not plan.clas:
            sc.pop("clas", None)
        sc["cues"] = [c for c in sc.get("cues", [])
                      if plan.audio and (plan.memory_cues if c.get("kind") == "memory" else plan.incubation_cues)]
    if not plan.audio:
        doc.pop("wake", None)
        doc["rules"] = {k: SILENCE for k in doc.get("rules", {})}
        doc["on_distress"] = {**doc.get("on_distress", {}), "play": SILENCE}
    return Program.model_validate(doc)


@dataclass(frozen=True)
class CommandVerdict:
    """Whether one controller command may reach the sink under the current consent."""

    allowed: bool
    reason: str


def command_allowed(scopes: Iterable[str], command: Any, program: Program | None = None) -> CommandVerdict:
    """Check one controller command (a ``Command`` or a dict with ``kind`` and params) against consent now.

    ``silence`` is always allowed. Call it on every command of every step with the client's scopes as they are
    at that step: a consent revoked mid-night then stops the sound it covered at the very next step.
    """
    return allowed_under(effective_scopes(scopes), command, program)


def effective_scopes(scopes: Iterable[str]) -> frozenset[Scope]:
    """The scopes that hold, once those whose needs are missing are dropped (parse once, check many commands)."""
    return frozenset(_closure_down(set(parse_scopes(scopes))))


def allowed_under(have: frozenset[Scope], command: Any, program: Program | None = None) -> CommandVerdict:
    """:func:`command_allowed` with the scopes already parsed by :func:`effective_scopes`."""
    kind, params = _kind_params(command)
    if kind == "silence":
        return _SILENCE_OK
    audio, stimulation = _sound_scopes(have)
    if not audio:
        return CommandVerdict(False, f"'{kind}' plays sound and the client has no 'audio' consent")
    if kind == "click" and not stimulation:
        return CommandVerdict(False, "CLAS click without 'stimulation' consent")
    if kind == "cue":
        cue_kind = _cue_kind(params, program)
        need = {"memory": [Scope.STIMULATION], "incubation": [Scope.DREAM_INCUBATION]}.get(
            cue_kind or "", [Scope.STIMULATION, Scope.DREAM_INCUBATION])
        missing = [n.value for n in need if n not in have]
        if missing:
            return CommandVerdict(False, f"{cue_kind or 'unknown'} cue without '{', '.join(missing)}' consent")
    if kind in _COVERED:
        return _COVERED[kind]
    return CommandVerdict(False, f"unknown command kind '{kind}': refused until the guard knows it")


_SILENCE_OK = CommandVerdict(True, "silence is always allowed")
_COVERED = {k: CommandVerdict(True, f"'{k}' is covered by the client's consent")
            for k in ("scene", "protect", "wake", "click", "cue")}


@lru_cache(maxsize=1024)
def _sound_scopes(have: frozenset[Scope]) -> tuple[bool, bool]:
    """(sound may play: 'recording' and 'audio'; clicks may play: 'stimulation'), for a set of scopes.

    Asked for every command of every bed (an enum's hash is Python code: the answer is kept per set).
    """
    return Scope.RECORDING in have and Scope.AUDIO in have, Scope.STIMULATION in have


def filter_commands(
    scopes: Iterable[str], commands: Iterable[Any], program: Program | None = None
) -> tuple[list[Any], list[tuple[Any, str]]]:
    """Split commands into those consent allows and those refused (with the reason)."""
    sc = list(scopes)
    ok: list[Any] = []
    refused: list[tuple[Any, str]] = []
    for cmd in commands:
        v = command_allowed(sc, cmd, program)
        if v.allowed:
            ok.append(cmd)
        else:
            refused.append((cmd, v.reason))
    return ok, refused


def may_store_glitch(scopes: Iterable[str], category: str) -> bool:
    """Whether a glitch of ``category`` may be stored: psyche glitches only with ``psyche_monitoring``."""
    return str(category) != "psyche" or Scope.PSYCHE_MONITORING in set(parse_scopes(scopes))


def _kind_params(command: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(command, Mapping):
        return str(command.get("kind", "")), command.get("params", command)
    return str(getattr(command, "kind", "")), getattr(command, "params", {}) or {}


def _cue_kind(params: Mapping[str, Any], program: Program | None) -> str | None:
    for key in ("cue_kind", "kind"):  # a controller Command carries the cue's kind as params["kind"]
        if params.get(key) in ("incubation", "memory"):
            return str(params[key])
    if program is None:
        return None
    scene = program.scenes.get(str(params.get("scene", "")))
    try:
        return scene.cues[int(params.get("index", -1))].kind if scene is not None else None
    except (IndexError, ValueError, TypeError):
        return None
