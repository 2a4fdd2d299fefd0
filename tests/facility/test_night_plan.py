"""The facility decides each night from consent and history, and follows consent changes mid-night.

start_rows (used by ``nexus simulate`` and ``nexus run``) plans tonight with plan_tonight from the client's
consent on record and earlier nights; the service's ConsentDesk hands a consent change to the running bed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from nexus.core.clock import ManualClock
from nexus.core.errors import StateError
from nexus.core.lifecycle import SessionState
from nexus.core.settings import load_settings
from nexus.dreamscape.presets import default_clas_program
from nexus.facility.records import start_rows
from nexus.facility.service import FacilityService
from nexus.facility.simulate import BedPlan
from nexus.guard.policy import SYSTEM
from nexus.store.audit import entries, verify
from nexus.store.clients import add_client, set_consent
from nexus.store.models import DecisionRow, NightSession, SessionMode

FULL = ["recording", "audio", "stimulation", "dream_incubation", "psyche_monitoring"]


def _returning_client(store, code: str, nights: int) -> str:
    """A client with ``nights`` ended, stimulated nights (clicks played) on consecutive days."""
    with store.session() as s:
        cid = add_client(s, code, scopes=FULL).id
        day0 = datetime(2026, 1, 1, 23, tzinfo=UTC)
        for k in range(nights):
            n = NightSession(id=f"{code}-old-{k}", client_id=cid, bed="bed-1", mode=SessionMode.STIMULATION,
                             state=SessionState.PREPARED, source="test")
            n.transition_to(SessionState.CALIBRATING)
            n.transition_to(SessionState.RUNNING)
            n.transition_to(SessionState.EXTRACTING)
            n.transition_to(SessionState.ENDED, reason="night over")
            n.started_at = day0 + timedelta(days=k)
            s.add(n)
            s.flush()
            s.add(DecisionRow(session_id=n.id, t_s=100.0, kind="click", command={}, inputs={}, reason="test"))
    return cid


def test_a_returning_client_gets_a_natural_night_after_six_stimulated_ones(store):
    prog = default_clas_program()
    _returning_client(store, "C-back", 6)
    beds = [BedPlan("n-1", "C-back", 1, "typical_adult", prog, scopes=FULL),
            BedPlan("n-2", "C-new", 2, "typical_adult", prog, scopes=FULL)]
    start_rows(store, beds)
    assert beds[0].program is None  # the schedule made tonight record-only
    assert beds[1].program is prog  # a new client's first night plays the program as written
    assert any("natural night" in r["why"] for r in beds[0].reasons)
    with store.session() as s:
        assert s.get(NightSession, "n-1").mode == SessionMode.RECORD_ONLY
        assert s.get(NightSession, "n-2").mode == SessionMode.STIMULATION
        plans = {e.subject: e.payload for e in entries(s, action_prefix="night.plan")}
    assert plans["n-1"]["mode"] == "record_only" and "natural" in plans["n-1"]["natural"]
    assert plans["n-2"]["mode"] == "stimulation" and plans["n-2"]["scopes"] == FULL


def test_a_returning_client_runs_under_the_consent_on_record(store):
    prog = default_clas_program()
    cid = _returning_client(store, "C-quiet", 2)
    set_consent(store, SYSTEM, cid, revoke=["stimulation"])
    beds = [BedPlan("n-3", "C-quiet", 3, "typical_adult", prog, scopes=FULL)]  # the plan's scopes are not used
    start_rows(store, beds)
    assert "stimulation" not in beds[0].scopes
    assert beds[0].program is None  # a CLAS-only program without 'stimulation' plays nothing: record-only
    set_consent(store, SYSTEM, cid, revoke=["recording"])
    with pytest.raises(StateError, match="recording"):
        start_rows(store, [BedPlan("n-4", "C-quiet", 4, "typical_adult", prog, scopes=FULL)])
    with store.session() as s:
        assert s.get(NightSession, "n-4") is None  # nothing written


def test_a_consent_revoked_mid_night_reaches_the_running_bed(store, tmp_path):
    service = FacilityService(store, clients=4, clock=ManualClock(), data_dir=tmp_path, events=False, run_id="c")
    service.start()
    bed = next(b for b in service.beds() if not b["natural"] and "audio" in service._by_session[b["session"]]
               .plan.scopes)
    sid, cid = bed["session"], bed["client_id"]
    service.consent.poll_s = 0.0  # read the database after every lane step (the live default is once a second)
    service.advance(60.0)
    loop = service.sup.lanes[0].analyzer("dreamscape")
    slot = service.sup.sessions[sid].slot
    before = {k: int(v[slot]) for k, v in loop.counts.items()}
    set_consent(store, SYSTEM, cid, revoke=["audio"])
    service.advance(120.0)
    assert "audio" not in loop.guard.scopes(slot)
    after = {k: int(v[slot]) for k, v in loop.counts.items()}
    assert all(after[k] == before[k] for k in ("click", "cue", "scene", "protect", "wake"))  # nothing sounded
    service.stop()
    with store.session() as s:
        kinds = s.scalars(select(DecisionRow.kind).where(DecisionRow.session_id == sid)).all()
        audited = entries(s, subjects=[sid], action_prefix="decision.consent_changed")
    assert "consent_changed" in kinds and len(audited) == 1
    assert "audio" not in audited[0].payload["inputs"]["scopes"]
    assert verify(store, load_settings().secret_key).ok
