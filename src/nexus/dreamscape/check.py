"""Checks before a program touches a person: parse, validate, find contradictions and limits exceeded.

:func:`check_text` and :func:`check_file` never raise on a bad program: they return a :class:`CheckReport`
listing every problem with its key path and line. :func:`load_program` raises
:class:`~nexus.core.errors.DataFormatError` (one message listing them) unless the program is clean, so that
nothing unchecked is ever played.
"""

from __future__ import annotations

import json
import re
import shutil
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nexus.core.checks import did_you_mean
from nexus.core.errors import DataFormatError, NotFoundError
from nexus.dreamscape.schema import (
    SCHEMA_VERSION,
    SILENCE,
    SYSTEM_MAX_LEVEL_DB,
    SYSTEM_MAX_NIGHT_H,
    SYSTEM_MAX_STIM_PER_MIN,
    Program,
)

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it (ten times faster, same documents and line marks)."""

_MIN_SO_PERIOD_S = 0.5  # fastest slow oscillation (2 Hz): the shortest gap between clicks of one train
_MAX_WAKE_WINDOW_MIN = 90.0


@dataclass(frozen=True)
class Issue:
    """One problem found in a program.

    Attributes
    ----------
    where : str
        Key path, e.g. ``scenes.settle.layers[0].level_db`` (``""`` for the whole file).
    line : int or None
        1-based line in the file, when known.
    message : str
        What is wrong and how to fix it.
    """

    where: str
    line: int | None
    message: str

    def __str__(self) -> str:
        at = self.where or "program"
        line = f" (line {self.line})" if self.line else ""
        return f"{at}{line}: {self.message}"


@dataclass
class CheckReport:
    """The outcome of checking a program: refused when it has any error."""

    source: str
    program: Program | None = None
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the program may be played."""
        return self.program is not None and not self.errors

    def summary(self) -> str:
        """Human-readable multi-line summary."""
        head = f"{self.source}: " + ("OK" if self.ok else f"REFUSED ({len(self.errors)} error(s))")
        lines = [head] + [f"  error   {e}" for e in self.errors] + [f"  warning {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "ok": self.ok,
            "errors": [e.__dict__ for e in self.errors],
            "warnings": [w.__dict__ for w in self.warnings],
        }


def espeak_available() -> str | None:
    """Path of the espeak-ng (or espeak) executable, or ``None`` when it is not installed."""
    return shutil.which("espeak-ng") or shutil.which("espeak")


def _path_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the node at ``loc`` (the deepest one found), from a composed YAML tree."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if str(k.value) == str(part):
                    line = k.start_mark.line + 1
                    nxt = v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
            line = nxt.start_mark.line + 1
        if nxt is None:
            break
        node = nxt
    return line


def _pydantic_issues(exc: ValidationError, root: yaml.Node | None) -> list[Issue]:
    issues = []
    for err in exc.errors(include_url=False):
        # drop pydantic's union/function tags from the location ('function-after[...]', 'literal[...]')
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function"))))
        msg = err["msg"]
        if err["type"] == "unknown_key":
            loc = (*loc, err["ctx"]["key"])
        elif err["type"] == "missing":
            msg = "Missing required key."
        elif err["type"] == "literal_error" and isinstance(err.get("input"), str):
            choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            msg = f"Unknown value '{err['input']}'.{did_you_mean(err['input'], choices)} Expected one of: " + \
                ", ".join(choices) + "."
        elif isinstance(err.get("input"), int) and loc and loc[-1] in ("lights_out", 0, 1):
            msg += " Quote clock times in YAML, e.g. \"06:30\"."
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        msg = msg[0].upper() + msg[1:]
        if not msg.endswith((".", "?")):
            msg += "."
        issues.append(Issue(_path_str(loc), _line_of(root, loc), msg))
    return issues


def _semantic(p: Program, root: yaml.Node | None, base_dir: Path | None) -> tuple[list[Issue], list[Issue]]:
    errors: list[Issue] = []
    warnings: list[Issue] = []

    def err(loc: tuple[Any, ...], msg: str) -> None:
        errors.append(Issue(_path_str(loc), _line_of(root, loc), msg))

    def warn(loc: tuple[Any, ...], msg: str) -> None:
        warnings.append(Issue(_path_str(loc), _line_of(root, loc), msg))

    lim = p.limits
    if lim.max_level_db > SYSTEM_MAX_LEVEL_DB:
        err(("limits", "max_level_db"), f"Limit {lim.max_level_db:g} dBFS is above the facility ceiling "
            f"{SYSTEM_MAX_LEVEL_DB:g} dBFS; lower it.")
    if lim.max_stim_per_min > SYSTEM_MAX_STIM_PER_MIN:
        err(("limits", "max_stim_per_min"), f"Limit {lim.max_stim_per_min:g}/min is above the facility ceiling "
            f"{SYSTEM_MAX_STIM_PER_MIN:g}/min; lower it.")
    if lim.max_night_h > SYSTEM_MAX_NIGHT_H:
        err(("limits", "max_night_h"), f"Limit {lim.max_night_h:g} h is above the facility ceiling "
            f"{SYSTEM_MAX_NIGHT_H:g} h; lower it.")
    ceiling = min(lim.max_level_db, SYSTEM_MAX_LEVEL_DB)

    def level(loc: tuple[Any, ...], value: float) -> None:
        if value > ceiling:
            err(loc, f"Level {value:g} dBFS exceeds the limit {ceiling:g} dBFS (limits.max_level_db); lower it.")

    # rules → scenes
    used: dict[str, list[str]] = {}
    for stage, scene in p.rules.items():
        if scene != SILENCE and scene not in p.scenes:
            err(("rules", stage), f"Rule for {stage} names scene '{scene}', which is not defined."
                f"{did_you_mean(scene, [*p.scenes, SILENCE])} Defined: {', '.join([*p.scenes, SILENCE])}.")
        used.setdefault(scene, []).append(stage)
    for name in p.scenes:
        if name not in used:
            warn(("scenes", name), f"Scene '{name}' is not used by any rule; it will never play.")

    espeak = espeak_available()
    for name, scene in p.scenes.items():
        stages = set(used.get(name, []))
        loc0: tuple[Any, ...] = ("scenes", name)
        for i, layer in enumerate(scene.layers):
            level((*loc0, "layers", i, "level_db"), layer.level_db)
        for i, cue in enumerate(scene.cues):
            cloc = (*loc0, "cues", i)
            level((*cloc, "level_db"), cue.level_db)
            if cue.kind == "memory" and stages - {"N2", "N3"}:
                err((*cloc, "kind"), f"Memory cues play only in N2/N3, but scene '{name}' is used in "
                    f"{', '.join(sorted(stages - {'N2', 'N3'}))}. Move the cue to an N2/N3 scene.")
            if cue.kind == "incubation" and stages - {"W", "N1"}:
                err((*cloc, "kind"), f"Dream-incubation cues play at sleep onset (W/N1), but scene '{name}' is "
                    f"used in {', '.join(sorted(stages - {'W', 'N1'}))}. Use kind: memory or another scene.")
            rate = 1.0 / cue.every_min
            if rate > lim.max_stim_per_min:
                err((*cloc, "every_min"), f"{rate:g} cues/min exceeds limits.max_stim_per_min "
                    f"{lim.max_stim_per_min:g}.")
            if cue.text is not None and espeak is None:
                err((*cloc, "text"), "This text cue needs espeak-ng, which is not installed. Install it "
                    "(e.g. 'apt install espeak-ng') or record the cue as a WAV file and give it as 'file:'.")
            if cue.file is not None:
                problem = _cue_file_problem(cue.file, base_dir)
                if problem:
                    err((*cloc, "file"), problem)
        if scene.clas is not None:
            c = scene.clas
            cl = (*loc0, "clas")
            level((*cl, "level_db"), c.level_db)
            if stages - {"N3"}:
                err(cl, f"CLAS runs only in N3, but scene '{name}' is used in "
                    f"{', '.join(sorted(stages - {'N3'}))}. Give N3 its own scene for CLAS.")
            # worst case: a whole train every refractory period, clicks one fast slow-wave cycle apart
            worst = 60.0 * c.clicks / (c.refractory_s + (c.clicks - 1) * _MIN_SO_PERIOD_S)
            if worst > lim.max_stim_per_min:
                err(cl, f"CLAS can give up to {worst:.1f} clicks/min ({c.clicks} per train, refractory "
                    f"{c.refractory_s:g} s), above limits.max_stim_per_min {lim.max_stim_per_min:g}. "
                    f"Lengthen refractory_s or lower clicks.")
            if c.click_ms / 1000.0 >= _MIN_SO_PERIOD_S:
                err((*cl, "click_ms"), "Clicks must be shorter than half a second.")
    if p.on_distress.play != SILENCE:
        level(("on_distress", "level_db"), p.on_distress.level_db)
    if p.wake is not None:
        ramp = p.wake.ramp
        level(("wake", "ramp", "to_db"), ramp.to_db)
        level(("wake", "ramp", "from_db"), ramp.from_db)
        if ramp.from_db > ramp.to_db:
            err(("wake", "ramp"), f"The wake ramp falls (from {ramp.from_db:g} to {ramp.to_db:g} dBFS); it must "
                "rise.")
        win = p.wake_window_s()
        assert win is not None
        a, b = win
        if b <= a:
            err(("wake", "window"), "The wake window ends before it starts (or is empty). Give [start, end].")
        elif (b - a) / 60.0 > _MAX_WAKE_WINDOW_MIN:
            err(("wake", "window"), f"The wake window is {(b - a) / 60:g} min long; at most "
                f"{_MAX_WAKE_WINDOW_MIN:g} min.")
        if b / 3600.0 > lim.max_night_h:
            err(("wake", "window"), f"The wake window ends {b / 3600:.2f} h after lights-out "
                f"({p.lights_out}), beyond limits.max_night_h {lim.max_night_h:g} h.")
    elif "fall_asleep_faster" in p.client_goals and not p.rules:
        warn(("rules",), "No rules: nothing will play.")
    return errors, warnings


def _cue_file_problem(name: str, base_dir: Path | None) -> str | None:
    path = Path(name)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        return f"Cue file '{path}' does not exist. Check the path (relative to the program file)."
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnframes() == 0:
                return f"Cue file '{path}' is empty."
    except (wave.Error, EOFError, OSError) as exc:
        return f"Cue file '{path}' is not a readable WAV file ({exc}). Convert it to 16-bit PCM WAV."
    return None


def check_text(text: str, *, source: str = "<program>", fmt: str = "yaml", base_dir: Path | None = None) -> CheckReport:
    """Parse and check a program given as text.

    Parameters
    ----------
    text : str
        The program, YAML or JSON.
    source : str
        Name used in messages (usually the file name).
    fmt : {"yaml", "json"}
        Syntax of ``text`` (JSON is also valid YAML, but is parsed strictly as JSON here).
    base_dir : Path, optional
        Folder that relative cue files are resolved against.

    Returns
    -------
    CheckReport
        ``report.ok`` is True only when the program may be played.
    """
    report = CheckReport(source=source)
    root: yaml.Node | None = None
    try:
        data = json.loads(text) if fmt == "json" else yaml.load(text, Loader=_LOADER)  # a safe loader
    except json.JSONDecodeError as exc:
        report.errors.append(Issue("", exc.lineno, f"Malformed JSON: {exc.msg} (column {exc.colno})."))
        return report
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        report.errors.append(Issue("", mark.line + 1 if mark else None, f"Malformed YAML: {problem}."))
        return report
    try:
        root = yaml.compose(text, Loader=_LOADER)  # a safe loader
    except yaml.YAMLError:  # JSON accepted by json but not by YAML: no line numbers
        root = None
    if not isinstance(data, dict):
        report.errors.append(Issue("", 1, "A program must be a mapping with keys such as 'dreamscape', 'name', "
                                          "'scenes', 'rules'."))
        return report
    version = data.get("dreamscape")
    if version != SCHEMA_VERSION:
        report.errors.append(Issue("dreamscape", _line_of(root, ("dreamscape",)),
                                   f"Unsupported or missing schema version {version!r}: this code reads "
                                   f"'dreamscape: {SCHEMA_VERSION}'."))
        return report
    try:
        program = Program.model_validate(data)
    except ValidationError as exc:
        report.errors.extend(_pydantic_issues(exc, root))
        return report
    report.program = program
    errors, warnings = _semantic(program, root, base_dir)
    report.errors.extend(errors)
    report.warnings.extend(warnings)
    return report


def check_file(path: str | Path) -> CheckReport:
    """Read and check a program file (``.yaml``/``.yml`` or ``.json``); see :func:`check_text`."""
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"The program file '{p}' does not exist. Check the path and try again.")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"Cannot read the program file '{p}': {exc}. Save it as UTF-8 text.") from None
    fmt = "json" if p.suffix.lower() == ".json" else "yaml"
    return check_text(text, source=str(p), fmt=fmt, base_dir=p.parent)


def load_program(path: str | Path) -> Program:
    """Load a program that passes every check, else raise :class:`DataFormatError` listing the problems."""
    report = check_file(path)
    if not report.ok:
        raise DataFormatError(f"Program '{path}' refused: " + "; ".join(str(e) for e in report.errors))
    assert report.program is not None
    return report.program
