"""One guard per running session: consent and anti-exploitation checks on every command of every step.

The facility keeps one :class:`SessionGuard` per session, refreshes its scopes when consent changes (so a
revocation applies from the next step), and passes each step's commands through :meth:`SessionGuard.screen`.
Refused commands come back as audit records, ready for :func:`nexus.store.audit.append_many`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nexus.dreamscape.schema import Program
from nexus.guard.chain import AuditRecord
from nexus.guard.consent import Scope, allowed_under, effective_scopes
from nexus.guard.exploitation import ExploitationGuard, program_levels


def command_dict(cmd: Any) -> dict[str, Any]:
    """A command as a JSON-ready dict: ``t``, ``kind`` and its parameters (a cue's own kind as ``cue_kind``)."""
    if isinstance(cmd, Mapping):
        return dict(cmd)
    params = dict(getattr(cmd, "params", {}) or {})
    if "kind" in params:
        params["cue_kind"] = params.pop("kind")
    return {"t": getattr(cmd, "t", None), "kind": getattr(cmd, "kind", None), **params}


@dataclass
class SessionGuard:
    """Consent and anti-exploitation screening of one session's commands.

    Parameters
    ----------
    session : str
        The session id (the subject of audit records).
    scopes : list of str
        The client's consent scopes now; replace with :meth:`set_scopes` when they change.
    program : Program or None
        The session's program (to tell incubation cues from memory cues, and the distress hold).
    """

    session: str
    scopes: list[str]
    program: Program | None = None
    exploitation: ExploitationGuard = field(init=False)
    _have: frozenset[Scope] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.exploitation = (ExploitationGuard.for_program(self.program) if self.program is not None
                             else ExploitationGuard())
        self.set_scopes(self.scopes)

    def set_scopes(self, scopes: Iterable[str]) -> None:
        """New consent scopes, effective for the next :meth:`screen`."""
        self.scopes = list(scopes)
        self._have = effective_scopes(self.scopes)

    def may_sound(self) -> bool:
        """Whether the consent now allows any sound at all (``recording`` and ``audio``)."""
        return Scope.RECORDING in self._have and Scope.AUDIO in self._have

    def set_program(self, program: Program | None) -> None:
        """The program now running (cue kinds are read from it); the distress history is kept."""
        self.program = program
        if program is not None:
            self.exploitation.hold_s = max(self.exploitation.hold_s,
                                           ExploitationGuard.for_program(program).hold_s)
            if self.exploitation.last_distress is None:  # after distress a new program cannot raise the levels
                self.exploitation.program_level = program_levels(program)

    def check(self, t: float, cmd: Any, *, distress: bool = False,
              inputs: Mapping[str, Any] | None = None) -> tuple[bool, str, str]:
        """Whether one command may reach the sink: (allowed, rule, reason).

        ``rule`` is ``consent`` or ``anti_exploitation`` when refused (see :meth:`screen` for the parameters).
        """
        c = allowed_under(self._have, cmd, self.program)
        if not c.allowed:
            if distress:
                self.exploitation.last_distress = t
            return False, "consent", c.reason
        v = self.exploitation.check(t, cmd, distress=distress, inputs=inputs)
        return v.allowed, "" if v.allowed else "anti_exploitation", v.reason

    def screen(self, t: float, commands: Iterable[Any], *, distress: bool = False,
               inputs: Mapping[str, Any] | None = None) -> tuple[list[Any], list[AuditRecord]]:
        """Commands that may reach the sink, and an audit record for each refused one.

        Parameters
        ----------
        t : float
            Session time of the step, in s.
        commands : iterable
            The controller's ``Command`` objects (or dicts with ``kind`` and params) for this session and step.
        distress : bool
            Whether distress was detected in this step.
        inputs : dict or None
            The inputs the controller based the commands on (psyche keys there make stimuli refused).
        """
        ok: list[Any] = []
        refused: list[AuditRecord] = []
        for cmd in commands:
            allowed, rule, reason = self.check(t, cmd, distress=distress, inputs=inputs)
            if allowed:
                ok.append(cmd)
            else:
                refused.append(AuditRecord("guard", f"guard.refused.{rule}", self.session,
                                           {"t": t, "command": command_dict(cmd), "reason": reason}))
        return ok, refused
