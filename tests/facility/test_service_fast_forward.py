"""``FacilityService.advance(seconds, step_s=...)``: a fast-forwarded set-up gives the night the live steps give it.

The test suite's facilities are set up 95 s into the night with 1-s steps (tests/api/conftest.py): what they show
must be what the live loop's 0.1-s steps would have shown.
"""

from __future__ import annotations

import pytest

from nexus.core.clock import ManualClock
from nexus.core.errors import NexusError
from nexus.core.settings import load_settings
from nexus.facility.service import FacilityService
from nexus.store import open_store, upgrade


def _night(tmp_path, name: str, step_s: float | None):
    url = f"sqlite:///{(tmp_path / f'{name}.db').as_posix()}"
    store = open_store(load_settings(database_url=url), create=True, check=False)
    upgrade(store.engine)
    svc = FacilityService(store, clients=4, clock=ManualClock(), data_dir=tmp_path / name, faults=[(1, 40.0)],
                          events=False, run_id="ff")
    svc.start()
    seen: list[tuple] = []

    def listen(kind, records):
        for r in records:
            if r.get("kind") == "stage":
                seen.append(("stage", r["session"], r["onset"], r["stage"], tuple(r["probs"] or ())))
            elif r.get("kind") == "glitch":
                seen.append(("glitch", r["session"], r["description"], r["channel"], r["onset"]))

    svc.sup.listeners.append(listen)
    ticks0 = svc.sup.ticks
    svc.advance(95.0, step_s=step_s)
    return svc, store, sorted(seen, key=repr), svc.sup.ticks - ticks0


def test_a_fast_forwarded_night_has_the_stages_and_glitches_of_live_steps_and_the_live_step_is_back(tmp_path):
    live, live_store, seen_live, ticks_live = _night(tmp_path, "live", None)
    fast, fast_store, seen_fast, ticks_fast = _night(tmp_path, "fast", 1.0)
    try:
        assert ticks_live == 380 and ticks_fast == 95  # 0.25-s ticks; 1-s ticks of 1-s steps
        assert sum(s[0] == "stage" for s in seen_live) == 12  # three epochs of four beds
        assert any(s[0] == "glitch" for s in seen_live)  # bed 2's NaN samples at 40 s
        assert seen_fast == seen_live
        assert fast.sup.step_s == live.sup.step_s == pytest.approx(0.1)  # the live step after the call
        before = fast.sup.ticks
        fast.advance(1.0)
        assert fast.sup.ticks - before == 4  # back to 0.25-s ticks
        with pytest.raises(NexusError, match="step_s"):
            fast.advance(1.0, step_s=0.0)
    finally:
        for svc, store in ((live, live_store), (fast, fast_store)):
            svc.stop()
            store.close()
