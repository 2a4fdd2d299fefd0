"""Route × role: every route refuses a missing or forged token; each role gets what the guard's policy says.

The clinician is tried twice: about a client who does not share with clinicians, and (``clinician+shared``)
about one who granted ``clinician_sharing``.
"""

import pytest

from nexus.guard.policy import SYSTEM
from nexus.store.clients import set_consent

STAFF = {"technician", "auditor", "admin"}
EVERYONE = STAFF | {"client", "clinician", "clinician+shared"}
SHARED = {"clinician+shared"}  # a clinician reads what a client shares, never a list of everyone
OPEN = {("GET", "/api/health"), ("POST", "/api/auth/login"), ("POST", "/api/auth/client/login"),
        ("POST", "/api/auth/client/enrol")}


def _bodies(facility):
    other = facility.service.beds()[1]["client_id"]
    return {
        ("POST", "/api/programs"): {"client_id": other, "text": "name: x"},
        ("POST", "/api/programs/check"): {"text": "name: x"},
        ("PUT", "/api/sessions/{session}/program"): {"text": "name: x"},
        ("POST", "/api/clients/{client}/consent"): {"grant": ["research"]},
        ("POST", "/api/clients/{client}/journal"): {"text": "a dream"},
        ("POST", "/api/sessions/{session}/assign"): {"client": "C-nobody"},
    }


def _routes(client):
    """Every documented route (from the app's own OpenAPI) but health and login."""
    spec = client.get("/openapi.json").json()
    return [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if (m.upper(), p) not in OPEN]


def _bed(facility):
    """The bed the routes are tried on: not the client principal's, with a program."""
    return next(b for b in facility.service.beds()[1:] if not b["natural"])


def _fill(path, facility):
    from sqlalchemy import select

    from nexus.store.models import DreamscapeProgram

    bed = _bed(facility)
    with facility.store.session() as s:
        prog = s.scalars(select(DreamscapeProgram.id).where(DreamscapeProgram.client_id == bed["client_id"])).one()
    return (path.replace("{session}", bed["session"]).replace("{client}", bed["client_id"])
            .replace("{program}", prog).replace("{glitch_id}", "1"))


def test_the_matrix_covers_every_route(facility):
    routes = _routes(facility.client)
    assert len(routes) >= 15
    assert sorted(routes) == sorted((m, p) for m, p, _ in MATRIX)


@pytest.mark.parametrize("token", [None, "nxt_forged-token", "garbage"], ids=["missing", "forged", "garbage"])
def test_every_route_refuses_a_missing_or_wrong_token(facility, token):
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    for method, path in _routes(facility.client):
        r = facility.client.request(method, _fill(path, facility), headers=headers,
                                    json=_bodies(facility).get((method, path)))
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers.get("www-authenticate") == "Bearer"


# (method, path, roles that are allowed) — the others must get 403; extract-all last (it ends every bed)
MATRIX = [
    ("GET", "/api/auth/me", EVERYONE),
    ("GET", "/api/beds", STAFF | {"client", "clinician"} | SHARED),  # a client: their own; a clinician: shared
    ("GET", "/api/facility", STAFF | {"clinician"} | SHARED),  # a clinician: the shared clients' beds counted
    ("GET", "/api/sessions", STAFF | {"client", "clinician"} | SHARED),  # a client: their own; a clinician: shared
    ("GET", "/api/sessions/{session}", STAFF | SHARED),
    ("GET", "/api/sessions/{session}/hypnogram", {"technician", "admin"} | SHARED),
    ("GET", "/api/sessions/{session}/events", {"technician", "admin"} | SHARED),
    ("GET", "/api/sessions/{session}/decisions", STAFF | SHARED),
    ("PUT", "/api/sessions/{session}/program", {"technician", "admin"}),
    ("GET", "/api/sessions/{session}/report", {"technician", "admin"} | SHARED),  # the night so far
    ("GET", "/api/clients", {"technician", "admin", "client", "clinician"} | SHARED),  # a clinician: who shares
    ("GET", "/api/clients/{client}", {"technician", "admin"} | SHARED),
    ("GET", "/api/clients/{client}/consent", STAFF | SHARED),
    ("POST", "/api/clients/{client}/consent", {"admin"}),
    ("GET", "/api/clients/{client}/journal", SHARED),  # the client's own (the client principal is another client)
    ("POST", "/api/clients/{client}/journal", set()),
    ("GET", "/api/clients/{client}/export", {"admin"}),
    ("POST", "/api/clients/{client}/erase", {"admin"}),  # allowed, then refused: the session runs (409)
    ("POST", "/api/clients/{client}/invitation", {"admin"}),
    ("GET", "/api/programs", STAFF | {"client", "clinician"} | SHARED),
    ("GET", "/api/programs/{program}", STAFF | SHARED),
    ("POST", "/api/programs", {"technician", "admin"}),
    ("POST", "/api/programs/check", {"technician", "admin"}),
    ("GET", "/api/glitches", STAFF | {"client", "clinician"} | SHARED),
    ("POST", "/api/glitches/{glitch_id}/acknowledge", {"technician", "admin"}),
    ("POST", "/api/sessions/{session}/assign", {"technician", "admin"}),  # allowed, then 409: not unassigned
    ("POST", "/api/sessions/{session}/extract", {"technician", "admin"}),
    ("POST", "/api/facility/extract-all", {"technician", "admin"}),
]


def _wrong_answers(facility, role):
    """(method, path, status) of every route whose answer to ``role`` contradicts :data:`MATRIX`."""
    wrong = []
    bodies = _bodies(facility)
    headers = facility.auth(role.split("+")[0])
    for method, path, allowed in MATRIX:
        r = facility.client.request(method, _fill(path, facility), headers=headers,
                                    json=bodies.get((method, path)))
        # allowed: anything but 401/403 (a failed program check is 422 after the policy let it through)
        if (r.status_code == 403) == (role in allowed) or r.status_code == 401:
            wrong.append((method, path, r.status_code))
    return wrong


@pytest.mark.parametrize("role", ["technician", "auditor", "admin", "client", "clinician"])
def test_each_role_gets_what_the_policy_allows(facility, role):
    if role != "clinician":
        assert _wrong_answers(facility, role) == []
        return
    # one facility for both of the clinician's cases (CI time): before and after the client shares
    assert _wrong_answers(facility, "clinician") == []
    assert facility.get("/api/clients", role="clinician").json() == []  # nobody shares yet
    for path in ("/api/sessions", "/api/beds", "/api/glitches", "/api/programs"):
        assert facility.get(path, role="clinician").json() == [], path
    st = facility.get("/api/facility", role="clinician").json()
    assert (st["clients"], st["running"], st["run_id"]) == (0, 0, "t")
    sharing = _bed(facility)["client_id"]
    set_consent(facility.store, SYSTEM, sharing, grant=["clinician_sharing"], revoke=[])
    assert _wrong_answers(facility, "clinician+shared") == []
    assert [c["id"] for c in facility.get("/api/clients", role="clinician").json()] == [sharing]
    bed = _bed(facility)["session"]
    assert [s["id"] for s in facility.get("/api/sessions", role="clinician").json()] == [bed]
    assert [b["session"] for b in facility.get("/api/beds", role="clinician").json()] == [bed]
    assert [facility.get("/api/facility", role="clinician").json()[k] for k in ("clients", "running")] == [1, 1]
    progs = facility.get("/api/programs", role="clinician").json()
    assert progs and {p["client_id"] for p in progs} == {sharing}
    alarms = [g["id"] for g in facility.get("/api/glitches", role="technician").json() if g["session"] == bed]
    assert [g["id"] for g in facility.get("/api/glitches", role="clinician").json()] == alarms


def test_a_client_sees_only_their_own_bed_and_data(facility):
    mine = facility.service.beds()[0]
    beds = facility.get("/api/beds", role="client").json()
    assert [b["session"] for b in beds] == [mine["session"]]
    assert facility.get(f"/api/sessions/{mine['session']}/hypnogram", role="client").status_code == 200
    assert [c["id"] for c in facility.get("/api/clients", role="client").json()] == [mine["client_id"]]
