"""Glitch triage vocabulary shared by the monitor (domain) and the store (database).

A glitch is triaged into a :class:`GlitchCategory` and raised as an alarm of an
:class:`AlarmPriority` after IEC 60601-1-8 (high: immediate response; medium: prompt response;
low: awareness). The stage codes live beside this module, in :mod:`nexus.core.stages`.
"""

from __future__ import annotations

from enum import StrEnum


class GlitchCategory(StrEnum):
    """Triage category of a glitch."""

    TECHNICAL = "technical"
    PSYCHE = "psyche"
    SYSTEM = "system"


class AlarmPriority(StrEnum):
    """Alarm priority after IEC 60601-1-8."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
