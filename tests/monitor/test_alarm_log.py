"""The alarm log: the supervisor's AlarmBook through a night, and the table of migration 0005 (save, list)."""

import pytest

from nexus.core.clock import ManualClock
from nexus.core.errors import InvalidInputError
from nexus.facility.supervisor import Supervisor
from nexus.monitor.alarms import AlarmBook
from nexus.monitor.glitch import Glitch
from nexus.store.alarms import list_alarms, save_alarms
from nexus.store.models import Client, NightSession


class _Device:
    """100 Hz, two channels, one 0.1-s chunk per read once due; silent (no chunk) from 1 s to 4 s."""

    fs, channels = 100.0, ("EEG C4-M1", "EOG E1-M2")

    def __init__(self, session, clock):
        self.session, self.clock, self.k = session, clock, 0

    def open(self):
        pass

    def close(self):
        pass

    def read(self):
        import numpy as np

        from nexus.core.types import Chunk

        if self.clock.now() < (self.k + 1) * 0.1 - 1e-9:
            return None
        k = self.k
        self.k += 1
        if 10 <= k < 40:
            return None
        t = np.arange(k * 10, k * 10 + 10) / self.fs
        return Chunk(self.session, k * 0.1, self.fs, np.vstack([30 * np.sin(t), 10 * np.cos(t)]), self.channels, k)


def test_the_supervisor_keeps_every_glitch_as_an_alarm_with_its_times():
    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[])
    sup.add_session("a", _Device("a", clock))
    sup.run(6.0, tick_s=0.1)
    log = sup.alarm_book.log()
    drop = [a for a in log if a["kind"] == "dropout"]
    assert len(drop) == 1 and drop[0]["priority"] == "high" and drop[0]["session"] == "a"
    assert drop[0]["raised_s"] == pytest.approx(3.1, abs=0.15)  # 2 s of silence after 1 s
    assert drop[0]["resolved_s"] == pytest.approx(4.1, abs=0.15)  # samples came back: resolved
    assert drop[0]["state"] == "resolved" and drop[0]["onset_s"] == pytest.approx(1.0, abs=0.11)
    assert all(a["kind"] != "stream_returned" for a in log)  # it ends the dropout, it is not an alarm itself


def test_a_medium_alarm_escalates_on_the_supervisors_clock():
    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[])
    sup.add_session("a", _Device("a", clock))
    sup.alarm_book.raise_glitch(Glitch("a", 0.0, "electrode_off", "off", "EEG C4-M1"), 0.0)
    sup.run(121.0, tick_s=1.0)
    a = next(a for a in sup.alarm_book.log() if a["kind"] == "electrode_off")
    assert (a["raised_priority"], a["priority"], a["state"]) == ("medium", "high", "escalated")
    assert a["escalated_s"] == pytest.approx(120.0, abs=1.0)


def _book():
    b = AlarmBook(escalate_after_s=60.0)
    b.raise_glitch(Glitch("s1", 10.0, "electrode_off", "off", "EEG C4-M1", None, {"std_uv": 0.01}), 100.0)
    b.raise_glitch(Glitch("s1", 50.0, "distress", "distress"), 150.0)
    b.raise_glitch(Glitch("s2", 5.0, "line_noise", "hum", "EEG C4-M1"), 110.0)  # low: not in the log
    b.raise_glitch(Glitch("s2", 20.0, "dropout", "gone"), 120.0)
    b.tick(161.0)  # electrode_off (medium, 61 s) escalates
    b.acknowledge(2, 170.0, by="nurse-1")
    b.raise_glitch(Glitch("s1", 50.0, "distress", "distress", None, 40.0), 190.0)  # the episode closed
    return b


def test_the_alarm_log_table_round_trip(store):
    with store.session() as s:
        for sid in ("s1", "s2"):
            s.add(NightSession(id=sid, client=Client(code=f"C-{sid}")))
    b = _book()
    with store.session() as s:
        assert save_alarms(s, b.log(), facility_run_id="run1", sessions={"s1", "s2"}) == 3
    rows = list_alarms(store)
    assert sorted((r["session"], r["kind"]) for r in rows) == [
        ("s1", "distress"), ("s1", "electrode_off"), ("s2", "dropout")]
    off = next(r for r in rows if r["kind"] == "electrode_off")
    assert (off["raised_priority"], off["priority"], off["state"]) == ("medium", "high", "escalated")
    assert (off["raised_s"], off["escalated_s"], off["onset_s"]) == (100.0, 161.0, 10.0)
    assert off["evidence"] == {"std_uv": 0.01} and off["channel"] == "EEG C4-M1" and off["run"] == "run1"
    dis = next(r for r in rows if r["kind"] == "distress")
    assert (dis["acknowledged_s"], dis["acknowledged_by"], dis["resolved_s"], dis["state"]) == (
        170.0, "nurse-1", 190.0, "resolved")
    assert [r["kind"] for r in list_alarms(store, session="s2")] == ["dropout"]
    assert {r["kind"] for r in list_alarms(store, priority="high")} == {"electrode_off", "distress", "dropout"}
    assert [r["kind"] for r in list_alarms(store, state="raised")] == ["dropout"]
    assert [r["kind"] for r in list_alarms(store, state="resolved")] == ["distress"]
    assert len(list_alarms(store, limit=1)) == 1


def test_alarms_of_unknown_sessions_are_left_out_and_bad_filters_refused(store):
    with store.session() as s:
        s.add(NightSession(id="s1", client=Client(code="C-1")))
    with store.session() as s:
        assert save_alarms(s, _book().log(), sessions={"s1"}) == 2
    with pytest.raises(InvalidInputError, match="priority 'low'"):
        list_alarms(store, priority="low")
    with pytest.raises(InvalidInputError, match="state 'open'"):
        list_alarms(store, state="open")
