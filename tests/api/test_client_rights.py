"""A client's rights over the API: consent, dream journal, export and erasure, each through the guard's policy."""

import io
import json
import zipfile

from nexus.store.audit import entries


def test_a_client_reads_and_changes_their_consent_and_keeps_a_private_journal(facility):
    me = facility.service.beds()[0]["client_id"]
    r = facility.get(f"/api/clients/{me}/consent", role="client")
    assert r.status_code == 200 and "dependency" in r.json() and "weaning_plan" in r.json()
    r = facility.post(f"/api/clients/{me}/consent", role="client", json={"grant": ["clinician_sharing"]})
    assert r.status_code == 200 and "clinician_sharing" in r.json()["after"]
    bad = facility.post(f"/api/clients/{me}/consent", role="client", json={"grant": ["telepathy"]})
    assert bad.status_code == 422 and "Unknown consent scope 'telepathy'" in bad.json()["detail"]
    assert facility.post(f"/api/clients/{me}/journal", role="client", json={"text": "A green door."}).status_code \
        == 201
    assert [e["text"] for e in facility.get(f"/api/clients/{me}/journal", role="client").json()] == ["A green door."]
    for role in ("technician", "auditor", "admin"):
        assert facility.get(f"/api/clients/{me}/journal", role=role).status_code == 403
    with facility.store.session() as s:
        denied = [e.payload["action"] for e in entries(s, action_prefix="access.denied")]
        texts = json.dumps([e.payload for e in entries(s)])
    assert denied.count("journal.read") == 3 and "green door" not in texts
    assert facility.get("/api/clients/nobody/consent").status_code == 404


def test_export_then_erase_after_the_night_is_extracted(facility):
    bed = facility.service.beds()[1]
    cid, sid = bed["client_id"], bed["session"]
    r = facility.get(f"/api/clients/{cid}/export", role="admin")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert "manifest.json" in z.namelist() and json.loads(z.read("client.json"))["id"] == cid
    assert facility.get(f"/api/clients/{cid}/export", role="technician").status_code == 403
    running = facility.post(f"/api/clients/{cid}/erase", role="admin")
    assert running.status_code == 409 and "extract" in running.json()["detail"].lower()
    assert facility.post(f"/api/sessions/{sid}/extract").status_code == 200
    done = facility.post(f"/api/clients/{cid}/erase", role="admin")
    assert done.status_code == 200 and done.json()["sessions"] >= 1
    again = facility.get(f"/api/clients/{cid}/export", role="admin")
    z = zipfile.ZipFile(io.BytesIO(again.content))
    assert json.loads(z.read("client.json"))["erased_at"] and json.loads(z.read("sessions.json")) == []
