"""Who may do what: roles, actions and the one policy table that decides (role × action).

Every check in the Nexus goes through :func:`authorize` (or :func:`require`), so a permission is changed in one
place and the table can be tested cell by cell. A rule is one of:

``allow``      always;
``own``        only about the principal's own client record (a client reading their own journal);
``consent:S``  only when the client has granted consent scope ``S`` (e.g. psyche data for staff);
               ``consent:S+T`` needs every scope named;
``deny``       never.

A clinician (the client's own doctor or therapist) sees a client's nights, programs, decisions, dream journal
and personal fields only while the client shares them (``clinician_sharing``), psyche detail only with
``psyche_monitoring`` too, and changes nothing: no program change, no consent change, no extraction, no export,
no erasure, no audit log (the client and the facility stay in charge of the night).

Break-glass access (``break_glass``) is for the case where normal control is lost: it can see which sessions run
and extract them, nothing else — never psyche data, journals or programs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from nexus.core.checks import did_you_mean
from nexus.core.errors import InvalidInputError, NexusError


class AccessDenied(NexusError):
    """The principal may not do this action (exit 77, as sysexits' EX_NOPERM); nothing was done."""

    exit_code = 77


class Role(StrEnum):
    """Who a principal is: a client, a staff role, or a break-glass session."""

    CLIENT = "client"
    TECHNICIAN = "technician"
    CLINICIAN = "clinician"
    AUDITOR = "auditor"
    ADMIN = "admin"
    BREAK_GLASS = "break_glass"


class Action(StrEnum):
    """Everything the policy decides on."""

    SESSION_READ = "session.read"  # state, bed, stage, alarms (without psyche detail)
    SESSION_START = "session.start"
    SESSION_EXTRACT = "session.extract"
    SESSION_ASSIGN = "session.assign"  # an unassigned bed (a stream that matched no client) given to its client
    SIGNALS_READ = "signals.read"  # raw EEG, hypnograms, events
    PSYCHE_READ = "psyche.read"  # distress / nightmare detail
    PROGRAM_READ = "program.read"
    PROGRAM_CHANGE = "program.change"
    DECISIONS_READ = "decisions.read"
    JOURNAL_READ = "journal.read"
    JOURNAL_WRITE = "journal.write"
    CONSENT_READ = "consent.read"
    CONSENT_CHANGE = "consent.change"
    CLIENT_CREATE = "client.create"
    CLIENT_READ = "client.read"  # personal fields
    CLIENT_EXPORT = "client.export"
    CLIENT_ERASE = "client.erase"
    RESEARCH_EXPORT = "research.export"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    USER_MANAGE = "user.manage"


ALLOW, OWN, DENY = "allow", "own", "deny"
SHARED = "consent:clinician_sharing"

A, R = Action, Role
#: The policy: POLICY[action][role] -> rule. Missing cells are "deny".
POLICY: dict[Action, dict[Role, str]] = {
    A.SESSION_READ: {R.CLIENT: OWN, R.TECHNICIAN: ALLOW, R.AUDITOR: ALLOW, R.ADMIN: ALLOW, R.BREAK_GLASS: ALLOW,
                     R.CLINICIAN: SHARED},
    A.SESSION_START: {R.TECHNICIAN: ALLOW, R.ADMIN: ALLOW},
    A.SESSION_EXTRACT: {R.CLIENT: OWN, R.TECHNICIAN: ALLOW, R.ADMIN: ALLOW, R.BREAK_GLASS: ALLOW},
    A.SESSION_ASSIGN: {R.TECHNICIAN: ALLOW, R.ADMIN: ALLOW},
    A.SIGNALS_READ: {R.CLIENT: OWN, R.TECHNICIAN: ALLOW, R.ADMIN: ALLOW, R.CLINICIAN: SHARED},
    A.PSYCHE_READ: {R.CLIENT: OWN, R.TECHNICIAN: "consent:psyche_monitoring",
                    R.AUDITOR: "consent:psyche_monitoring", R.ADMIN: "consent:psyche_monitoring",
                    R.CLINICIAN: "consent:clinician_sharing+psyche_monitoring"},
    A.PROGRAM_READ: {R.CLIENT: OWN, R.TECHNICIAN: ALLOW, R.AUDITOR: ALLOW, R.ADMIN: ALLOW, R.CLINICIAN: SHARED},
    A.PROGRAM_CHANGE: {R.TECHNICIAN: ALLOW, R.ADMIN: ALLOW},
    A.DECISIONS_READ: {R.CLIENT: OWN, R.TECHNICIAN: ALLOW, R.AUDITOR: ALLOW, R.ADMIN: ALLOW, R.CLINICIAN: SHARED},
    A.JOURNAL_READ: {R.CLIENT: OWN, R.CLINICIAN: SHARED},
    A.JOURNAL_WRITE: {R.CLIENT: OWN},
    A.CONSENT_READ: {R.CLIENT: OWN, R.TECHNICIAN: ALLOW, R.AUDITOR: ALLOW, R.ADMIN: ALLOW, R.CLINICIAN: SHARED},
    A.CONSENT_CHANGE: {R.CLIENT: OWN, R.ADMIN: ALLOW},
    A.CLIENT_CREATE: {R.TECHNICIAN: ALLOW, R.ADMIN: ALLOW},
    A.CLIENT_READ: {R.CLIENT: OWN, R.TECHNICIAN: ALLOW, R.ADMIN: ALLOW, R.CLINICIAN: SHARED},
    A.CLIENT_EXPORT: {R.CLIENT: OWN, R.ADMIN: ALLOW},
    A.CLIENT_ERASE: {R.CLIENT: OWN, R.ADMIN: ALLOW},
    A.RESEARCH_EXPORT: {R.AUDITOR: "consent:research", R.ADMIN: "consent:research"},
    A.AUDIT_READ: {R.CLIENT: OWN, R.AUDITOR: ALLOW, R.ADMIN: ALLOW},
    A.AUDIT_VERIFY: {R.AUDITOR: ALLOW, R.ADMIN: ALLOW},
    A.USER_MANAGE: {R.ADMIN: ALLOW},
}
del A, R


@dataclass(frozen=True)
class Principal:
    """Who is asking: a name for the audit log, a role, and for clients their client id."""

    name: str
    role: Role
    client_id: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        if self.role is Role.CLIENT:
            return f"client:{self.client_id}"
        if self.role is Role.BREAK_GLASS:
            return f"break-glass:{self.name}"
        return self.name


SYSTEM = Principal("system", Role.ADMIN)
"""The facility itself (automated decisions)."""


@dataclass(frozen=True)
class Verdict:
    """The policy's answer, with the reason in words."""

    allowed: bool
    reason: str


def parse_action(value: str | Action) -> Action:
    """An :class:`Action` from its name, with a suggestion for a typo."""
    try:
        return Action(value)
    except ValueError:
        names = [a.value for a in Action]
        raise InvalidInputError(f"Unknown action '{value}'.{did_you_mean(str(value), names)}") from None


def parse_role(value: str | Role) -> Role:
    """A :class:`Role` from its name, with a suggestion for a typo."""
    try:
        return Role(value)
    except ValueError:
        names = [r.value for r in Role]
        raise InvalidInputError(
            f"Unknown role '{value}'.{did_you_mean(str(value), names)} Roles: {', '.join(names)}."
        ) from None


def rule_for(role: Role, action: Action) -> str:
    """The rule of one cell of the policy table."""
    return POLICY.get(action, {}).get(role, DENY)


def authorize(
    principal: Principal,
    action: Action | str,
    *,
    client_id: str | None = None,
    client_scopes: Iterable[str] = (),
) -> Verdict:
    """Decide whether ``principal`` may do ``action`` (about the client ``client_id``, with its consent scopes)."""
    act = parse_action(action)
    rule = rule_for(principal.role, act)
    who = f"{principal.role.value} '{principal.name}'"
    if rule == ALLOW:
        return Verdict(True, f"{who} may {act.value}")
    if rule == OWN:
        if client_id is not None and principal.client_id == client_id:
            return Verdict(True, f"{who} may {act.value} on their own data")
        return Verdict(False, f"{who} may {act.value} only on their own data")
    if rule.startswith("consent:"):
        need = rule.split(":", 1)[1].split("+")
        named = " and ".join(f"'{n}'" for n in need)
        if client_id is not None and set(need) <= set(client_scopes):
            return Verdict(True, f"{who} may {act.value}: the client granted {named}")
        return Verdict(False, f"{who} may {act.value} only when the client has granted {named} consent")
    return Verdict(False, f"{who} may not {act.value}")


def require(
    principal: Principal,
    action: Action | str,
    *,
    client_id: str | None = None,
    client_scopes: Iterable[str] = (),
) -> Verdict:
    """:func:`authorize`, raising :class:`AccessDenied` with the reason when refused."""
    v = authorize(principal, action, client_id=client_id, client_scopes=client_scopes)
    if not v.allowed:
        raise AccessDenied(f"Refused: {v.reason}. Ask an admin if you need this access.")
    return v
