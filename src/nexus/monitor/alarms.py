"""Alarm lifecycle after IEC 60601-1-8: raised, acknowledged, escalated, resolved.

An :class:`AlarmBook` turns glitch episodes into alarms for the technicians. It is pure Python with
the time passed in (seconds on any clock the caller keeps: the facility clock, session time in a
replay), so it runs the same in real time, fast-forward and tests.

* :meth:`AlarmBook.raise_glitch` opens an alarm for an opened episode (``duration_s`` None) and
  resolves it when the same episode closes; :meth:`AlarmBook.raise_alarm` opens one directly.
  Raising what is already open for the same session, kind and channel only refreshes it.
* :meth:`AlarmBook.acknowledge`: a technician has seen it (by whom, when).
* :meth:`AlarmBook.tick`: a ``medium`` alarm not acknowledged within ``escalate_after_s``
  becomes ``high`` (the escalation is kept with its time; :meth:`AlarmBook.take_escalated` hands
  them to a console that did not call ``tick`` itself).
* :meth:`AlarmBook.resolve`: the condition is over; the alarm leaves the active list. A glitch
  that ends another (``stream_returned`` ends a ``dropout``: :data:`ENDS`) resolves its alarm.

Every alarm keeps its times (``raised_s``, ``acknowledged_s``, ``escalated_s``, ``resolved_s``);
:meth:`AlarmBook.log` lists the high and medium ones — the alarm log the store will keep.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nexus.core.errors import InvalidInputError
from nexus.core.glitches import AlarmPriority
from nexus.monitor.glitch import Glitch

ESCALATE_AFTER_S = 120.0
ENDS: dict[str, str] = {"stream_returned": "dropout"}
"""Glitch kinds that end the condition of another kind (its open alarm of the same session is resolved)."""


@dataclass
class Alarm:
    """One alarm of one session.

    Attributes
    ----------
    id : int
        Number in the book (1, 2, …).
    session, kind, category : str
        What it is about (``kind`` from :data:`~nexus.monitor.glitch.GLITCH_KINDS`).
    channel : str or None
        Channel concerned.
    priority : str
        ``high``, ``medium`` or ``low`` (after escalation, the raised one).
    raised_priority : str
        The priority it was raised with.
    message : str
        For the technician.
    raised_s, acknowledged_s, escalated_s, resolved_s : float or None
        Times (the caller's clock, s).
    acknowledged_by : str or None
        Who acknowledged it.
    evidence : dict
        The glitch's evidence.
    onset_s : float or None
        Session time of the glitch behind it (s), when raised from a glitch.
    """

    id: int
    session: str
    kind: str
    category: str
    channel: str | None
    priority: str
    raised_priority: str
    message: str
    raised_s: float
    acknowledged_s: float | None = None
    acknowledged_by: str | None = None
    escalated_s: float | None = None
    resolved_s: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    onset_s: float | None = None

    @property
    def state(self) -> str:
        """``raised``, ``escalated``, ``acknowledged`` or ``resolved``."""
        if self.resolved_s is not None:
            return "resolved"
        if self.acknowledged_s is not None:
            return "acknowledged"
        if self.escalated_s is not None:
            return "escalated"
        return "raised"

    def as_record(self) -> dict[str, Any]:
        """A plain dict of this alarm (for the journal, the API and the future alarm-log table)."""
        return {
            "id": self.id,
            "session": self.session,
            "kind": self.kind,
            "category": self.category,
            "channel": self.channel,
            "priority": self.priority,
            "raised_priority": self.raised_priority,
            "state": self.state,
            "message": self.message,
            "raised_s": self.raised_s,
            "acknowledged_s": self.acknowledged_s,
            "acknowledged_by": self.acknowledged_by,
            "escalated_s": self.escalated_s,
            "resolved_s": self.resolved_s,
            "onset_s": self.onset_s,
            "evidence": dict(self.evidence),
        }


class AlarmBook:
    """Alarms of a facility (or one lane) through their lifecycle; see the module docstring.

    Parameters
    ----------
    escalate_after_s : float
        A medium alarm not acknowledged this long after it was raised becomes high.
    """

    def __init__(self, escalate_after_s: float = ESCALATE_AFTER_S) -> None:
        if not escalate_after_s > 0:
            raise InvalidInputError(f"Invalid value for 'escalate_after_s': expected > 0 s, got {escalate_after_s}.")
        self.escalate_after_s = float(escalate_after_s)
        self.alarms: list[Alarm] = []
        self._open: dict[tuple[str, str, str | None], Alarm] = {}
        self._medium: dict[int, Alarm] = {}  # open, unacknowledged, not yet escalated: what tick() looks at
        self._escalated: list[Alarm] = []  # escalated since the last take_escalated()

    # ------------------------------------------------------------------ raise / resolve
    def raise_alarm(
        self,
        session: str,
        kind: str,
        priority: str,
        now_s: float,
        *,
        category: str = "technical",
        channel: str | None = None,
        message: str = "",
        evidence: dict[str, Any] | None = None,
        onset_s: float | None = None,
    ) -> Alarm:
        """Open an alarm (or return the one already open for this session, kind and channel)."""
        prio = AlarmPriority(priority).value
        key = (session, kind, channel)
        if key in self._open:
            return self._open[key]
        a = Alarm(
            len(self.alarms) + 1,
            session,
            kind,
            category,
            channel,
            prio,
            prio,
            message or kind,
            float(now_s),
            evidence=dict(evidence or {}),
            onset_s=onset_s,
        )
        self.alarms.append(a)
        self._open[key] = a
        if prio == AlarmPriority.MEDIUM:
            self._medium[a.id] = a
        return a

    def raise_glitch(self, glitch: Glitch, now_s: float) -> Alarm | None:
        """Open an alarm for an opened episode, or resolve it when the episode closes (``duration_s`` set).

        Returns the alarm concerned (None for a closing episode that had no alarm).
        """
        key = (glitch.session, glitch.kind, glitch.channel)
        if glitch.kind in ENDS:
            ended = self._open.get((glitch.session, ENDS[glitch.kind], None))
            if ended is not None:
                self.resolve(ended.id, now_s)
            return ended
        if glitch.duration_s is not None:
            a = self._open.get(key)
            if a is not None:
                self.resolve(a.id, now_s)
            return a
        return self.raise_alarm(
            glitch.session,
            glitch.kind,
            glitch.priority,
            now_s,
            category=glitch.category,
            channel=glitch.channel,
            message=glitch.message,
            evidence=glitch.evidence,
            onset_s=glitch.onset_s,
        )

    def feed(self, glitches: Iterable[Glitch], now_s: float) -> None:
        """:meth:`raise_glitch` for each glitch of a monitor step."""
        for g in glitches:
            self.raise_glitch(g, now_s)

    def resolve(self, alarm_id: int, now_s: float) -> Alarm:
        """The condition is over: the alarm is resolved (resolving twice keeps the first time)."""
        a = self._get(alarm_id)
        if a.resolved_s is None:
            a.resolved_s = float(now_s)
            self._open.pop((a.session, a.kind, a.channel), None)
            self._medium.pop(a.id, None)
        return a

    # ------------------------------------------------------------------ people and time
    def acknowledge(self, alarm_id: int, now_s: float, by: str = "") -> Alarm:
        """A technician has seen the alarm; it stops escalating (a resolved alarm cannot be acknowledged)."""
        a = self._get(alarm_id)
        if a.resolved_s is not None:
            raise InvalidInputError(f"Alarm {alarm_id} is already resolved; nothing to acknowledge.")
        if a.acknowledged_s is None:
            a.acknowledged_s, a.acknowledged_by = float(now_s), by or None
            self._medium.pop(a.id, None)
        return a

    def tick(self, now_s: float) -> list[Alarm]:
        """Escalate medium alarms left unacknowledged for ``escalate_after_s``; return those escalated now."""
        out = [a for a in self._medium.values() if now_s - a.raised_s >= self.escalate_after_s]
        for a in out:
            a.priority, a.escalated_s = AlarmPriority.HIGH.value, float(now_s)
            del self._medium[a.id]
        self._escalated += out
        return out

    def take_escalated(self) -> list[Alarm]:
        """The alarms escalated by :meth:`tick` since the last call (for a caller that ticks elsewhere)."""
        out, self._escalated = self._escalated, []
        return out

    def find(self, session: str, kind: str, channel: str | None, onset_s: float | None) -> Alarm | None:
        """The newest alarm raised for this session, kind, channel and glitch onset (None when there is none)."""
        a = self._open.get((session, kind, channel))
        if a is not None and (onset_s is None or (a.onset_s is not None and abs(a.onset_s - onset_s) < 1e-6)):
            return a
        for a in reversed(self.alarms):
            if (a.session, a.kind, a.channel) == (session, kind, channel) and (
                onset_s is None or (a.onset_s is not None and abs(a.onset_s - onset_s) < 1e-6)
            ):
                return a
        return None

    # ------------------------------------------------------------------ views
    def active(self) -> list[Alarm]:
        """Unresolved alarms, high first, then oldest first."""
        order = {"high": 0, "medium": 1, "low": 2}
        return sorted(self._open.values(), key=lambda a: (order[a.priority], a.raised_s, a.id))

    def log(self) -> list[dict[str, Any]]:
        """Every high and medium alarm (as raised or escalated) with its times, in raising order."""
        return [a.as_record() for a in self.alarms if a.priority in ("high", "medium")]

    def _get(self, alarm_id: int) -> Alarm:
        if not 1 <= alarm_id <= len(self.alarms):
            raise InvalidInputError(f"No alarm {alarm_id}: the book holds alarms 1..{len(self.alarms)}.")
        return self.alarms[alarm_id - 1]
