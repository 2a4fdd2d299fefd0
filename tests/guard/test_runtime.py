"""SessionGuard: consent revoked mid-night and distress, screened step by step; refusals become audit records."""

from nexus.dreamscape.controller import Command
from nexus.guard.runtime import SessionGuard

FULL = ["recording", "audio", "stimulation", "dream_incubation"]


def test_screen_steps():
    g = SessionGuard("sess-1", list(FULL))
    ok, refused = g.screen(10.0, [Command(0, 10.0, "click", {"level_db": -30.0})])
    assert [c.kind for c in ok] == ["click"] and refused == []
    g.set_scopes(["recording", "audio"])  # stimulation revoked between steps
    ok, refused = g.screen(12.0, [Command(0, 12.0, "click", {"level_db": -30.0}), Command(0, 12.0, "silence")])
    assert [c.kind for c in ok] == ["silence"]
    (r,) = refused
    assert (r.action, r.subject, r.payload["command"]["kind"]) == ("guard.refused.consent", "sess-1", "click")
    g.set_scopes(FULL)
    ok, refused = g.screen(20.0, [Command(0, 20.0, "protect", {"sound": "rain", "level_db": -40.0})], distress=True)
    assert len(ok) == 1 and refused == []
    ok, refused = g.screen(30.0, [Command(0, 30.0, "cue", {"scene": "x", "index": 0, "cue_kind": "incubation"})])
    assert ok == [] and refused[0].action == "guard.refused.anti_exploitation"
    assert "after distress" in refused[0].payload["reason"]
