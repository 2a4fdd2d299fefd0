"""``nexus run --source replay:`` follows its clients' consent, as the synthetic facility does (the consent desk).

A bed mapped to its client and a bed given to its client mid-night both follow a consent change made in the
database (``nexus client consent``, the API): a scope taken back reaches the running bed at its next step; a
client who withdraws ``recording`` ends the night of that bed at once (nothing more recorded), the other
beds record on.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from nexus.facility.floor import BedMap
from nexus.facility.floor_service import FloorService, wait_for_beds
from nexus.facility.record import assign_bed
from nexus.formats.edf import read_edf
from nexus.guard.policy import SYSTEM
from nexus.sources.spec import parse_source
from nexus.store.clients import set_consent
from nexus.store.models import Client, DecisionRow, NightSession


@pytest.mark.slow
def test_real_beds_follow_their_clients_consent(store, tmp_path, replay_nights, wait_until):
    nights = replay_nights("ward-a", "ward-b")
    with store.session() as s:
        s.add(Client(code="C-7", consent_scopes=["recording", "psyche_monitoring"]))
        s.add(Client(code="C-8", consent_scopes=["recording"]))
    service = FloorService(store, source=parse_source(f"replay:{nights}:speed=10"),
                           bed_map=BedMap({str((nights / "ward-a.edf").resolve()): ("C-7", None)}),
                           data_dir=tmp_path / "d", events=False, run_id="cf")
    service.start(background=True)
    try:
        assert wait_for_beds(service, 2) == 2
        assert service.consent is not None
        service.consent.poll_s = 0.0  # read the database after every lane step (live: once a second)
        beds = {b["bed"]: b for b in service.beds()}
        a, b = beds["ward-a"]["session"], beds["ward-b"]["session"]
        assert beds["ward-b"]["unassigned"] and not beds["ward-a"]["unassigned"]
        assert "psyche_monitoring" in service.sup.sessions[a].scopes
        set_consent(store, SYSTEM, "C-7", revoke=["psyche_monitoring"])
        wait_until(lambda: "psyche_monitoring" not in service.sup.sessions[a].scopes, 20.0,
                   "the scope taken back at its next step")
        client_id = assign_bed(store, b, "C-8")  # the technician gives ward-b to its client (as the API does)
        service.assigned(b, "C-8", client_id)
        wait_until(lambda: service.bed(b)["t_s"] > 20.0, 20.0, "20 s of ward-b")
        set_consent(store, SYSTEM, "C-8", revoke=["recording"])
        wait_until(lambda: service.bed(b)["state"] == "ended", 20.0, "ward-b to end at once")
        assert service.bed(a)["state"] == "running"  # ward-a records on
        t_a = service.bed(a)["t_s"]
        wait_until(lambda: service.bed(a)["t_s"] > t_a + 10.0, 20.0, "10 s more of ward-a")
    finally:
        service.stop()
    with store.session() as s:
        kinds = {sid: set(s.scalars(select(DecisionRow.kind).where(DecisionRow.session_id == sid)).all())
                 for sid in (a, b)}
        t_end = s.scalars(select(DecisionRow.t_s).where(DecisionRow.session_id == b,
                                                        DecisionRow.kind == "consent_withdrawn")).one()
        rows = {r.id: r for r in s.scalars(select(NightSession).where(NightSession.facility_run_id == "cf"))}
    assert "consent_changed" in kinds[a] and "consent_withdrawn" in kinds[b], kinds
    assert {r.state.value for r in rows.values()} == {"ended"}
    got_b = read_edf(service.recordings[b]).signals[0].data.size / 100.0
    got_a = read_edf(service.recordings[a]).signals[0].data.size / 100.0
    # nothing of ward-b recorded after its client withdrew 'recording' (one tick of replay and the EDF's last
    # record at most); ward-a recorded on
    assert 20.0 < t_end <= got_b <= t_end + 5.0 and got_a > t_end + 10.0, (t_end, got_b, got_a)
