"""The alarm log in the database: every high and medium alarm of a run with its times.

:func:`save_alarms` writes the records of :meth:`nexus.monitor.alarms.AlarmBook.log` (the
supervisor's book, at the end of a night); :func:`list_alarms` reads them back, newest first, as
JSON-ready dicts (what the API and ``nexus`` commands show).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nexus.core.errors import InvalidInputError
from nexus.core.glitches import AlarmPriority, GlitchCategory
from nexus.store.models import AlarmRow

STATES = ("raised", "escalated", "acknowledged", "resolved")
"""Alarm states :func:`list_alarms` filters on (as :attr:`nexus.monitor.alarms.Alarm.state`)."""


def save_alarms(s: Session, records: Iterable[dict[str, Any]], *, facility_run_id: str | None = None,
                sessions: set[str] | None = None) -> int:
    """Add alarm-log rows in an open ORM session; returns how many were added.

    Parameters
    ----------
    s : Session
        An open ORM session (the caller commits).
    records : iterable of dict
        :meth:`~nexus.monitor.alarms.Alarm.as_record` dicts; low alarms are skipped (the log keeps
        high and medium ones, including those escalated from medium).
    facility_run_id : str, optional
        The run that raised them.
    sessions : set of str, optional
        Only alarms of these sessions (those that have a database row).
    """
    n = 0
    for r in records:
        if r["priority"] not in ("high", "medium") or (sessions is not None and r["session"] not in sessions):
            continue
        s.add(AlarmRow(
            session_id=r["session"], facility_run_id=facility_run_id, number=int(r["id"]), kind=r["kind"],
            category=GlitchCategory(r["category"]), priority=AlarmPriority(r["priority"]),
            raised_priority=AlarmPriority(r["raised_priority"]), channel=r.get("channel"),
            message=r.get("message") or "", onset_s=r.get("onset_s"), raised_s=float(r["raised_s"]),
            acknowledged_s=r.get("acknowledged_s"), acknowledged_by=r.get("acknowledged_by"),
            escalated_s=r.get("escalated_s"), resolved_s=r.get("resolved_s"), evidence=dict(r.get("evidence") or {}),
        ))
        n += 1
    return n


def _state(row: AlarmRow) -> str:
    if row.resolved_s is not None:
        return "resolved"
    if row.acknowledged_s is not None:
        return "acknowledged"
    if row.escalated_s is not None:
        return "escalated"
    return "raised"


def list_alarms(store: Any, *, session: str | None = None, priority: str | None = None, state: str | None = None,
                limit: int = 500) -> list[dict[str, Any]]:
    """The alarm log, newest first (by run, then raising time), as JSON-ready dicts.

    Parameters
    ----------
    store : Store
        An open database.
    session : str, optional
        Only this session's alarms.
    priority : str, optional
        ``high`` or ``medium`` (the priority now: escalated alarms are high).
    state : str, optional
        One of :data:`STATES`.
    limit : int
        At most this many rows.
    """
    if priority is not None and priority not in ("high", "medium"):
        raise InvalidInputError(f"Invalid priority '{priority}': the alarm log holds 'high' and 'medium' alarms.")
    if state is not None and state not in STATES:
        raise InvalidInputError(f"Invalid state '{state}': choose one of {', '.join(STATES)}.")
    if limit < 1:
        raise InvalidInputError(f"Invalid limit {limit}: expected >= 1.")
    q = select(AlarmRow)
    if session is not None:
        q = q.where(AlarmRow.session_id == session)
    if priority is not None:
        q = q.where(AlarmRow.priority == AlarmPriority(priority))
    if state == "resolved":
        q = q.where(AlarmRow.resolved_s.is_not(None))
    elif state == "acknowledged":
        q = q.where(AlarmRow.resolved_s.is_(None), AlarmRow.acknowledged_s.is_not(None))
    elif state == "escalated":
        q = q.where(AlarmRow.resolved_s.is_(None), AlarmRow.acknowledged_s.is_(None), AlarmRow.escalated_s.is_not(None))
    elif state == "raised":
        q = q.where(AlarmRow.resolved_s.is_(None), AlarmRow.acknowledged_s.is_(None), AlarmRow.escalated_s.is_(None))
    q = q.order_by(AlarmRow.created_at.desc(), AlarmRow.raised_s.desc(), AlarmRow.id.desc()).limit(limit)
    with store.session() as s:
        return [{
            "id": r.id, "session": r.session_id, "run": r.facility_run_id, "number": r.number, "kind": r.kind,
            "category": r.category.value, "priority": r.priority.value, "raised_priority": r.raised_priority.value,
            "state": _state(r), "channel": r.channel, "message": r.message, "onset_s": r.onset_s,
            "raised_s": r.raised_s, "acknowledged_s": r.acknowledged_s, "acknowledged_by": r.acknowledged_by,
            "escalated_s": r.escalated_s, "resolved_s": r.resolved_s, "evidence": dict(r.evidence or {}),
        } for r in s.scalars(q)]
