"""POST /api/sessions/{session}/assign: an unassigned bed given to its client, as 'nexus assign' does."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nexus.api.app import create_app
from nexus.facility.floor_service import FloorService, wait_for_beds
from nexus.sources.spec import parse_source
from nexus.store.access import add_user, issue_token
from nexus.store.models import AuditEntry, Client, NightSession

PASSWORD = "correct horse battery staple"


@pytest.mark.slow
def test_a_technician_assigns_a_running_unassigned_bed(store, tmp_path, replay_nights):
    nights = replay_nights("amp3")
    with store.session() as s:
        s.add(Client(code="C-9", consent_scopes=["recording"]))
        s.add(Client(code="C-0", consent_scopes=["research"]))  # never consented to recording
        tokens = {}
        for role in ("technician", "auditor", "admin"):
            add_user(s, role, role, password=PASSWORD)
            tokens[role] = issue_token(s, username=role)
    service = FloorService(store, source=parse_source(f"replay:{nights}:speed=10"), data_dir=tmp_path / "d",
                           events=False, run_id="as")
    service.start(background=True)
    try:
        assert wait_for_beds(service, 1) == 1
        (bed,) = service.beds()
        assert bed["unassigned"]
        sess = bed["session"]
        placeholder = bed["client_id"]
        with TestClient(create_app(service, store)) as client:
            def post(role, code, session=sess):
                return client.post(f"/api/sessions/{session}/assign", json={"client": code},
                                   headers={"Authorization": f"Bearer {tokens[role]}"})

            r = post("auditor", "C-9")
            assert r.status_code == 403  # the policy: technicians and admins only
            assert post("technician", "C-404").status_code == 404
            r = post("technician", "C-0")
            assert r.status_code == 409 and "consented to 'recording'" in r.json()["detail"]
            assert post("technician", "C-9", session="no-such-session").status_code == 404
            r = post("technician", "C-9")
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["client_code"] == "C-9" and out["live"]["client_code"] == "C-9"
            assert not out["live"]["unassigned"] and out["live"]["state"] == "running"
            assert not service.bed(sess)["unassigned"]  # the console's view, too
            r = post("admin", "C-9")
            assert r.status_code == 409 and "already belongs to client C-9" in r.json()["detail"]
    finally:
        service.stop()
    with store.session() as s:
        row = s.get(NightSession, sess)
        assert s.get(Client, row.client_id).code == "C-9" and row.state.value == "ended"
        assert s.get(Client, placeholder) is None  # the placeholder client went with its last session
        audit = [(a.actor, a.action) for a in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
    assert ("auditor", "access.denied") in audit
    assert ("technician", "session.assigned") in audit
    assert audit.count(("technician", "session.assigned")) == 1
