"""The REST API against a live facility on a manual clock: reads, alarms, extraction, programs, bad input."""

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from nexus.monitor.glitch import Glitch
from nexus.store.models import Client, GlitchRow, HypnogramRow, NightSession, StaffUser

BEDS = 4
PASSWORD = "correct horse battery staple"

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes"


def test_health_and_openapi_need_no_token(facility):
    c = facility.client
    assert c.get("/api/health").json()["status"] == "ok"
    spec = c.get("/openapi.json").json()
    for path in ("/api/beds", "/api/sessions/{session}/hypnogram", "/api/glitches/{glitch_id}/acknowledge",
                 "/api/programs", "/api/clients"):
        assert path in spec["paths"]


def test_login_gives_a_token_that_works_and_a_wrong_password_is_refused(facility):
    c = facility.client
    bad = c.post("/api/auth/login", json={"username": "technician", "password": "wrong password!!"})
    assert bad.status_code == 401
    ok = c.post("/api/auth/login", json={"username": "technician", "password": PASSWORD})
    assert ok.status_code == 200 and ok.json()["role"] == "technician"
    me = c.get("/api/auth/me", headers={"Authorization": f"Bearer {ok.json()['token']}"})
    assert me.json() == {"name": "technician", "role": "technician", "client_id": None}


def test_floor_shows_every_bed_with_its_live_stage(facility):
    beds = facility.get("/api/beds").json()
    assert len(beds) == BEDS
    assert len({b["session"] for b in beds}) == BEDS
    for b in beds:
        assert b["state"] == "running"
        assert b["epochs"] == 3  # 95 s: three closed 30-s epochs
        assert b["stage"] in range(5)
        assert b["probs"] is not None and sum(b["probs"]) == pytest.approx(1.0, abs=1e-3)
        assert b["stage_label"] in ("W", "N1", "N2", "N3", "R")
    assert sum(b["natural"] for b in beds) >= 1  # plan_beds keeps a share of natural nights
    assert all(b["lease"] == ("none" if b["natural"] else "held") for b in beds)


def test_hypnogram_grows_as_the_night_goes_on(facility):
    sid = facility.service.beds()[0]["session"]
    before = facility.get(f"/api/sessions/{sid}/hypnogram").json()
    assert len(before["stages"]) == 3 and all(s in range(5) for s in before["stages"])
    assert [round(sum(p), 2) for p in before["hypnodensity"]] == [1.0, 1.0, 1.0]
    facility.service.advance(60.0)
    after = facility.get(f"/api/sessions/{sid}/hypnogram").json()
    assert len(after["stages"]) == 5
    assert after["stages"][:3] == before["stages"]


def test_session_detail_and_list(facility):
    sid = facility.service.beds()[2]["session"]
    d = facility.get(f"/api/sessions/{sid}").json()
    assert d["state"] == "running" and d["live"]["session"] == sid
    listed = facility.get("/api/sessions").json()
    assert {s["id"] for s in listed} == {b["session"] for b in facility.service.beds()}


def test_a_glitch_becomes_an_alarm_that_a_technician_acknowledges(facility):
    faulty = facility.service.beds()[1]["session"]
    open_ = facility.get("/api/glitches?open=true").json()
    assert [(a["session"], a["kind"], a["priority"]) for a in open_] == [(faulty, "bad_samples", "low")]
    beds = {b["session"]: b for b in facility.get("/api/beds").json()}
    assert beds[faulty]["alarm"] == "low"
    assert all(b["alarm"] == "none" for s, b in beds.items() if s != faulty)

    gid = open_[0]["id"]
    assert facility.post(f"/api/glitches/{gid}/acknowledge", role="auditor").status_code == 403
    r = facility.post(f"/api/glitches/{gid}/acknowledge")
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "technician"
    assert facility.get("/api/glitches?open=true").json() == []
    assert facility.get(f"/api/sessions/{faulty}").json()["live"]["alarm"] == "none"
    with facility.store.session() as s:
        row = s.get(GlitchRow, gid)
        tech = s.scalars(select(StaffUser).where(StaffUser.username == "technician")).one()
        assert row.acknowledged_at is not None and row.acknowledged_by == tech.id


def test_the_highest_open_alarm_colours_the_bed_and_psyche_detail_needs_consent(facility):
    bed = facility.service.beds()[3]
    sid = bed["session"]
    with facility.store.session() as s:  # synthetic clients grant psyche_monitoring at random: this one does not
        client = s.get(Client, bed["client_id"])
        client.consent_scopes = [c for c in client.consent_scopes or [] if c != "psyche_monitoring"]
    facility.service.raise_glitch(Glitch(sid, 90.0, "clock_skew", "Timestamps went back."))
    facility.service.raise_glitch(Glitch(sid, 91.0, "distress", "Heart rate up 30 bpm with fast breathing."))
    bed = facility.get(f"/api/sessions/{sid}").json()["live"]
    assert bed["alarm"] == "high"
    msgs = {a["kind"]: a["message"] for a in facility.get(f"/api/glitches?session={sid}").json()}
    assert msgs["clock_skew"] == "Timestamps went back."
    # the synthetic clients granted no psyche_monitoring consent: staff see that there is an alarm, not its detail
    assert "consent" in msgs["distress"] and "Heart rate" not in msgs["distress"]
    high = next(a for a in facility.get("/api/glitches?open=true").json() if a["kind"] == "distress")
    facility.post(f"/api/glitches/{high['id']}/acknowledge")
    assert facility.get(f"/api/sessions/{sid}").json()["live"]["alarm"] == "medium"


def test_an_episode_closing_updates_its_alarm_instead_of_raising_another(facility):
    sid = facility.service.beds()[0]["session"]
    facility.service.raise_glitch(Glitch(sid, 80.0, "flat_line", "EEG holds one value.", channel="EEG C4-M1"))
    facility.service.raise_glitch(Glitch(sid, 80.0, "flat_line", "EEG holds one value.", channel="EEG C4-M1",
                                         duration_s=12.0))
    alarms = facility.get(f"/api/glitches?session={sid}").json()
    assert [a["kind"] for a in alarms] == ["flat_line"]
    with facility.store.session() as s:
        assert s.get(GlitchRow, alarms[0]["id"]).duration_s == 12.0


def test_extraction_ends_the_bed_in_the_safe_state_and_writes_the_night(facility):
    bed = next(b for b in facility.service.beds() if not b["natural"])
    sid = bed["session"]
    assert facility.post(f"/api/sessions/{sid}/extract", role="auditor").status_code == 403
    r = facility.post(f"/api/sessions/{sid}/extract")
    assert r.status_code == 200
    out = r.json()
    assert out["state"] == "ended" and out["lease"] == "safe"
    assert facility.post(f"/api/sessions/{sid}/extract").status_code == 409
    facility.service.advance(30.0)  # the others go on; the extracted bed stays where it was
    beds = {b["session"]: b for b in facility.get("/api/beds").json()}
    assert beds[sid]["epochs"] == 3
    assert all(b["epochs"] == 4 for s, b in beds.items() if s != sid)
    with facility.store.session() as s:
        row = s.get(NightSession, sid)
        assert row.state.value == "ended" and "technician" in row.end_reason
        hyp = s.scalars(select(HypnogramRow).where(HypnogramRow.session_id == sid)).one()
        assert len(hyp.stages) == 3


def test_extract_all_ends_every_bed(facility):
    assert facility.post("/api/facility/extract-all", role="auditor").status_code == 403
    r = facility.post("/api/facility/extract-all", role="admin")
    assert r.json() == {"ordered": BEDS, "ended": BEDS, "mode": None}
    assert {b["state"] for b in facility.get("/api/beds").json()} == {"ended"}
    with facility.store.session() as s:
        assert {r.state.value for r in s.scalars(select(NightSession))} == {"ended"}


def test_program_upload_runs_the_dreamscape_checks(facility):
    client_id = facility.service.beds()[0]["client_id"]
    text = (EXAMPLES / "deep-sleep.yaml").read_text()
    r1 = facility.post("/api/programs", json={"client_id": client_id, "text": text})
    assert r1.status_code == 201, r1.text
    r2 = facility.post("/api/programs", json={"client_id": client_id, "text": text})
    assert (r1.json()["version"], r2.json()["version"]) == (1, 2)
    loud = text.replace("deep-sleep", "too-loud") + "\nlimits:\n  max_level_db: 40\n"
    bad = facility.post("/api/programs", json={"client_id": client_id, "text": loud})
    assert bad.status_code == 422
    assert bad.json()["ok"] is False and bad.json()["errors"]
    assert facility.post("/api/programs", role="auditor", json={"client_id": client_id, "text": text}).status_code \
        == 403
    got = facility.get(f"/api/programs/{r1.json()['id']}").json()
    assert got["body"]["name"] == r1.json()["name"]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("post", "/api/auth/login", "{not json", {"Content-Type": "application/json"}, 422),
        ("post", "/api/programs/check", "text: x", {"Content-Type": "text/plain"}, 422),
        ("get", "/api/sessions/no-such-session", None, {}, 404),
        ("get", "/api/sessions/no-such-session/hypnogram", None, {}, 404),
        ("post", "/api/glitches/999999/acknowledge", None, {}, 404),
        ("get", "/api/clients/nobody", None, {}, 404),
        ("post", "/api/programs/check", "x" * 1_000_001, {"Content-Type": "application/json"}, 413),
    ],
    ids=["malformed-json", "wrong-content-type", "unknown-session", "unknown-hypnogram", "unknown-alarm",
         "unknown-client", "oversized"],
)
def test_bad_input_gets_a_clear_4xx(facility, method, path, body, headers, status):
    r = facility.client.request(method.upper(), path, content=body, headers={**facility.auth("admin"), **headers})
    assert r.status_code == status
    assert isinstance(r.json()["detail"], str | list) and r.json()["detail"]
    # the facility did not notice
    facility.service.advance(30.0)
    assert all(b["epochs"] == 4 for b in facility.service.beds())


def test_program_check_reports_errors_without_storing(facility):
    r = facility.post("/api/programs/check", json={"text": "name: [unclosed"})
    assert r.status_code == 200 and r.json()["ok"] is False
    assert "Malformed YAML" in json.dumps(r.json()["errors"])
