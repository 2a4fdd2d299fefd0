"""``nexus run``'s alarms go through the supervisor's AlarmBook: the console's acknowledge and the escalation of an
alarm left alone reach the night's alarm log in the database."""

from nexus.core.clock import ManualClock
from nexus.facility.service import FacilityService
from nexus.monitor.glitch import Glitch
from nexus.store.alarms import list_alarms


def test_console_acknowledge_and_escalation_reach_the_alarm_log(store, tmp_path):
    # escalation after 10 s of the night, not the default 120: the same path in 20 s of ticks instead of 135
    service = FacilityService(store, clients=2, clock=ManualClock(), data_dir=tmp_path, events=False, run_id="a",
                              escalate_after_s=10.0)
    service.start()
    try:
        service.advance(5.0)
        first, second = (b["session"] for b in service.beds())
        service.raise_glitch(Glitch(first, 4.0, "clock_skew", "Timestamps went back."))
        service.raise_glitch(Glitch(second, 4.5, "clock_skew", "Timestamps went back."))
        a1, a2 = sorted(service.alarms(), key=lambda a: a["id"])
        service.advance(5.0)
        service.acknowledge(a1["id"], user_id=None, by="technician")  # seen in time: stays medium
        service.advance(10.0)  # the other one is left alone for longer than escalate_after_s (10 s)
        live = {a["id"]: a for a in service.alarms()}
        assert live[a2["id"]]["priority"] == "high" and live[a1["id"]]["priority"] == "medium"
        assert service.bed(second)["alarm"] == "high"
        service.acknowledge(a2["id"], user_id=None, by="night nurse")
    finally:
        service.stop()
    log = {a["session"]: a for a in list_alarms(store) if a["run"] == "a"}
    assert set(log) == {first, second}
    assert log[first]["acknowledged_by"] == "technician" and log[first]["acknowledged_s"] is not None
    assert log[first]["escalated_s"] is None and log[first]["priority"] == "medium"
    assert log[second]["escalated_s"] is not None and log[second]["priority"] == "high"
    assert log[second]["acknowledged_by"] == "night nurse"
    assert log[second]["acknowledged_s"] > log[second]["escalated_s"] > log[second]["raised_s"]
