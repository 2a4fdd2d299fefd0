"""Extraction modes, their ranking and parsing: no numpy, so that ``nexus extract`` starts fast.

The state machine that carries the modes out is :mod:`nexus.safety.extraction`.
"""

from __future__ import annotations

from enum import StrEnum

from nexus.core.errors import InvalidInputError


class ExtractionMode(StrEnum):
    """How a session is extracted (after stimulation has stopped)."""

    RELEASE = "release"
    GENTLE = "gentle"
    IMMEDIATE = "immediate"


SAFETY_ORDER: tuple[ExtractionMode, ...] = (ExtractionMode.RELEASE, ExtractionMode.GENTLE, ExtractionMode.IMMEDIATE)
"""Modes from the least to the most firm; a conflict resolves to the later one."""

_RANK = {m: k + 1 for k, m in enumerate(SAFETY_ORDER)}


def parse_mode(mode: str | ExtractionMode) -> ExtractionMode:
    """The :class:`ExtractionMode` named by ``mode`` (raises :class:`InvalidInputError` for others)."""
    try:
        return ExtractionMode(str(mode).lower())
    except ValueError:
        raise InvalidInputError(
            f"Invalid value for 'mode': expected one of {', '.join(m.value for m in SAFETY_ORDER)}, got '{mode}'."
        ) from None


def safest(*modes: str | ExtractionMode) -> ExtractionMode:
    """The safest (firmest) of several modes."""
    if not modes:
        raise InvalidInputError("Give at least one extraction mode.")
    return max((parse_mode(m) for m in modes), key=_RANK.__getitem__)
