from pathlib import Path

import pytest
import yaml

from nexus.dreamscape.check import check_text
from nexus.facility.dryrun import dry_run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes" / "deep-sleep.yaml"


@pytest.fixture(scope="module")
def early_program():
    data = yaml.safe_load(EXAMPLE.read_text())
    data["lights_out"] = "06:00"
    data["wake"]["window"] = ["06:20", "06:30"]  # 20-30 min after lights-out
    rep = check_text(yaml.safe_dump(data))
    assert rep.ok, rep.summary()
    return rep.program


def test_dry_run_reports_what_would_happen(early_program):
    res = dry_run(early_program, clients=2, hours=0.6, seed=5, stager="oracle")
    s = res.summary()
    assert s["clients"] == 2 and s["stager"].startswith("oracle")
    assert s["smart_wakes"] == 2
    for r in res.sessions:
        assert 1200 <= r.wake_t_s <= 1800
        assert r.scene_s and abs(sum(r.scene_s.values()) - 0.6 * 3600) < 1
    assert sum(d["description"] == "wake" for d in res.decisions) == 2
    assert s["minutes_per_scene_per_client"]["settle"] > 0


def test_sham_gives_no_clicks(early_program):
    res = dry_run(early_program, clients=1, hours=0.3, seed=7, stimulate=False, stager="oracle")
    assert res.summary()["clicks"] == 0


def test_the_dry_run_goes_through_the_facility_loop(early_program):
    """Sleepers hear their commands through the loop's sinks: clicks, leases and the late-click rule apply."""
    res = dry_run(early_program, clients=1, hours=0.3, seed=11, stager="oracle")
    played = [c for c in res.commands if c.kind == "scene"]
    assert played and all(d["command"] is None or d["onset"] <= 0.3 * 3600 for d in res.decisions)
    # every command the sleeper heard was decided, journaled with its reason, at the same time
    decided = {(d["description"], round(d["command"]["t"], 6)) for d in res.decisions if d["command"]}
    assert {("scene", round(c.t, 6)) for c in played} <= decided
