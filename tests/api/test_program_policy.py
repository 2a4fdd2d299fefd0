"""The anti-exploitation policy in the API: a program check or upload that sells or answers distress loudly is
refused with the reason; a live program change that does so is refused by the running bed's guard."""

from pathlib import Path

import yaml

PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes" / "deep-sleep.yaml"


def _exploiting() -> str:
    doc = yaml.safe_load(PROGRAM.read_text())
    doc["scenes"]["settle"]["cues"] = [{"text": "Upgrade to premium tonight.", "level_db": -40, "kind": "incubation"}]
    doc["on_distress"] = {"play": "rain", "level_db": -20, "for_min": 5}
    return yaml.safe_dump(doc)


def test_check_and_upload_refuse_a_program_that_exploits(facility):
    r = facility.post("/api/programs/check", json={"text": _exploiting()})
    assert r.status_code == 200 and not r.json()["ok"]
    messages = " ".join(e["message"] for e in r.json()["errors"])
    assert "anti-exploitation policy (cue_advertises)" in messages and "distress_too_loud" in messages
    client_id = facility.service.beds()[1]["client_id"]
    up = facility.post("/api/programs", json={"client_id": client_id, "text": _exploiting()})
    assert up.status_code == 422
    assert facility.post("/api/programs/check", json={"text": PROGRAM.read_text()}).json()["ok"]


def test_a_live_change_that_exploits_is_refused_and_the_bed_keeps_its_program(facility):
    bed = next(b for b in facility.service.beds() if not b["natural"])
    sid = bed["session"]
    r = facility.client.put(f"/api/sessions/{sid}/program", headers=facility.auth("technician"),
                            json={"text": _exploiting()})
    assert r.status_code == 200 and not r.json()["ok"]
    assert any("anti-exploitation policy" in e["message"] for e in r.json()["errors"]), r.json()
    assert facility.service.bed(sid)["program"] == bed["program"]
    facility.service.advance(5.0)
    assert any(d["kind"] == "program_rejected" for d in facility.service.decisions(sid))
