"""Alarm lifecycle: raised, acknowledged, escalated (medium → high), resolved; the alarm log."""

from __future__ import annotations

import pytest

from nexus.core.errors import InvalidInputError
from nexus.monitor.alarms import AlarmBook
from nexus.monitor.glitch import Glitch


def _glitch(kind: str, duration: float | None = None, channel: str | None = "EEG C4-M1") -> Glitch:
    return Glitch("s1", 100.0, kind, f"{kind}!", channel, duration, {"std_uv": 0.01})


def test_medium_alarm_escalates_when_not_acknowledged_in_time():
    book = AlarmBook(escalate_after_s=120.0)
    a = book.raise_glitch(_glitch("electrode_off"), now_s=100.0)
    assert a is not None and (a.priority, a.state) == ("medium", "raised")
    assert book.tick(219.0) == [] and a.priority == "medium"
    assert book.tick(220.0) == [a]
    assert (a.priority, a.raised_priority, a.state, a.escalated_s) == ("high", "medium", "escalated", 220.0)
    assert book.tick(400.0) == []  # escalates once


def test_acknowledged_alarm_does_not_escalate_and_resolves_when_the_episode_closes():
    book = AlarmBook(escalate_after_s=60.0)
    a = book.raise_glitch(_glitch("electrode_off"), now_s=10.0)
    book.acknowledge(a.id, now_s=30.0, by="tech-1")
    assert book.tick(500.0) == [] and a.priority == "medium" and a.state == "acknowledged"
    assert book.active() == [a]
    book.raise_glitch(_glitch("electrode_off", duration=80.0), now_s=90.0)  # the same episode closes
    assert a.state == "resolved" and a.resolved_s == 90.0 and book.active() == []
    with pytest.raises(InvalidInputError, match="already resolved"):
        book.acknowledge(a.id, now_s=95.0)


def test_raising_an_open_alarm_again_refreshes_nothing_and_log_keeps_high_and_medium():
    book = AlarmBook()
    a = book.raise_glitch(_glitch("distress", channel=None), now_s=5.0)
    b = book.raise_glitch(_glitch("distress", channel=None), now_s=6.0)
    low = book.raise_glitch(_glitch("line_noise"), now_s=7.0)
    assert a is b and len(book.alarms) == 2
    assert [x.kind for x in book.active()] == ["distress", "line_noise"]  # high first
    log = book.log()
    assert [r["kind"] for r in log] == ["distress"] and log[0]["raised_s"] == 5.0
    assert log[0]["priority"] == "high" and log[0]["evidence"] == {"std_uv": 0.01}
    assert low is not None and low.priority == "low"
    book.tick(10_000.0)
    assert low.priority == "low"  # only medium escalates


def test_bad_ids_and_settings_are_clear_errors():
    with pytest.raises(InvalidInputError, match="escalate_after_s"):
        AlarmBook(escalate_after_s=0)
    book = AlarmBook()
    with pytest.raises(InvalidInputError, match="No alarm 3"):
        book.resolve(3, 1.0)
    assert book.raise_glitch(_glitch("electrode_off", duration=5.0), now_s=1.0) is None  # closing, never opened


def test_monitor_episodes_drive_the_alarm_lifecycle():
    import numpy as np

    from nexus.monitor.live import GlitchMonitor

    fs = 128.0
    rng = np.random.default_rng(0)
    x = rng.normal(0, 15, (1, 2, int(400 * fs)))
    x[0, 1, int(20 * fs) : int(300 * fs)] = 0.0  # the second EEG electrode reads 0 for 280 s
    mon = GlitchMonitor(1, ["EEG C4-M1", "EEG O1-M2"], fs, sessions=["bed-7"])
    book = AlarmBook(escalate_after_s=120.0)
    step = int(fs)
    escalated = []
    for a in range(0, x.shape[-1], step):
        now = (a + step) / fs
        book.feed(mon.step(x[:, :, a : a + step], [True], now), now)
        escalated += book.tick(now)
    assert [(a.kind, a.channel, a.session) for a in escalated] == [("dropped_samples", "EEG O1-M2", "bed-7")]
    assert escalated[0].escalated_s == escalated[0].raised_s + 120.0
    alarm = book.alarms[0]
    assert alarm.state == "resolved" and 300.0 <= alarm.resolved_s <= 305.0
    assert book.log()[0]["priority"] == "high" and book.log()[0]["raised_priority"] == "medium"
