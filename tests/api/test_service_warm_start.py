"""A facility with demonstration faults (nexus run's default) warms its sleepers' renderer before the first tick."""

import nexus.facility.warmup as warmup
from nexus.core.clock import ManualClock
from nexus.facility.service import FacilityService
from nexus.facility.simulate import SIM_CHANNELS


def test_faulty_beds_still_have_their_renderer_warmed_before_the_first_tick(store, tmp_path, monkeypatch):
    calls = []
    real = warmup.warm_up_synthetic
    monkeypatch.setattr(warmup, "warm_up_synthetic", lambda *a: calls.append(a) or real(*a))
    service = FacilityService(store, clients=2, clock=ManualClock(), data_dir=tmp_path, faults=[(1, 40.0)],
                              events=False, run_id="w")
    try:
        service.start()  # the faults wrap the fleet (Supervisor.add_fleet no longer sees a SyntheticFleet)
        assert [(fs, tuple(channels), n) for fs, channels, n in calls] == [(service.fs, SIM_CHANNELS, 2)]
    finally:
        service.stop()
