"""The live facility's automated decisions go into the decision table and the tamper-evident audit chain."""

from sqlalchemy import func, select, update

from nexus.core.settings import load_settings
from nexus.store.audit import entries, verify
from nexus.store.models import AuditEntry, DecisionRow


def test_every_decision_of_an_ended_bed_is_audited_and_the_chain_verifies(facility):
    bed = next(b for b in facility.service.beds() if not b["natural"])
    sid = bed["session"]
    facility.service.advance(120.0)
    assert facility.post(f"/api/sessions/{sid}/extract").status_code == 200
    with facility.store.session() as s:
        stored = s.scalar(select(func.count()).select_from(DecisionRow).where(DecisionRow.session_id == sid))
        audited = entries(s, subjects=[sid], action_prefix="decision.")
        ended = entries(s, subjects=[sid], action_prefix="session.ended")
    assert stored > 0
    assert len(audited) == stored  # one audit entry per stored decision, no more, no less
    assert all(e.actor == "system" for e in audited)
    assert len(ended) == 1 and "technician" in ended[0].payload["reason"]
    key = load_settings().secret_key
    assert verify(facility.store, key).ok


def test_the_stopped_facility_signs_its_head_and_a_rewritten_decision_is_caught(facility):
    facility.service.advance(120.0)
    facility.service.stop()
    key = load_settings().secret_key
    assert verify(facility.store, key).ok
    with facility.store.session() as s:
        seq = s.scalars(select(AuditEntry.seq).where(AuditEntry.action.startswith("decision."))).first()
        assert seq is not None
        s.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(action="decision.nothing"))
    report = verify(facility.store, key)
    assert not report.ok and report.first_bad_seq == seq
