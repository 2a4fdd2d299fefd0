"""The authorisation matrix: every action × every role, each cell asserted against an independent table."""

import pytest

from nexus.core.errors import InvalidInputError
from nexus.guard.policy import (
    AccessDenied,
    Action,
    Principal,
    Role,
    authorize,
    parse_action,
    parse_role,
    require,
)

C, T, CL, AU, AD, BG = "client", "technician", "clinician", "auditor", "admin", "break_glass"
SH = "consent:clinician_sharing"
# what each role may do; "own" = only on their own client record, "consent:X" = only with the client's scope X.
# Written out again here (not read from POLICY) so that a change to the policy must be made twice, on purpose.
EXPECTED = {
    "session.read": {C: "own", T: "allow", AU: "allow", AD: "allow", BG: "allow", CL: SH},
    "session.start": {T: "allow", AD: "allow"},
    "session.extract": {C: "own", T: "allow", AD: "allow", BG: "allow"},
    "session.assign": {T: "allow", AD: "allow"},
    "signals.read": {C: "own", T: "allow", AD: "allow", CL: SH},
    "psyche.read": {C: "own", T: "consent:psyche_monitoring", AU: "consent:psyche_monitoring",
                    AD: "consent:psyche_monitoring", CL: "consent:clinician_sharing+psyche_monitoring"},
    "program.read": {C: "own", T: "allow", AU: "allow", AD: "allow", CL: SH},
    "program.change": {T: "allow", AD: "allow"},
    "decisions.read": {C: "own", T: "allow", AU: "allow", AD: "allow", CL: SH},
    "journal.read": {C: "own", CL: SH},
    "journal.write": {C: "own"},
    "consent.read": {C: "own", T: "allow", AU: "allow", AD: "allow", CL: SH},
    "consent.change": {C: "own", AD: "allow"},
    "client.create": {T: "allow", AD: "allow"},
    "client.read": {C: "own", T: "allow", AD: "allow", CL: SH},
    "client.export": {C: "own", AD: "allow"},
    "client.erase": {C: "own", AD: "allow"},
    "research.export": {AU: "consent:research", AD: "consent:research"},
    "audit.read": {C: "own", AU: "allow", AD: "allow"},
    "audit.verify": {AU: "allow", AD: "allow"},
    "user.manage": {AD: "allow"},
}
CELLS = [(a, r) for a in EXPECTED for r in (C, T, CL, AU, AD, BG)]
ALL_SCOPES = ["recording", "audio", "stimulation", "psyche_monitoring", "research", "clinician_sharing"]


def test_table_covers_every_action():
    assert set(EXPECTED) == {a.value for a in Action}


def _principal(role):
    return Principal("someone", Role(role), client_id="c1" if role == C else None)


@pytest.mark.parametrize(("action", "role"), CELLS, ids=[f"{a}-{r}" for a, r in CELLS])
def test_cell(action, role):
    rule = EXPECTED[action].get(role, "deny")
    p = _principal(role)
    own = authorize(p, action, client_id="c1", client_scopes=ALL_SCOPES).allowed
    other_no_consent = authorize(p, action, client_id="c2", client_scopes=[]).allowed
    other_with_consent = authorize(p, action, client_id="c2", client_scopes=ALL_SCOPES).allowed
    if rule == "allow":
        assert own and other_no_consent and other_with_consent
    elif rule == "own":
        assert own and not other_no_consent and not other_with_consent
    elif rule.startswith("consent:"):
        assert other_with_consent and not other_no_consent
        need = rule.split(":")[1].split("+")
        assert authorize(p, action, client_id="c2", client_scopes=need).allowed  # exactly these suffice
        for scope in need:  # and each is needed
            all_but = authorize(p, action, client_id="c2", client_scopes=[x for x in ALL_SCOPES if x != scope])
            assert not all_but.allowed and scope in all_but.reason
    else:
        assert not own and not other_no_consent and not other_with_consent


def test_refusals_say_why_and_raise():
    tech = Principal("tess", Role.TECHNICIAN)
    with pytest.raises(AccessDenied, match=r"technician 'tess' may not journal\.read"):
        require(tech, "journal.read", client_id="c1")
    auditor = Principal("audrey", Role.AUDITOR)
    with pytest.raises(AccessDenied, match=r"auditor 'audrey' may not program\.change"):
        require(auditor, Action.PROGRAM_CHANGE, client_id="c1")
    glass = Principal("tess", Role.BREAK_GLASS)
    assert require(glass, "session.extract").allowed
    with pytest.raises(AccessDenied, match=r"psyche\.read"):
        require(glass, "psyche.read", client_id="c1", client_scopes=ALL_SCOPES)
    with pytest.raises(AccessDenied, match="granted 'psyche_monitoring'"):
        require(tech, "psyche.read", client_id="c1")


def test_client_without_client_id_gets_nothing_of_others():
    assert not authorize(Principal("x", Role.CLIENT, client_id=None), "journal.read", client_id=None).allowed


def test_bad_names_are_refused_with_a_hint():
    with pytest.raises(InvalidInputError, match=r"Did you mean 'journal\.read'"):
        parse_action("journal.raed")
    with pytest.raises(InvalidInputError, match="Did you mean 'auditor'"):
        parse_role("auditr")
