"""Extraction modes through the API (the supervisor's extraction, as 'nexus extract' orders it)."""

from sqlalchemy import select

from nexus.store.audit import entries
from nexus.store.models import DecisionRow, NightSession


def _stimulated(facility):
    return next(b for b in facility.service.beds() if not b["natural"])


def test_immediate_wake_silences_at_once_then_ends_the_session_when_the_wake_is_over(facility):
    sid = _stimulated(facility)["session"]
    r = facility.post(f"/api/sessions/{sid}/extract?mode=immediate")
    assert r.status_code == 200, r.text
    bed = r.json()
    assert bed["extraction"]["mode"] == "immediate" and bed["extraction"]["safe"] is True
    assert bed["state"] == "running"  # the wake sound plays: the session ends once it is over
    facility.service.advance(90.0)
    bed = facility.get(f"/api/sessions/{sid}").json()
    assert bed["state"] == "ended" and bed["live"]["state"] == "ended"
    assert "immediate" in bed["end_reason"]
    with facility.store.session() as s:
        kinds = set(s.scalars(select(DecisionRow.kind).where(DecisionRow.session_id == sid)))
        audited = {e.action for e in entries(s, subjects=[sid], action_prefix="decision.")}
        staff = [e for e in entries(s, action_prefix="session.extract") if e.payload.get("session") == sid]
    assert "extraction_order" in kinds and {f"decision.{k}" for k in kinds} <= audited
    assert len(staff) == 1 and staff[0].payload["mode"] == "immediate" and staff[0].actor.endswith("technician")


def test_release_keeps_recording_silent_and_a_later_gentle_order_takes_over(facility):
    sid = _stimulated(facility)["session"]
    before = facility.get(f"/api/sessions/{sid}").json()["live"]["epochs"]
    bed = facility.post(f"/api/sessions/{sid}/extract?mode=release").json()
    assert bed["extraction"]["mode"] == "release" and bed["lease"] in ("safe", "none")
    played = dict(bed["commands"])
    facility.service.advance(60.0)
    live = facility.get(f"/api/sessions/{sid}").json()["live"]
    assert live["state"] == "running" and live["epochs"] == before + 2  # the night records on
    assert {k: v for k, v in live["commands"].items() if k in ("click", "cue")} == \
        {k: v for k, v in played.items() if k in ("click", "cue")}  # nothing more was played
    # conflicting orders resolve to the safest: a gentle wake takes over the release
    bed = facility.post(f"/api/sessions/{sid}/extract?mode=gentle").json()
    assert bed["extraction"]["mode"] == "gentle" and bed["extraction"]["requested"] == "gentle"


def test_extract_all_with_a_mode_orders_every_running_bed(facility):
    r = facility.post("/api/facility/extract-all?mode=release", role="admin")
    assert r.status_code == 200
    assert r.json() == {"ordered": 4, "ended": 0, "mode": "release"}
    beds = facility.get("/api/beds").json()
    assert {b["extraction"]["mode"] for b in beds} == {"release"}
    assert all(b["lease"] in ("safe", "none") for b in beds)


def test_an_unknown_mode_is_refused_and_nothing_is_extracted(facility):
    sid = _stimulated(facility)["session"]
    r = facility.post(f"/api/sessions/{sid}/extract?mode=slowly")
    assert r.status_code == 422 and "gentle" in r.text
    assert facility.get(f"/api/sessions/{sid}").json()["live"]["extraction"] is None
    with facility.store.session() as s:
        assert s.get(NightSession, sid).state.value == "running"


def test_the_feed_ends_on_the_ended_view_of_a_woken_bed(facility):
    import json

    sid = _stimulated(facility)["session"]
    sub = facility.service.subscribe()
    facility.service.extract(sid, "test", mode="immediate")
    facility.service.advance(30.0)
    views = []
    while (m := sub.get()) is not None:
        msg = json.loads(m)
        views += [b for b in msg.get("beds", []) if b["session"] == sid]
    assert "ended" in [v["state"] for v in views]
    assert views[-1]["state"] == "ended"  # no stale 'running' view after it


def test_status_reports_the_live_loop_step_p99(facility):
    st = facility.get("/api/facility").json()
    assert st["tick_ms_p99"] is not None and st["tick_ms_p99"] > 0  # the fixture stepped 95 s of the night
