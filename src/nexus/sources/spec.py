"""The ``--source`` spec shared by the facility commands (``nexus record``, ``nexus run``).

Grammar: ``KIND[:POSITIONAL][:key=value]...``

* ``synthetic[:N]`` — N synthetic sleepers (default 1).
* ``lsl[:type=EEG][:name=PREFIX][:channels=N]`` — every LSL stream of that content type (default
  ``EEG``) whose name starts with ``PREFIX`` becomes a bed; ``channels=N`` refuses streams with
  another channel count.
* ``brainflow:BOARD[:serial=PORT][:mac=ADDR][:ip=ADDR]`` — one BrainFlow board (``synthetic``
  runs offline).
* ``replay:DIR[:speed=X]`` — each EDF/BDF in ``DIR`` a bed, replayed in real time or X times faster.

:func:`parse_source` turns a spec into a :class:`SourceSpec`, or raises
:class:`~nexus.core.errors.InvalidInputError` with one line naming the problem and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from nexus.core.errors import InvalidInputError

#: kind → (what the positional part means or None, accepted keys)
_KINDS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "synthetic": ("N", ()),
    "lsl": (None, ("type", "name", "channels")),
    "brainflow": ("BOARD", ("serial", "mac", "ip")),
    "replay": ("DIR", ("speed",)),
}

USAGE = ("synthetic[:N], lsl[:type=EEG][:name=PREFIX][:channels=N], brainflow:BOARD[:serial=PORT] "
         "or replay:DIR[:speed=X]")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source`` spec.

    Attributes
    ----------
    kind : str
        ``synthetic``, ``lsl``, ``brainflow`` or ``replay``.
    text : str
        The spec as given (stored with each session as its source).
    count : int
        Number of synthetic sleepers (``synthetic``).
    stream_type : str
        LSL content type to resolve (``lsl``).
    name_prefix : str
        Only LSL streams whose name starts with this (``lsl``; empty: all).
    channels : int or None
        Required channel count of LSL streams (``lsl``; None: any).
    board : str
        BrainFlow board name or id (``brainflow``).
    serial, mac, ip : str
        BrainFlow connection parameters.
    folder : Path or None
        Folder of recordings (``replay``).
    speed : float
        Replay speed (1 = real time).
    """

    kind: str
    text: str
    count: int = 1
    stream_type: str = "EEG"
    name_prefix: str = ""
    channels: int | None = None
    board: str = ""
    serial: str = ""
    mac: str = ""
    ip: str = ""
    folder: Path | None = None
    speed: float = 1.0
    options: dict[str, str] = field(default_factory=dict)


def _bad(spec: str, problem: str) -> InvalidInputError:
    return InvalidInputError(f"Bad --source '{spec}': {problem}. Use {USAGE}.")


def parse_source(text: str) -> SourceSpec:
    """Parse a ``--source`` spec (see the module docstring) into a :class:`SourceSpec`."""
    spec = (text or "").strip()
    if not spec:
        raise _bad(text, "it is empty")
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in _KINDS:
        from nexus.core.checks import did_you_mean

        hint = did_you_mean(kind, _KINDS).strip().replace("Did you", "did you")
        raise _bad(spec, f"unknown source kind '{kind}'" + (f" ({hint})" if hint else ""))
    positional_name, keys = _KINDS[kind]
    positional: str | None = None
    options: dict[str, str] = {}
    if kind == "replay":  # a folder may itself hold ':'; options are only the trailing key=value parts
        parts = rest.split(":") if rest else []
        while parts and "=" in parts[-1] and parts[-1].split("=", 1)[0].strip().lower() in keys:
            k, v = parts.pop().split("=", 1)
            options[k.strip().lower()] = v.strip()
        positional = ":".join(parts) or None
    else:
        for part in rest.split(":") if rest else []:
            if "=" in part:
                k, v = part.split("=", 1)
                k = k.strip().lower()
                if k not in keys:
                    takes = f"it takes {', '.join(keys)}" if keys else "it takes no options"
                    raise _bad(spec, f"unknown option '{k}' for the {kind} source ({takes})")
                if k in options:
                    raise _bad(spec, f"option '{k}' given twice")
                options[k] = v.strip()
            elif positional is None and positional_name is not None and part.strip():
                positional = part.strip()
            else:
                raise _bad(spec, f"unexpected part '{part}'")
    if kind == "synthetic":
        n = 1
        if positional is not None:
            if not positional.isdigit() or not 1 <= int(positional) <= 10_000:
                raise _bad(spec, f"the number of sleepers must be a whole number from 1 to 10000, not '{positional}'")
            n = int(positional)
        return SourceSpec(kind, spec, count=n)
    if kind == "lsl":
        stype = options.get("type", "EEG")
        prefix = options.get("name", "")
        for what, val in (("type", stype), ("name", prefix)):
            if "'" in val or '"' in val:
                raise _bad(spec, f"the stream {what} must not contain quotes")
        if not stype:
            raise _bad(spec, "type= needs a value (e.g. type=EEG)")
        chans = None
        if "channels" in options:
            c = options["channels"]
            if not c.isdigit() or int(c) < 1:
                raise _bad(spec, f"channels= must be a whole number >= 1, not '{c}'")
            chans = int(c)
        return SourceSpec(kind, spec, stream_type=stype, name_prefix=prefix, channels=chans, options=options)
    if kind == "brainflow":
        if not positional:
            raise _bad(spec, "name the board (e.g. brainflow:synthetic or brainflow:cyton:serial=/dev/ttyUSB0)")
        from nexus.sources.brainflow import BOARDS

        if not positional.lstrip("-").isdigit() and positional.lower() not in BOARDS:
            raise _bad(spec, f"unknown BrainFlow board '{positional}' (known: {', '.join(sorted(BOARDS))})")
        return SourceSpec(kind, spec, board=positional.lower(), serial=options.get("serial", ""),
                          mac=options.get("mac", ""), ip=options.get("ip", ""), options=options)
    # replay
    if not positional:
        raise _bad(spec, "name the folder of recordings (e.g. replay:nights/ or replay:nights/:speed=60)")
    speed = 1.0
    if "speed" in options:
        try:
            speed = float(options["speed"])
        except ValueError:
            raise _bad(spec, f"speed= must be a number, not '{options['speed']}'") from None
        if not math.isfinite(speed) or not 0.01 <= speed <= 100_000:
            raise _bad(spec, f"speed= must be from 0.01 to 100000, not {options['speed']}")
    return SourceSpec(kind, spec, folder=Path(positional), speed=speed, options=options)


__all__ = ["USAGE", "SourceSpec", "parse_source"]
