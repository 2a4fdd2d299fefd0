"""Typed validation helpers with one message style.

Messages read ``Invalid value for 'fs': expected > 0 Hz, got -3.`` and, for unknown names,
``Unknown profile 'insomnaic'. Did you mean 'insomniac'? Known: …``. Never ``assert`` on user input.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from pathlib import Path

from nexus.core.errors import InvalidInputError, NotFoundError


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``"1 bed"``, ``"2 beds"``, ``"1 distress episode"``: a count with its noun in the right number.

    Examples
    --------
    >>> plural(1, "bed"), plural(0, "bed"), plural(2, "analysis", "analyses")
    ('1 bed', '0 beds', '2 analyses')
    """
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def check_option(what: str, value: str, choices: Iterable[str]) -> str:
    """Check that ``value`` is one of ``choices``; raise with a suggestion otherwise.

    Parameters
    ----------
    what : str
        Name of the thing checked, used in the message (e.g. ``"profile"``).
    value : str
        The value given.
    choices : iterable of str
        Allowed values.

    Returns
    -------
    str
        ``value`` unchanged.
    """
    choices = list(choices)
    if value not in choices:
        raise InvalidInputError(
            f"Unknown {what} '{value}'.{did_you_mean(value, choices)} Known: {', '.join(sorted(choices))}."
        )
    return value


def check_number(
    what: str,
    value: float,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    unit: str = "",
) -> float:
    """Check that a number is finite and inside bounds; return it as float.

    Examples
    --------
    >>> check_number("fs", 256, gt=0, unit="Hz")
    256.0
    """
    u = f" {unit}" if unit else ""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"Invalid value for '{what}': expected a number, got {value!r}.") from None
    if not math.isfinite(x):
        raise InvalidInputError(f"Invalid value for '{what}': expected a finite number, got {value!r}.")
    for bound, ok, sym in (
        (gt, lambda b: x > b, ">"),
        (ge, lambda b: x >= b, ">="),
        (lt, lambda b: x < b, "<"),
        (le, lambda b: x <= b, "<="),
    ):
        if bound is not None and not ok(bound):
            raise InvalidInputError(
                f"Invalid value for '{what}': expected {sym} {bound:g}{u}, got {value:g}{u}."
            )
    return x


def check_file_exists(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a :class:`Path` if it is an existing file, else raise :class:`NotFoundError`."""
    p = Path(path)
    if not p.is_file():
        hint = " It is a folder; give a file." if p.is_dir() else " Check the path and try again."
        raise NotFoundError(f"The {what} '{p}' does not exist.{hint}")
    return p


def check_writable_path(path: str | Path, what: str = "output file") -> Path:
    """Check that ``path`` can be created or replaced (its folder exists and is writable).

    ``-`` is refused (it would create a file named ``-``): commands that can write to standard output handle
    ``-`` themselves before calling this.
    """
    import os

    if str(path) == "-":
        raise InvalidInputError(
            f"Cannot write the {what} to standard output ('-'); give a file name."
        )
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInputError(
            f"Cannot write the {what} '{p}': folder '{parent}' does not exist. Create it first."
        )
    if not os.access(parent, os.W_OK):
        raise InvalidInputError(
            f"Cannot write the {what} '{p}': folder '{parent}' is not writable. Choose another path."
        )
    if p.is_dir():
        raise InvalidInputError(f"Cannot write the {what} '{p}': it is a folder. Give a file name.")
    return p
