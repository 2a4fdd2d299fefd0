"""The session state machine: prepared → calibrating → running → extracting → ended (or aborted).

A session is never "lost": every state has a defined way out, and ``ended`` and ``aborted``
are final. This module is pure; :mod:`nexus.store` persists the state.
"""

from __future__ import annotations

from enum import StrEnum

from nexus.core.errors import StateError


class SessionState(StrEnum):
    """States of one night of one client."""

    PREPARED = "prepared"
    CALIBRATING = "calibrating"
    RUNNING = "running"
    EXTRACTING = "extracting"
    ENDED = "ended"
    ABORTED = "aborted"


TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.PREPARED: frozenset({SessionState.CALIBRATING, SessionState.ABORTED}),
    SessionState.CALIBRATING: frozenset({SessionState.RUNNING, SessionState.PREPARED, SessionState.ABORTED}),
    # a running session always leaves through extraction, so stimulation stops first
    SessionState.RUNNING: frozenset({SessionState.EXTRACTING}),
    SessionState.EXTRACTING: frozenset({SessionState.ENDED, SessionState.ABORTED}),
    SessionState.ENDED: frozenset(),
    SessionState.ABORTED: frozenset(),
}

FINAL_STATES = frozenset({SessionState.ENDED, SessionState.ABORTED})


def check_transition(current: SessionState | str, target: SessionState | str) -> SessionState:
    """Return ``target`` as a :class:`SessionState` if the transition is allowed, else raise.

    Raises
    ------
    StateError
        When the transition is not in :data:`TRANSITIONS`.
    """
    cur, tgt = SessionState(current), SessionState(target)
    if tgt not in TRANSITIONS[cur]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[cur])) or "none (final state)"
        raise StateError(
            f"A session cannot go from '{cur.value}' to '{tgt.value}'. Allowed from '{cur.value}': {allowed}."
        )
    return tgt
