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
from nexus.guard.consent import command_allowed
from nexus.guard.exploitation import ExploitationGuard


def _command_dict(cmd: Any) -> dict[str, Any]:
    if isinstance(cmd, Mapping):
        return dict(cmd)
    return {"t": getattr(cmd, "t", None), "kind": getattr(cmd, "kind", None), **(getattr(cmd, "params", {}) or {})}


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

    def __post_init__(self) -> None:
        self.exploitation = (ExploitationGuard.for_program(self.program) if self.program is not None
                             else ExploitationGuard())

    def set_scopes(self, scopes: Iterable[str]) -> None:
        """New consent scopes, effective for the next :meth:`screen`."""
        self.scopes = list(scopes)

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
            c = command_allowed(self.scopes, cmd, self.program)
            v = self.exploitation.check(t, cmd, distress=distress, inputs=inputs) if c.allowed else c
            if c.allowed and v.allowed:
                ok.append(cmd)
            else:
                rule = "consent" if not c.allowed else "anti_exploitation"
                refused.append(AuditRecord("guard", f"guard.refused.{rule}", self.session,
                                           {"t": t, "command": _command_dict(cmd), "reason": v.reason}))
        return ok, refused
